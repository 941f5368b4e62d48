"""Git's output parsed into toolbox bodies, and the in-sandbox script run here against a real git."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from corral_runner.app.git_commands import CREDENTIAL_HELPER, Credentials, Plan, Step
from corral_runner.app.git_exec import SCRIPT, decode_results, encode_plan
from corral_runner.app.git_output import parse_branches, parse_history, parse_remotes, parse_status


def test_status_porcelain_v2() -> None:
    raw = "\0".join([
        "# branch.oid 1111111111111111111111111111111111111111", "# branch.head main",
        "# branch.upstream origin/main", "# branch.ab +2 -1",
        "1 .M N... 100644 100644 100644 aaaa bbbb README.md",
        "1 A. N... 000000 100644 100644 0000 cccc dir/with space.txt",
        "1 D. N... 100644 000000 000000 dddd 0000 gone.txt",
        "2 R. N... 100644 100644 100644 eeee eeee R100 new name.txt", "old name.txt",
        "2 C. N... 100644 100644 100644 eeee eeee C75 copy.txt", "orig.txt",
        "u UU N... 100644 100644 100644 100644 1111 2222 3333 clash.txt",
        "? fresh.txt", "! ignored.log", "",
    ]).encode()
    body = parse_status(raw)
    assert body["currentBranch"] == "main" and body["upstream"] == "origin/main"
    assert (body["ahead"], body["behind"], body["branchPublished"], body["detached"]) == (2, 1, True, False)
    assert [(f["name"], f["staging"], f["worktree"], f["extra"]) for f in body["fileStatus"]] == [
        ("README.md", "Unmodified", "Modified", ""),
        ("dir/with space.txt", "Added", "Unmodified", ""),
        ("gone.txt", "Deleted", "Unmodified", ""),
        ("new name.txt", "Renamed", "Unmodified", "old name.txt"),
        ("copy.txt", "Copied", "Unmodified", "orig.txt"),
        ("clash.txt", "Updated but unmerged", "Updated but unmerged", ""),
        ("fresh.txt", "Untracked", "Untracked", ""),
    ]


def test_status_detached_and_unpublished() -> None:
    detached = parse_status(b"# branch.oid abc\0# branch.head (detached)\0")
    assert (detached["currentBranch"], detached["detached"], detached["branchPublished"]) == ("HEAD", True, False)
    local = parse_status(b"# branch.oid (initial)\0# branch.head main\0# branch.upstream origin/main\0")
    assert (local["upstream"], local["branchPublished"], local["ahead"]) == ("origin/main", False, 0)


def test_branches_history_remotes() -> None:
    assert parse_branches("feature\nmain\n", "main\n") == {"branches": ["feature", "main"], "current": "main"}
    assert parse_branches("main\n", "") == {"branches": ["main"], "current": ""}
    log = ("a1\x1fAda\x1fada@x\x1f2024-01-02T03:04:05+00:00\x1fsecond\n\nbody\n\0"
           "\nb2\x1fBob\x1fbob@x\x1f2024-01-01T00:00:00+00:00\x1ffirst\n")
    assert parse_history(log.encode()) == [
        {"hash": "a1", "author": "Ada", "email": "ada@x", "timestamp": "2024-01-02T03:04:05+00:00",
         "message": "second\n\nbody"},
        {"hash": "b2", "author": "Bob", "email": "bob@x", "timestamp": "2024-01-01T00:00:00+00:00",
         "message": "first"}]
    assert parse_remotes(b"remote.origin.url\n/srv/o.git\0remote.my.dotted.url\nhttps://h/r\0") == {
        "remotes": [{"name": "origin", "url": "/srv/o.git"}, {"name": "my.dotted", "url": "https://h/r"}]}


def run_script(plan: Plan, cwd: Path) -> list:  # type: ignore[type-arg]
    done = subprocess.run([sys.executable, "-I", "-S", "-c", SCRIPT], input=encode_plan(plan), cwd=cwd,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60,
                          env={"PATH": os.environ["PATH"], "HOME": str(cwd)})
    results = decode_results(done.stdout)
    assert results is not None, done.stdout
    return results


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_sandbox_script_runs_steps_and_feeds_the_credential_helper(tmp_path: Path) -> None:
    init = Step(argv=["git", "init", "-q", "-b", "main", "repo"])
    status = Step(argv=["git", "-C", "repo", "status", "--porcelain=v2", "--branch", "-z"])
    fill = Step(argv=["git", "-c", "credential.helper=", "-c", f"credential.helper={CREDENTIAL_HELPER}",
                      "credential", "fill"], input="protocol=https\nhost=example.com\n\n")
    results = run_script(Plan(op="t", steps=[init, status, fill], credentials=Credentials("me", "p 'w\"$x")),
                         tmp_path)
    assert [r.code for r in results] == [0, 0, 0]
    assert parse_status(results[1].out)["currentBranch"] == "main"
    assert results[2].text.splitlines()[-2:] == ["username=me", "password=p 'w\"$x"]

    stop = run_script(Plan(op="t", steps=[Step(argv=["git", "-C", "nowhere", "status"]), init]), tmp_path)
    assert len(stop) == 1 and stop[0].code == 128 and "cannot change to 'nowhere'" in stop[0].err
    prompt = run_script(Plan(op="t", steps=[Step(argv=["git", "credential", "fill"],
                                                 input="protocol=https\nhost=example.com\n\n")]), tmp_path)
    assert prompt[0].code != 0 and "terminal prompts disabled" in prompt[0].err  # never waits for a human
    missing = run_script(Plan(op="t", steps=[Step(argv=["no-such-program-xyz"])]), tmp_path)
    assert missing[0].code == 127 and "cannot run no-such-program-xyz" in missing[0].err
    assert msgspec.json.decode(encode_plan(Plan(op="t", steps=[init])))["steps"][0]["ok"] == [0]
