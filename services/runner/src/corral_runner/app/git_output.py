"""Git's machine-readable output turned into the toolbox's JSON bodies (pure)."""

from __future__ import annotations

from typing import Any

UNMERGED = "Updated but unmerged"
_STATUS = {".": "Unmodified", "M": "Modified", "T": "Modified", "A": "Added", "D": "Deleted", "R": "Renamed",
           "C": "Copied", "U": UNMERGED, "?": "Untracked"}


def _file(name: str, staging: str, worktree: str, extra: str = "") -> dict[str, str]:
    return {"name": name, "staging": staging, "worktree": worktree, "extra": extra}


def parse_status(raw: bytes) -> dict[str, Any]:
    """`git status --porcelain=v2 --branch -z` -> the `GitStatus` body.

    Renames and copies carry their original path in `extra`; every unmerged entry is
    `Updated but unmerged` on both sides; a detached HEAD reports `currentBranch` "HEAD".
    """
    fields = raw.decode(errors="surrogateescape").split("\0")
    head, upstream, ahead_behind = "", "", None
    files: list[dict[str, str]] = []
    i = 0
    while i < len(fields):
        entry = fields[i]
        i += 1
        if entry.startswith("# branch.head "):
            head = entry[len("# branch.head "):]
        elif entry.startswith("# branch.upstream "):
            upstream = entry[len("# branch.upstream "):]
        elif entry.startswith("# branch.ab "):
            ahead, behind = entry[len("# branch.ab "):].split()
            ahead_behind = (int(ahead.lstrip("+")), abs(int(behind)))
        elif entry.startswith("1 "):
            parts = entry.split(" ", 8)
            files.append(_file(_clean(parts[8]), _STATUS.get(parts[1][0], "Modified"),
                               _STATUS.get(parts[1][1], "Modified")))
        elif entry.startswith("2 "):
            parts = entry.split(" ", 9)
            original = fields[i] if i < len(fields) else ""
            i += 1
            files.append(_file(_clean(parts[9]), _STATUS.get(parts[1][0], "Renamed"),
                               _STATUS.get(parts[1][1], "Modified"), _clean(original)))
        elif entry.startswith("u "):
            files.append(_file(_clean(entry.split(" ", 10)[10]), UNMERGED, UNMERGED))
        elif entry.startswith("? "):
            files.append(_file(_clean(entry[2:]), "Untracked", "Untracked"))
    detached = head == "(detached)"
    ahead, behind = ahead_behind or (0, 0)
    return {"currentBranch": "HEAD" if detached else head, "fileStatus": files, "ahead": ahead, "behind": behind,
            "branchPublished": ahead_behind is not None, "detached": detached, "upstream": upstream}


def _clean(name: str) -> str:
    """A path as valid UTF-8 text for JSON (undecodable bytes replaced)."""
    return name.encode(errors="surrogateescape").decode(errors="replace")


def parse_branches(listing: str, current: str) -> dict[str, Any]:
    body: dict[str, Any] = {"branches": [line for line in listing.splitlines() if line]}
    body["current"] = current.strip()
    return body


def parse_history(raw: bytes) -> list[dict[str, str]]:
    """`git log -z --format=%H%x1f%an%x1f%ae%x1f%aI%x1f%B` -> `[GitCommitInfo]`, newest first."""
    commits = []
    for record in raw.decode(errors="replace").split("\0"):
        parts = record.lstrip("\n").split("\x1f", 4)
        if len(parts) != 5:
            continue
        sha, author, email, when, message = parts
        commits.append({"hash": sha, "author": author, "email": email, "timestamp": when,
                        "message": message.rstrip("\n")})
    return commits


def parse_remotes(raw: bytes) -> dict[str, Any]:
    """`git config -z --get-regexp '^remote\\..*\\.url$'` -> `{remotes: [{name, url}]}`."""
    remotes = []
    for record in raw.decode(errors="replace").split("\0"):
        key, _, url = record.partition("\n")
        if key.startswith("remote.") and key.endswith(".url"):
            remotes.append({"name": key[len("remote."):-len(".url")], "url": url})
    return {"remotes": remotes}
