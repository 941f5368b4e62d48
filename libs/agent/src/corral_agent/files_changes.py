"""File ops that change the tree: `files.mkdir`, `files.delete`, `files.move`, `files.chmod`, `files.replace`.

All run as the agent's user (the sandbox user), so the kernel decides what is allowed; its refusals
come back as `FILE_ACCESS_DENIED`.
"""
from __future__ import annotations

import errno
import os
import stat

from .errors import BAD_REQUEST, AgentError
from .files_paths import (
    FILE_EXISTS,
    INVALID_FILE_PATH,
    ItemBatcher,
    os_failure,
    parse_mode,
    resolve,
    stat_path,
    text,
)

REPLACE_LIMIT = 64 * 1024 * 1024  # `files.replace` edits files up to this size (they are read whole)


def create_folder(message: dict, context, connection) -> None:
    """`{"op": "files.mkdir", "path", "mode"?}`: parents created as needed; an existing directory is fine."""
    path = resolve(context, message.get("path"))
    mode = parse_mode(message.get("mode"), 0o755)
    try:
        os.makedirs(path, mode)
        os.chmod(path, mode)  # exactly the mode asked for, whatever the umask
    except FileExistsError:
        if not os.path.isdir(path):
            raise AgentError(FILE_EXISTS, "exists and is not a directory: %s" % (text(path),)) from None
    except OSError as error:
        raise os_failure(error, path) from None
    connection.send({"type": "result", "path": text(path)})


def delete(message: dict, context, connection) -> None:
    """`{"op": "files.delete", "path", "recursive"?}`: a directory needs `recursive`; links are removed, not
    followed."""
    path = resolve(context, message.get("path"))
    recursive = message.get("recursive", False)
    if not isinstance(recursive, bool):
        raise AgentError(BAD_REQUEST, "'recursive' must be a boolean")
    if path == "/":
        raise AgentError(INVALID_FILE_PATH, "refusing to delete /")
    st = stat_path(path, follow=False)
    try:
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(path)
        elif not recursive:
            raise AgentError(INVALID_FILE_PATH, "is a directory (delete it with recursive=true): %s" % (text(path),))
        else:
            import shutil

            failures: list = []
            shutil.rmtree(path, onerror=lambda _function, name, info: failures.append((name, info[1])))
            if failures:
                name, error = failures[0]
                raise os_failure(error, name) if isinstance(error, OSError) else AgentError(
                    INVALID_FILE_PATH, "cannot delete %s: %s" % (text(name), error))
    except OSError as error:
        raise os_failure(error, path) from None
    connection.send({"type": "result"})


def move(message: dict, context, connection) -> None:
    """`{"op": "files.move", "source", "destination"}`: a rename (the destination's parent must exist);
    across file systems the tree is copied, then removed."""
    source = resolve(context, message.get("source"), "source")
    destination = resolve(context, message.get("destination"), "destination")
    stat_path(source, follow=False)
    try:
        os.rename(source, destination)
    except OSError as error:
        if error.errno != errno.EXDEV:  # another file system (a volume)
            raise os_failure(error, destination if os.path.lexists(source) else source) from None
        if os.path.lexists(destination) and os.path.isdir(destination):
            raise AgentError(FILE_EXISTS, "destination exists: %s" % (text(destination),)) from None
        import shutil

        try:
            shutil.move(source, destination)
        except OSError as copy_error:
            raise os_failure(copy_error, destination) from None
    connection.send({"type": "result"})


def set_permissions(message: dict, context, connection) -> None:
    """`{"op": "files.chmod", "path", "mode"?, "owner"?, "group"?}`: owner and group by name or number."""
    path = resolve(context, message.get("path"))
    mode = parse_mode(message.get("mode"), None)
    uid = _id_of(message.get("owner"), "owner")
    gid = _id_of(message.get("group"), "group")
    stat_path(path)
    try:
        if uid != -1 or gid != -1:
            os.chown(path, uid, gid)
        if mode is not None:
            os.chmod(path, mode)
    except OSError as error:
        raise os_failure(error, path) from None
    connection.send({"type": "result"})


def replace_in_files(message: dict, context, connection) -> None:
    """`{"op": "files.replace", "files", "pattern", "newValue"}`: every occurrence of the literal `pattern`
    replaced in place; one `{file, success, error?}` item per file, in request order."""
    files = message.get("files")
    pattern = message.get("pattern")
    replacement = message.get("newValue")
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise AgentError(BAD_REQUEST, "'files' must be a list of paths")
    if not isinstance(pattern, str) or not pattern:
        raise AgentError(BAD_REQUEST, "'pattern' must be a non-empty string")
    if not isinstance(replacement, str):
        raise AgentError(BAD_REQUEST, "'newValue' must be a string")
    old = pattern.encode("utf-8", "surrogateescape")
    new = replacement.encode("utf-8", "surrogateescape")
    batch = ItemBatcher(connection)
    for name in files:
        try:
            _replace(resolve(context, name), old, new)
            batch.add({"file": name, "success": True}, 40 + 2 * len(name))
        except AgentError as error:
            batch.add({"file": name, "success": False, "error": error.message}, 80 + 2 * len(name))
    batch.finish()


def _replace(path: str, old: bytes, new: bytes) -> int:
    try:
        with open(path, "r+b") as handle:
            st = os.fstat(handle.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise AgentError(INVALID_FILE_PATH, "not a regular file: %s" % (text(path),))
            if st.st_size > REPLACE_LIMIT:
                raise AgentError(INVALID_FILE_PATH, "larger than %d MiB: %s" % (REPLACE_LIMIT >> 20, text(path)))
            content = handle.read()
            count = content.count(old)
            if count:
                handle.seek(0)
                handle.write(content.replace(old, new))
                handle.truncate()
            return count
    except OSError as error:
        raise os_failure(error, path) from None


def _id_of(raw: object, field: str) -> int:
    """-1 (unchanged) for None or "", else the uid/gid of a name or number."""
    if raw is None or raw == "":
        return -1
    if not isinstance(raw, str):
        raise AgentError(BAD_REQUEST, "'%s' must be a user or group name" % (field,))
    if raw.isdigit():
        return int(raw)
    try:
        if field == "owner":
            import pwd

            return pwd.getpwnam(raw).pw_uid
        import grp

        return grp.getgrnam(raw).gr_gid
    except KeyError:
        raise AgentError(BAD_REQUEST, "no such %s in the sandbox: %r" % ("user" if field == "owner" else "group",
                                                                          raw)) from None
