"""What every file op shares: resolving request paths, naming OS failures, describing an entry.

Relative paths resolve against the agent's workdir (the sandbox working directory). OS errors become
the toolbox's error codes (`FILE_NOT_FOUND`, `FILE_ACCESS_DENIED`, `INVALID_FILE_PATH`, ...), which
the runner maps to HTTP statuses; nothing here ever surfaces as an internal error.
"""
from __future__ import annotations

import errno
import os
import stat
import time

from .errors import BAD_REQUEST, AgentError

FILE_NOT_FOUND = "FILE_NOT_FOUND"
FILE_ACCESS_DENIED = "FILE_ACCESS_DENIED"
INVALID_FILE_PATH = "INVALID_FILE_PATH"
FILE_EXISTS = "FILE_EXISTS"
DIRECTORY_NOT_EMPTY = "DIRECTORY_NOT_EMPTY"
NO_SPACE = "NO_SPACE"
FILE_OPERATION_FAILED = "FILE_OPERATION_FAILED"

_CODES = {
    errno.ENOENT: FILE_NOT_FOUND,
    errno.EACCES: FILE_ACCESS_DENIED,
    errno.EPERM: FILE_ACCESS_DENIED,
    errno.EROFS: FILE_ACCESS_DENIED,
    errno.ENOTDIR: INVALID_FILE_PATH,
    errno.EISDIR: INVALID_FILE_PATH,
    errno.ENAMETOOLONG: INVALID_FILE_PATH,
    errno.ELOOP: INVALID_FILE_PATH,
    errno.EINVAL: INVALID_FILE_PATH,
    errno.EXDEV: INVALID_FILE_PATH,
    errno.EEXIST: FILE_EXISTS,
    errno.ENOTEMPTY: DIRECTORY_NOT_EMPTY,
    errno.ENOSPC: NO_SPACE,
    errno.EDQUOT: NO_SPACE,
    errno.EFBIG: NO_SPACE,
}


def resolve(context, raw: object, field: str = "path") -> str:
    """The absolute, normalized path a request names (relative paths are under the workdir)."""
    if not isinstance(raw, str):
        raise AgentError(BAD_REQUEST, "'%s' must be a string" % (field,))
    if not raw:
        raise AgentError(INVALID_FILE_PATH, "'%s' must not be empty" % (field,))
    if "\0" in raw:
        raise AgentError(INVALID_FILE_PATH, "'%s' must not contain NUL bytes" % (field,))
    return os.path.normpath(os.path.join(context.workdir, raw))


def os_failure(error: OSError, path: str) -> AgentError:
    """An OSError as the error a client can act on, with a message naming the path."""
    code = _CODES.get(error.errno or 0, FILE_OPERATION_FAILED)
    reason = error.strerror or str(error)
    return AgentError(code, "%s: %s" % (reason, text(path)))


def text(value: str) -> str:
    """A name from the disk as valid UTF-8 (names that are not UTF-8 get U+FFFD substitutes)."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def parse_mode(raw: object, default: int | None) -> int | None:
    """An octal permission string ("755", "0644") -> its bits; None/"" -> `default`."""
    if raw is None or raw == "":
        return default
    if not isinstance(raw, str):
        raise AgentError(BAD_REQUEST, "'mode' must be an octal string such as \"755\"")
    try:
        mode = int(raw, 8)
    except ValueError:
        raise AgentError(BAD_REQUEST, "'mode' must be an octal string such as \"755\", got %r" % (raw,)) from None
    if not 0 <= mode <= 0o7777:
        raise AgentError(BAD_REQUEST, "'mode' must be between 0 and 7777, got %r" % (raw,))
    return mode


class Describer:
    """Builds FileInfo dicts, caching user and group names (a listing may hold thousands of entries)."""

    __slots__ = ("_users", "_groups")

    def __init__(self) -> None:
        self._users: dict = {}
        self._groups: dict = {}

    def describe(self, path: str, st: os.stat_result, name: str | None = None) -> dict:
        mtime = st.st_mtime_ns
        seconds, nanos = divmod(mtime, 1_000_000_000)
        utc = time.gmtime(seconds)
        return {
            "name": text(name if name is not None else (os.path.basename(path) or path)),
            "path": text(path),
            "isDir": stat.S_ISDIR(st.st_mode),
            "size": st.st_size,
            "mode": stat.filemode(st.st_mode),
            "permissions": "%04o" % (stat.S_IMODE(st.st_mode),),
            "owner": self._user(st.st_uid),
            "group": self._group(st.st_gid),
            # Go's time.String() layout, as Daytona's daemon answers (the SDK keeps it as a string).
            "modTime": "%s.%09d +0000 UTC" % (time.strftime("%Y-%m-%d %H:%M:%S", utc), nanos),
            "modifiedAt": "%s.%09dZ" % (time.strftime("%Y-%m-%dT%H:%M:%S", utc), nanos),
        }

    def _user(self, uid: int) -> str:
        name = self._users.get(uid)
        if name is None:
            import pwd

            try:
                name = pwd.getpwuid(uid).pw_name
            except KeyError:
                name = str(uid)
            self._users[uid] = name
        return name

    def _group(self, gid: int) -> str:
        name = self._groups.get(gid)
        if name is None:
            import grp

            try:
                name = grp.getgrgid(gid).gr_name
            except KeyError:
                name = str(gid)
            self._groups[gid] = name
        return name


def stat_path(path: str, follow: bool = True) -> os.stat_result:
    try:
        return os.stat(path) if follow else os.lstat(path)
    except OSError as error:
        raise os_failure(error, path) from None


class ItemBatcher:
    """Collects result items and sends them in frames of about `limit` bytes of JSON."""

    __slots__ = ("connection", "limit", "items", "size", "count")

    def __init__(self, connection, limit: int = 256 * 1024) -> None:
        self.connection = connection
        self.limit = limit
        self.items: list = []
        self.size = 0
        self.count = 0

    def add(self, item: object, estimate: int) -> None:
        self.items.append(item)
        self.size += estimate
        self.count += 1
        if self.size >= self.limit:
            self.flush()

    def flush(self) -> None:
        if self.items:
            self.connection.send({"type": "items", "items": self.items})
            self.items = []
            self.size = 0

    def finish(self, **result: object) -> None:
        self.flush()
        self.connection.send(dict(result, type="result", count=self.count))
