"""What attacks run inside a sandbox: small Python programs that report what happened as JSON."""

from __future__ import annotations

import json
from typing import Any

CONNECT = r"""
import json, socket
results = {}
for host, port in %s:
    try:
        s = socket.create_connection((host, port), timeout=%s)
        s.settimeout(%s)
        try:
            data = s.recv(100).decode(errors="replace")
        except OSError:
            data = ""
        results["%%s:%%s" %% (host, port)] = {"connected": True, "data": data}
        s.close()
    except OSError as error:
        results["%%s:%%s" %% (host, port)] = {"connected": False, "errno": error.errno, "error": str(error)}
print(json.dumps(results))
"""


def connect_code(targets: list[tuple[str, int]], timeout: float = 3.0) -> str:
    return CONNECT % (repr(targets), timeout, timeout)


def last_json(output: str) -> Any:
    return json.loads(output.strip().splitlines()[-1])
