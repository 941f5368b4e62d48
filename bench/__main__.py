"""Run every benchmark against a fresh local stack; print a table and write JSON under bench/results/."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from corral_stack.stack import Stack, StackConfig
from corral_testing.stack import TEST_RUN_LABEL, remove_labelled

from .figures import Options, Series, table
from .suites import SUITES

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("--creates", type=int, default=20)
    parser.add_argument("--execs", type=int, default=200)
    parser.add_argument("--only", nargs="*", default=[], help="suite names (default: all)")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="corral-b-", dir="/tmp"))
    run = os.urandom(4).hex()
    stack = Stack(StackConfig.ephemeral(home, labels={TEST_RUN_LABEL: run}), log=lambda *a: None)
    print("bench: starting a local stack (real Docker, real nats-server)...", flush=True)
    try:
        stack.start()
        options = Options(creates=args.creates, execs=args.execs, labels={TEST_RUN_LABEL: run}, only=tuple(args.only))
        series: list[Series] = []
        for name, suite in SUITES:
            if not options.only or name in options.only:
                print(f"bench: {name}", flush=True)
                series += asyncio.run(suite(stack, options))
    finally:
        stack.stop()
        remove_labelled(TEST_RUN_LABEL, run)
        shutil.rmtree(home, ignore_errors=True)
    print(table(series))
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"bench-{stamp}.json"
    out.write_text(json.dumps({
        "at": stamp, "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                 "kernel": platform.release()},
        "series": [s.summary() for s in series],
    }, indent=2) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    t0 = time.monotonic()
    main()
    print(f"bench took {time.monotonic() - t0:.0f}s")
