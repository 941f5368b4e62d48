"""Every module the agent runs must parse as Python 3.9 (the oldest python3 an image may have)."""
from __future__ import annotations

import ast
from pathlib import Path

import corral_agent
import pytest

HOST_ONLY = {"client.py"}  # runs on the host (Python 3.11), never inside a sandbox
AGENT_MODULES = sorted(p for p in Path(corral_agent.__file__).parent.glob("*.py") if p.name not in HOST_ONLY)


def test_the_agent_has_modules():
    assert {"server.py", "pump.py", "bundle.py"} <= {p.name for p in AGENT_MODULES}


@pytest.mark.parametrize("module", AGENT_MODULES, ids=lambda p: p.name)
def test_module_parses_as_python_3_9(module: Path):
    source = module.read_text(encoding="utf-8")
    ast.parse(source, filename=str(module), feature_version=(3, 9))
    tree = ast.parse(source)
    future = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == "__future__"]
    has_annotations = any(isinstance(n, (ast.AnnAssign, ast.FunctionDef)) for n in ast.walk(tree))
    # `X | None` annotations are only safe on 3.9 when annotations are never evaluated.
    assert future or not has_annotations, f"{module.name} needs `from __future__ import annotations`"
