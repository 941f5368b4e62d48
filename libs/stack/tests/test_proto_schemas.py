"""proto-schemas/ is generated from the code and committed: this fails when they drift apart."""

from __future__ import annotations

import json
from pathlib import Path

from corral_stack import schemas

ROOT = Path(__file__).resolve().parents[3] / "proto-schemas"


def test_committed_schemas_match_the_code() -> None:
    stale = schemas.drift(ROOT)
    assert not stale, f"proto-schemas out of date: {stale}; run `make schemas` and commit the result"


def test_drift_is_detected(tmp_path: Path) -> None:
    schemas.write(tmp_path)
    assert schemas.drift(tmp_path) == []
    doc = json.loads((tmp_path / "openapi.json").read_text())
    doc["paths"].pop("/api/sandbox")
    (tmp_path / "openapi.json").write_text(json.dumps(doc))
    assert schemas.drift(tmp_path) == ["openapi.json"]


def test_every_contract_message_has_a_schema() -> None:
    defs = schemas.contract_schemas()["$defs"]
    for name in ("SandboxCreated", "SandboxStopRequested", "CreateSandbox", "SandboxContainerStarted",
                 "ApiKeyCreated", "RunnerHeartbeat"):
        assert name in defs
