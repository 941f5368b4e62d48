"""`corral replay` on a SQLite event store left behind by a stopped api (no services running)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from corral_api.domain.identity import admin_key_created, key_id_for
from corral_api.domain.names import name_key
from corral_contracts import sandbox as ev
from corral_contracts.codecs import RecordedEvent
from corral_eventstore import EventLog
from corral_stack import cli

ORG = "org-a"


def store(home: Path, *, stale_release: bool = False) -> None:
    """What a short `make run` session records; optionally a crafted, inconsistent name release."""
    (home / "api").mkdir(parents=True)
    log = EventLog(RecordedEvent, f"sqlite:///{home / 'api' / 'events.db'}")
    admin = admin_key_created("crl_cli", organization_id=ORG)
    log.append(key_id_for(admin.key_hash), 0, [admin])
    for n in range(3):
        sid = str(uuid.uuid4())
        log.append(uuid.UUID(sid), 0, [ev.SandboxCreated(sandbox_id=sid, organization_id=ORG, name=f"s{n}",
                                                         runner_id="local", image="i", snapshot="s", user="u")], {},
                   (name_key(ORG, f"s{n}"), 0, [ev.SandboxNameClaimed(organization_id=ORG, name=f"s{n}", sandbox_id=sid)]))
        log.append(uuid.UUID(sid), 1, [ev.SandboxStarted(sandbox_id=sid, runner_id="local")])
    if stale_release:
        log.append(name_key(ORG, "s0"), 1, [
            ev.SandboxNameClaimed(organization_id=ORG, name="s0", sandbox_id="someone-else"),
            ev.SandboxNameReleased(organization_id=ORG, name="s0", sandbox_id=sid)])
    log.close()


def test_replay_reports_what_it_rebuilt(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    store(tmp_path)
    monkeypatch.setenv("CORRAL_HOME", str(tmp_path))
    monkeypatch.delenv("CORRAL_DATABASE_URL", raising=False)
    assert cli.main(["replay"]) == 0
    out = capsys.readouterr().out
    assert "events read:  10 (log position 10)" in out and "sandboxes:    3 (3 not destroyed)" in out
    assert "placements:   local=3" in out and "time taken:" in out
    assert cli.main(["replay", "--check", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["events"], report["sandboxes"], report["names"], report["api_keys"], report["differences"]) == \
        (10, 3, 3, 1, 0)


def test_replay_check_fails_on_a_difference(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store(tmp_path, stale_release=True)
    assert cli.main(["replay", "--check", "--database-url", f"sqlite:///{tmp_path / 'api' / 'events.db'}"]) == 1
    out = capsys.readouterr().out
    assert "DIFFERENT name org-a/s0" in out and "1 difference(s)" in out


def test_replay_without_an_event_store_says_where_it_looked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["replay", "--home", str(tmp_path / "nowhere")]) == 2
    assert "no event store at" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()
