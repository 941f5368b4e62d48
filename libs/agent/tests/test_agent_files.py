"""The files area of the agent: listing, info, search, grep, folders, delete, move, permissions, replace."""
from __future__ import annotations

import os
import stat
from contextlib import aclosing
from pathlib import Path

import pytest
from agent_harness import RunningAgent
from corral_agent.client import call

ROOT = os.getuid() == 0


async def frames_of(agent: RunningAgent, **request: object) -> list[dict]:
    async with aclosing(call(agent.socket_path, request)) as frames:
        return [frame async for frame in frames]


async def ok(agent: RunningAgent, **request: object) -> tuple[list, dict]:
    """The items of a successful reply and its final frame."""
    frames = await frames_of(agent, **request)
    assert frames[-1]["type"] == "result", frames
    items = [item for frame in frames[:-1] for item in frame["items"]]
    assert all(frame["type"] == "items" for frame in frames[:-1])
    return items, frames[-1]


async def failure(agent: RunningAgent, **request: object) -> dict:
    frames = await frames_of(agent, **request)
    assert len(frames) == 1 and frames[0]["type"] == "error", frames
    return frames[0]


@pytest.fixture
def tree(agent: RunningAgent) -> Path:
    work = agent.workdir
    (work / "src" / "pkg").mkdir(parents=True)
    (work / "src" / "a.py").write_text("import os\n# TODO: one\n")
    (work / "src" / "pkg" / "b.py").write_text("x = 1\n\n  TODO: two  \n")
    (work / "src" / "blob.bin").write_bytes(b"\0TODO: binary")
    (work / "notes.txt").write_text("nothing here\n")
    os.symlink("/", work / "root-link")
    return work


async def test_list_gives_strictly_typed_file_infos_sorted_by_name(agent: RunningAgent, tree: Path):
    items, _ = await ok(agent, op="files.list", path=".")
    assert [i["name"] for i in items] == ["notes.txt", "root-link", "src"]
    notes = items[0]
    st = os.stat(tree / "notes.txt")
    assert notes["path"] == str(tree / "notes.txt")
    assert notes["isDir"] is False and notes["size"] == st.st_size
    assert notes["mode"] == stat.filemode(st.st_mode) and notes["permissions"] == "%04o" % stat.S_IMODE(st.st_mode)
    assert isinstance(notes["owner"], str) and isinstance(notes["group"], str) and notes["owner"]
    assert notes["modTime"].endswith(" +0000 UTC") and notes["modifiedAt"].endswith("Z")
    assert items[1]["mode"].startswith("l") and items[1]["isDir"] is False  # links are not followed
    assert items[2]["isDir"] is True


async def test_list_with_depth_walks_below_without_following_links(agent: RunningAgent, tree: Path):
    items, _ = await ok(agent, op="files.list", path=str(tree), depth=3)
    assert [os.path.relpath(i["path"], tree) for i in items] == [
        "notes.txt", "root-link", "src", "src/a.py", "src/blob.bin", "src/pkg", "src/pkg/b.py"]
    two, _ = await ok(agent, op="files.list", path="src", depth=2)
    assert {i["name"] for i in two} == {"a.py", "blob.bin", "pkg", "b.py"}


async def test_a_large_listing_arrives_in_several_frames(agent: RunningAgent):
    big = agent.workdir / "many"
    big.mkdir()
    for i in range(3000):
        (big / f"file-{i:05d}-{'x' * 60}").touch()
    frames = await frames_of(agent, op="files.list", path="many")
    assert len(frames) > 2 and frames[-1] == {"type": "result", "count": 3000}
    assert sum(len(f["items"]) for f in frames[:-1]) == 3000


@pytest.mark.parametrize(("request_", "code"), [
    ({"op": "files.list", "path": "missing"}, "FILE_NOT_FOUND"),
    ({"op": "files.list", "path": "notes.txt"}, "INVALID_FILE_PATH"),
    ({"op": "files.list", "path": ".", "depth": 0}, "BAD_REQUEST"),
    ({"op": "files.info", "path": "missing/deeper"}, "FILE_NOT_FOUND"),
    ({"op": "files.info", "path": ""}, "INVALID_FILE_PATH"),
    ({"op": "files.info", "path": "a\0b"}, "INVALID_FILE_PATH"),
    ({"op": "files.info", "path": 7}, "BAD_REQUEST"),
    ({"op": "files.info", "path": "notes.txt/x"}, "INVALID_FILE_PATH"),
    ({"op": "files.search", "path": ".", "pattern": ""}, "BAD_REQUEST"),
    ({"op": "files.find", "path": "missing", "pattern": "x"}, "FILE_NOT_FOUND"),
    ({"op": "files.mkdir", "path": "notes.txt"}, "FILE_EXISTS"),
    ({"op": "files.mkdir", "path": "d", "mode": "9z"}, "BAD_REQUEST"),
    ({"op": "files.delete", "path": "src"}, "INVALID_FILE_PATH"),
    ({"op": "files.delete", "path": "missing"}, "FILE_NOT_FOUND"),
    ({"op": "files.move", "source": "missing", "destination": "elsewhere"}, "FILE_NOT_FOUND"),
    ({"op": "files.move", "source": "notes.txt", "destination": "no/such/dir/notes.txt"}, "FILE_NOT_FOUND"),
    ({"op": "files.move", "source": "src", "destination": "notes.txt"}, "INVALID_FILE_PATH"),
    ({"op": "files.chmod", "path": "notes.txt", "owner": "no-such-user-here"}, "BAD_REQUEST"),
    ({"op": "files.chmod", "path": "missing", "mode": "644"}, "FILE_NOT_FOUND"),
    ({"op": "files.replace", "files": "notes.txt", "pattern": "a", "newValue": "b"}, "BAD_REQUEST"),
])
async def test_failures_are_named_never_internal(agent: RunningAgent, tree: Path, request_: dict, code: str):
    error = await failure(agent, **request_)
    assert error["code"] == code, error
    assert "Traceback" not in error["message"]


