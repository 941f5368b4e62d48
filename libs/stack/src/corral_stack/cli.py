"""`corral`: run the platform locally, regenerate the schemas, rebuild read models from the event log."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[4]


def run(args: argparse.Namespace) -> int:
    from .stack import Stack, StackConfig

    home = Path(os.environ.get("CORRAL_HOME") or _repo_root() / ".corral")
    stack = Stack(StackConfig(home=home, api_port=args.api_port, proxy_port=args.proxy_port,
                              runner_ports={args.runner_id: args.runner_port}, nats_port=args.nats_port,
                              webhooks_port=args.webhooks_port, ssh_port=args.ssh_port,
                              log_level=args.log_level))
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    try:
        print(f"corral: preparing {home} (first run builds the sandbox image; later runs take seconds)", flush=True)
        stack.start()
        print(
            "\n"
            f"  Corral is running (CORRAL_HOME={home})\n"
            f"  API URL:      {stack.api_url}\n"
            f"  Toolbox URL:  {stack.toolbox_url}\n"
            f"  SSH gateway:  ssh -p {stack.config.ssh_port} <token>@{stack.config.host}"
            "  (token: POST /api/sandbox/{id}/ssh-access)\n"
            f"  Admin API key: {stack.admin_api_key}\n\n"
            f"  export DAYTONA_API_URL={stack.api_url} DAYTONA_API_KEY={stack.admin_api_key}\n"
            "  Ctrl-C stops everything.\n",
            flush=True,
        )
        while not done.wait(1.0):
            for name, service in stack.services.items():
                if not service.running():
                    print(f"corral: {name} exited; stopping", file=sys.stderr, flush=True)
                    done.set()
        return 0
    finally:
        print("corral: stopping", flush=True)
        stack.stop()


def schemas(args: argparse.Namespace) -> int:
    from . import schemas as docs

    target = _repo_root() / "proto-schemas"
    if args.check:
        stale = docs.drift(target)
        if stale:
            print(f"proto-schemas out of date: {', '.join(stale)} (run `make schemas`)", file=sys.stderr)
            return 1
        return 0
    for path in docs.write(target):
        print(f"wrote {path}")
    return 0


def replay(args: argparse.Namespace) -> int:
    from . import replay as command

    return command.run(args, default_home=_repo_root() / ".corral")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="corral")
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run the whole platform in the foreground")
    p_run.add_argument("--api-port", type=int, default=int(os.environ.get("CORRAL_API_PORT", "3000")))
    p_run.add_argument("--proxy-port", type=int, default=int(os.environ.get("CORRAL_PROXY_PORT", "4000")))
    p_run.add_argument("--runner-port", type=int, default=int(os.environ.get("CORRAL_RUNNER_PORT", "3003")))
    p_run.add_argument("--ssh-port", type=int, default=int(os.environ.get("CORRAL_SSH_PORT", "2222")))
    p_run.add_argument("--nats-port", type=int, default=int(os.environ.get("CORRAL_NATS_PORT", "4222")))
    p_run.add_argument("--webhooks-port", type=int, default=int(os.environ.get("CORRAL_WEBHOOKS_PORT", "3004")))
    p_run.add_argument("--runner-id", default=os.environ.get("CORRAL_RUNNER_ID", "local"))
    p_run.add_argument("--log-level", default=os.environ.get("CORRAL_LOG_LEVEL", "INFO"))
    p_run.set_defaults(func=run)
    p_schemas = sub.add_parser("schemas", help="regenerate proto-schemas/ (or --check for drift)")
    p_schemas.add_argument("--check", action="store_true")
    p_schemas.set_defaults(func=schemas)
    p_replay = sub.add_parser("replay", help="rebuild the api's read models from the event log (--check: same answers?)")
    from .replay import add_arguments as replay_arguments

    replay_arguments(p_replay)
    p_replay.set_defaults(func=replay)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
