"""The bulk-download part headers: the SDK's own parser must read back the exact requested path."""

from __future__ import annotations

import json

import pytest
from daytona.common.file_transfer import parse_content_disposition
from python_multipart.multipart import parse_options_header

from corral_runner.app.files import FileFailure, failure_of
from corral_runner.entrypoints.toolbox.files_multipart import error_part, file_part_head, filename_params

PATHS = ["plain.txt", "/home/daytona/a b.txt", 'quo"te.txt', "back\\slash", "ünï ☃.txt", "semi;colon=1",
         "new\nline", "%41", "C:\\Windows\\x"]


@pytest.mark.parametrize("path", PATHS)
def test_the_sdk_reads_back_the_exact_path(path: str) -> None:
    head = file_part_head("b", path, 3).decode("ascii")
    disposition = next(line for line in head.split("\r\n") if line.startswith("Content-Disposition:"))
    value = disposition.split(":", 1)[1].strip()
    assert parse_content_disposition(value) == ("file", path)
    assert parse_options_header(value)[1].get(b"filename")  # the streaming download only needs one


def test_error_parts_carry_a_json_body_the_sdk_maps_to_exceptions() -> None:
    part = error_part("b", "gone.txt", FileFailure(404, "FILE_NOT_FOUND", "No such file or directory: gone.txt"))
    head, body = part.split(b"\r\n\r\n", 1)
    assert b'name="error"; filename="gone.txt"' in head and b"Content-Type: application/json" in head
    assert json.loads(body) == {"message": "No such file or directory: gone.txt", "statusCode": 404,
                                "code": "FILE_NOT_FOUND", "source": "DAYTONA_DAEMON"}


def test_agent_codes_become_statuses() -> None:
    assert failure_of({"code": "FILE_ACCESS_DENIED", "message": "no"}).status == 403
    assert failure_of({"code": "NO_SPACE", "message": "full"}).status == 413
    outdated = failure_of({"code": "UNKNOWN_OP", "message": "unknown op"})
    assert (outdated.status, outdated.code) == (502, "AGENT_OUTDATED")
    assert filename_params("") == "filename=\"_\"; filename*=utf-8''"
