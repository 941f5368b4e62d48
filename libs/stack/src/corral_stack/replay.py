"""`corral replay`: rebuild the api's read models from its event store, from zero, and report what was
rebuilt; with `--check`, prove that the fold gives the same answers (exit status 1 on any difference).

Works on the event store of a stopped `make run` (`$CORRAL_HOME/api/events.db`, or
`CORRAL_DATABASE_URL`) and on a running one; `--api-url` adds a comparison with the running api's
answers over REST (`GET /sandbox`, every page, and `GET /sandbox/{id}` for each sandbox of the key's
organization).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

MAX_SHOWN = 30
API_ATTEMPTS = 3
"""A running api keeps moving: a comparison that differs is repeated after catching up, this many times."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", help="CORRAL_HOME (default: $CORRAL_HOME, else .corral/ in the checkout)")
    parser.add_argument("--database-url", help="event store URL (default: as the api computes it)")
    parser.add_argument("--check", action="store_true",
                        help="compare with a reference fold and with every aggregate's own stream; exit 1 on a difference")
    parser.add_argument("--api-url", help="also compare with a running api's REST answers (e.g. http://127.0.0.1:3000/api)")
    parser.add_argument("--api-key", help="API key for --api-url (default: $CORRAL_API_KEY, $DAYTONA_API_KEY, "
                                          "else $CORRAL_HOME/admin-api-key)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def run(args: argparse.Namespace, default_home: Path) -> int:
    from corral_api.settings import event_store_url

    home = Path(args.home or os.environ.get("CORRAL_HOME") or default_home).resolve()
    url = args.database_url or event_store_url(home, dict(os.environ))
    parsed = urlparse(url)
    if parsed.scheme == "sqlite" and not Path(unquote(parsed.path)).is_file():
        print(f"corral replay: no event store at /{unquote(parsed.path).lstrip('/')} (is CORRAL_HOME right?)",
              file=sys.stderr)
        return 2
    api_key = args.api_key or os.environ.get("CORRAL_API_KEY") or os.environ.get("DAYTONA_API_KEY") \
        or _read(home / "admin-api-key")
    if args.api_url and not api_key:
        print("corral replay: --api-url needs an API key (--api-key)", file=sys.stderr)
        return 2
    return asyncio.run(_replay(url, args, api_key))


async def _replay(url: str, args: argparse.Namespace, api_key: str) -> int:
    from corral_api.app import replay
    from corral_contracts.codecs import RecordedEvent
    from corral_eventstore import EventLog

    event_log = await asyncio.to_thread(EventLog, RecordedEvent, url)
    try:
        rebuilt = await replay.rebuild(event_log)
        report: dict[str, Any] = {"store": _safe(url), **rebuilt.summary()}
        differences: list[str] = []
        if args.check:
            differences = await replay.check(event_log, rebuilt)
            report["checked"] = ["reference fold", "aggregate streams"]
        if args.api_url:
            differences += await _api_differences(rebuilt.directory, args.api_url.rstrip("/"), api_key)
            report.setdefault("checked", []).append(f"api {args.api_url}")
        if args.check or args.api_url:
            report["differences"] = len(differences)
    finally:
        await asyncio.to_thread(event_log.close)
    if args.json:
        print(json.dumps({**report, "shown": differences[:MAX_SHOWN]}, indent=2))
    else:
        print(_text(report))
        for line in differences[:MAX_SHOWN]:
            print(f"  DIFFERENT {line}")
        if len(differences) > MAX_SHOWN:
            print(f"  ... and {len(differences) - MAX_SHOWN} more")
    return 1 if differences else 0


def _safe(url: str) -> str:
    parsed = urlparse(url)
    return parsed._replace(netloc=f"{parsed.username}:***@{parsed.hostname}:{parsed.port}").geturl() \
        if parsed.password else url


def _text(report: dict[str, Any]) -> str:
    placed = ", ".join(f"{runner}={count}" for runner, count in report["placed"].items()) or "none"
    lines = [
        f"corral replay: rebuilt the api's read models from {report['store']}",
        f"  events read:  {report['events']} (log position {report['position']})",
        f"  sandboxes:    {report['sandboxes']} ({report['live']} not destroyed)",
        f"  names:        {report['names']}",
        f"  api keys:     {report['api_keys']}",
        f"  organizations: {report.get('organizations', 0)}, audit entries kept: {report.get('audit_entries', 0)}",
        f"  placements:   {placed}",
        f"  time taken:   {report['seconds']:.3f}s ({report['events_per_second'] or '-'} events/s)",
    ]
    if "differences" in report:
        verdict = "same answers" if not report["differences"] else f"{report['differences']} difference(s)"
        lines.append(f"  check:        {verdict} ({'; '.join(report['checked'])})")
    return "\n".join(lines)


async def _api_differences(directory: Any, api_url: str, api_key: str) -> list[str]:
    import aiohttp
    import msgspec

    from corral_api.app import replay
    from corral_api.domain.identity import hash_key
    from corral_api.entrypoints import dto

    organization_id = replay.organization_of(directory, hash_key(api_key))
    if organization_id is None:
        return ["api: the API key is not a live key of this event store (another CORRAL_HOME?)"]

    def render(sandbox: Any) -> dict[str, Any]:
        return msgspec.to_builtins(dto.sandbox_dto(sandbox, ""))  # type: ignore[no-any-return]

    headers = {"Authorization": f"Bearer {api_key}"}
    differences: list[str] = []
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=60)) as http:
        for _ in range(API_ATTEMPTS):
            await directory.catch_up()
            listed: list[dict[str, Any]] = []
            cursor: str | None = None
            while True:
                params = {"limit": "200", **({"cursor": cursor} if cursor else {})}
                async with http.get(f"{api_url}/sandbox", params=params) as response:
                    body = await response.json()
                    if response.status != 200:
                        return [f"api: GET /sandbox answered {response.status}: {body}"]
                listed += body["items"]
                cursor = body.get("nextCursor")
                if not cursor:
                    break
            got: dict[str, dict[str, Any] | None] = {}
            for sandbox_id, sandbox in list(directory.sandboxes.items()):
                if sandbox.organization_id != organization_id:
                    continue
                async with http.get(f"{api_url}/sandbox/{sandbox_id}") as response:
                    got[sandbox_id] = await response.json() if response.status == 200 else None
            differences = [f"api: {d}" for d in
                           replay.answer_differences(directory, organization_id, render, listed, got)]
            if not differences:
                return []
    return differences