async def test_info_describes_one_entry_and_a_dangling_link(agent: RunningAgent, tree: Path):
    _, result = await ok(agent, op="files.info", path="src")
    assert result["info"]["name"] == "src" and result["info"]["isDir"] is True
    os.symlink("nowhere", tree / "dangling")
    _, result = await ok(agent, op="files.info", path=str(tree / "dangling"))
    assert result["info"]["mode"].startswith("l")


async def test_search_matches_names_by_glob_recursively(agent: RunningAgent, tree: Path):
    items, _ = await ok(agent, op="files.search", path=".", pattern="*.py")
    assert items == [str(tree / "src" / "a.py"), str(tree / "src" / "pkg" / "b.py")]
    items, _ = await ok(agent, op="files.search", path="src", pattern="pkg")
    assert items == [str(tree / "src" / "pkg")]


async def test_find_greps_text_files_with_line_numbers(agent: RunningAgent, tree: Path):
    items, _ = await ok(agent, op="files.find", path=".", pattern="TODO:")
    assert items == [
        {"file": str(tree / "src" / "a.py"), "line": 2, "content": "# TODO: one"},
        {"file": str(tree / "src" / "pkg" / "b.py"), "line": 3, "content": "  TODO: two  "},
    ]
    single, _ = await ok(agent, op="files.find", path="src/a.py", pattern="import")
    assert single == [{"file": str(tree / "src" / "a.py"), "line": 1, "content": "import os"}]


async def test_find_counts_lines_across_very_long_lines(agent: RunningAgent):
    (agent.workdir / "long.txt").write_bytes(b"a" * 200_000 + b"\nneedle\n")
    items, _ = await ok(agent, op="files.find", path="long.txt", pattern="needle")
    assert items == [{"file": str(agent.workdir / "long.txt"), "line": 2, "content": "needle"}]


async def test_mkdir_creates_parents_with_the_exact_mode_and_is_idempotent(agent: RunningAgent):
    await ok(agent, op="files.mkdir", path="a/b/c", mode="700")
    assert stat.S_IMODE(os.stat(agent.workdir / "a/b/c").st_mode) == 0o700
    await ok(agent, op="files.mkdir", path="a/b/c", mode="700")
    await ok(agent, op="files.mkdir", path=str(agent.workdir / "plain"))
    assert stat.S_IMODE(os.stat(agent.workdir / "plain").st_mode) == 0o755


async def test_delete_files_links_and_trees(agent: RunningAgent, tree: Path):
    await ok(agent, op="files.delete", path="notes.txt")
    await ok(agent, op="files.delete", path="root-link")
    assert os.path.exists("/etc")  # the link went, not its target
    await ok(agent, op="files.delete", path="src", recursive=True)
    assert sorted(os.listdir(tree)) == []


async def test_move_renames_files_and_directories(agent: RunningAgent, tree: Path):
    await ok(agent, op="files.move", source="notes.txt", destination="src/pkg/notes.md")
    assert (tree / "src/pkg/notes.md").read_text() == "nothing here\n"
    await ok(agent, op="files.move", source="src/pkg", destination="moved")
    assert (tree / "moved" / "b.py").exists() and not (tree / "src/pkg").exists()


async def test_permissions_change_mode_and_ownership(agent: RunningAgent, tree: Path):
    await ok(agent, op="files.chmod", path="notes.txt", mode="640")
    assert stat.S_IMODE(os.stat(tree / "notes.txt").st_mode) == 0o640
    me = str(os.getuid())
    await ok(agent, op="files.chmod", path="notes.txt", owner=me, group=str(os.getgid()))
    if ROOT:
        await ok(agent, op="files.chmod", path="notes.txt", owner="nobody", group="nogroup")
        assert os.stat(tree / "notes.txt").st_uid != 0
    else:
        error = await failure(agent, op="files.chmod", path="notes.txt", owner="0")
        assert error["code"] == "FILE_ACCESS_DENIED"


async def test_replace_edits_in_place_and_reports_each_file(agent: RunningAgent, tree: Path):
    os.chmod(tree / "src" / "a.py", 0o600)
    items, _ = await ok(agent, op="files.replace", files=["src/a.py", "src/pkg/b.py", "missing.py"],
                        pattern="TODO", newValue="DONE")
    assert items[:2] == [{"file": "src/a.py", "success": True}, {"file": "src/pkg/b.py", "success": True}]
    assert items[2]["file"] == "missing.py" and items[2]["success"] is False and items[2]["error"]
    assert (tree / "src" / "a.py").read_text() == "import os\n# DONE: one\n"
    assert stat.S_IMODE(os.stat(tree / "src" / "a.py").st_mode) == 0o600
