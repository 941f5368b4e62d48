"""Read-only file ops: `files.list`, `files.info`, `files.search` (names), `files.find` (contents).

Results that can grow with the tree travel as several `{"type": "items"}` frames before the final
`{"type": "result"}`, so no frame nears the protocol's size limit. Walks never follow symbolic
links, and subdirectories that cannot be read are skipped (the starting directory must be readable).
"""
from __future__ import annotations

import os
import stat

from .errors import BAD_REQUEST, AgentError
from .files_paths import INVALID_FILE_PATH, Describer, ItemBatcher, os_failure, resolve, stat_path, text

LINE_LIMIT = 64 * 1024  # `find` reads lines in pieces of at most this many bytes
CONTENT_LIMIT = 4096  # characters of a matching line sent back
BINARY_PROBE = 8192  # files with a NUL byte in their first bytes are not searched


def list_files(message: dict, context, connection) -> None:
    """`{"op": "files.list", "path", "depth"?}` -> FileInfo items, pre-order, sorted by name."""
    root = resolve(context, message.get("path") or ".")
    depth = message.get("depth")
    if depth is None:
        depth = 1
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
        raise AgentError(BAD_REQUEST, "'depth' must be an integer >= 1")
    _require_directory(root)
    describer = Describer()
    batch = ItemBatcher(connection)
    for entry, _ in walk(root, depth):
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue  # removed while we listed
        batch.add(describer.describe(entry.path, st, entry.name), 200 + 2 * len(entry.path))
    batch.finish()


def file_info(message: dict, context, connection) -> None:
    """`{"op": "files.info", "path"}` -> `{"type": "result", "info": FileInfo}` (a dangling link is described
    as the link itself)."""
    path = resolve(context, message.get("path"))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = stat_path(path, follow=False)
    except OSError as error:
        raise os_failure(error, path) from None
    connection.send({"type": "result", "info": Describer().describe(path, st)})


def search_files(message: dict, context, connection) -> None:
    """`{"op": "files.search", "path", "pattern"}`: every entry below `path` whose name matches the glob."""
    import fnmatch

    root = resolve(context, message.get("path") or ".")
    pattern = message.get("pattern")
    if not isinstance(pattern, str) or not pattern:
        raise AgentError(BAD_REQUEST, "'pattern' must be a non-empty glob such as \"*.py\"")
    _require_directory(root)
    matches = fnmatch.fnmatchcase
    batch = ItemBatcher(connection)
    for entry, _ in walk(root, None):
        if matches(entry.name, pattern):
            batch.add(text(entry.path), 8 + 2 * len(entry.path))
    batch.finish()


def find_in_files(message: dict, context, connection) -> None:
    """`{"op": "files.find", "path", "pattern"}`: lines containing `pattern` (a literal string), like
    `grep -rnF`, in the file `path` or every regular text file below the directory `path`."""
    root = resolve(context, message.get("path") or ".")
    pattern = message.get("pattern")
    if not isinstance(pattern, str) or not pattern:
        raise AgentError(BAD_REQUEST, "'pattern' must be a non-empty string")
    needle = pattern.encode("utf-8", "surrogateescape")
    st = stat_path(root)
    batch = ItemBatcher(connection)
    if stat.S_ISDIR(st.st_mode):
        for entry, _ in walk(root, None):
            if entry.is_file(follow_symlinks=False):
                _grep(entry.path, needle, batch)
    elif stat.S_ISREG(st.st_mode):
        _grep(root, needle, batch)
    else:
        raise AgentError(INVALID_FILE_PATH, "not a regular file or directory: %s" % (text(root),))
    batch.finish()


def _grep(path: str, needle: bytes, batch: ItemBatcher) -> None:
    try:
        with open(path, "rb") as handle:
            if b"\0" in handle.read(BINARY_PROBE):
                return
            handle.seek(0)
            number = 0
            line_start = True
            name = None
            while True:
                piece = handle.readline(LINE_LIMIT)
                if not piece:
                    return
                if line_start:
                    number += 1
                line_start = piece.endswith(b"\n")
                if needle in piece:
                    if name is None:
                        name = text(path)
                    content = piece.rstrip(b"\r\n").decode("utf-8", "replace")[:CONTENT_LIMIT]
                    batch.add({"file": name, "line": number, "content": content}, 40 + len(name) + 2 * len(content))
    except OSError:
        return  # unreadable, or gone while we searched: not a match


def _require_directory(path: str) -> None:
    st = stat_path(path)
    if not stat.S_ISDIR(st.st_mode):
        raise AgentError(INVALID_FILE_PATH, "not a directory: %s" % (text(path),))


def walk(root: str, max_depth: int | None):
    """(entry, depth) for every entry below `root`: pre-order, sorted by name, symbolic links not
    followed. `root` itself must be readable; unreadable subdirectories are skipped."""
    stack = [iter(_entries(root, strict=True))]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        depth = len(stack)
        yield entry, depth
        if max_depth is not None and depth >= max_depth:
            continue
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            is_dir = False
        if is_dir:
            children = _entries(entry.path, strict=False)
            if children:
                stack.append(iter(children))


def _entries(path: str, strict: bool) -> list:
    try:
        with os.scandir(path) as found:
            return sorted(found, key=lambda entry: entry.name)
    except OSError as error:
        if strict:
            raise os_failure(error, path) from None
        return []
