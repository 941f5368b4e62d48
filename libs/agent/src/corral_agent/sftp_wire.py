"""The SFTP version 3 wire (draft-ietf-secsh-filexfer-02) as the agent's SFTP server speaks it: packet
types, status codes, attribute flags, the request reader, encoders and `ls -l` long names."""
from __future__ import annotations

import errno
import os
import pwd
import stat
import struct
import time

VERSION = 3
MAX_PACKET = 256 * 1024
"""The largest request accepted (as OpenSSH: 256 KiB)."""
MAX_IO = MAX_PACKET - 1024
"""The largest read or write, announced through limits@openssh.com."""
MAX_HANDLES = 256
READDIR_BATCH = 100

# packet types
INIT, VERSION_REPLY, OPEN, CLOSE, READ, WRITE, LSTAT, FSTAT, SETSTAT, FSETSTAT = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
OPENDIR, READDIR, REMOVE, MKDIR, RMDIR, REALPATH, STAT, RENAME, READLINK, SYMLINK = 11, 12, 13, 14, 15, 16, 17, 18, 19, 20
STATUS, HANDLE, DATA, NAME, ATTRS, EXTENDED, EXTENDED_REPLY = 101, 102, 103, 104, 105, 200, 201
# status codes
OK, EOF, NO_SUCH_FILE, PERMISSION_DENIED, FAILURE, BAD_MESSAGE, NO_CONNECTION, CONNECTION_LOST, OP_UNSUPPORTED = range(9)
# attribute flags
A_SIZE, A_UIDGID, A_PERMISSIONS, A_ACMODTIME, A_EXTENDED = 0x1, 0x2, 0x4, 0x8, 0x80000000
# open flags
F_READ, F_WRITE, F_APPEND, F_CREAT, F_TRUNC, F_EXCL = 0x1, 0x2, 0x4, 0x8, 0x10, 0x20

EXTENSIONS = (
    (b"posix-rename@openssh.com", b"1"), (b"statvfs@openssh.com", b"2"), (b"fstatvfs@openssh.com", b"2"),
    (b"hardlink@openssh.com", b"1"), (b"fsync@openssh.com", b"1"), (b"lsetstat@openssh.com", b"1"),
    (b"limits@openssh.com", b"1"), (b"expand-path@openssh.com", b"1"), (b"home-directory", b"1"),
)

STATUS_OF_ERRNO = {errno.ENOENT: NO_SUCH_FILE, errno.ENOTDIR: NO_SUCH_FILE, errno.EACCES: PERMISSION_DENIED,
                    errno.EPERM: PERMISSION_DENIED, errno.EROFS: PERMISSION_DENIED}
_MESSAGES = {OK: "Success", EOF: "End of file", NO_SUCH_FILE: "No such file", PERMISSION_DENIED: "Permission denied",
             FAILURE: "Failure", BAD_MESSAGE: "Bad message", OP_UNSUPPORTED: "Operation unsupported"}


class BadMessage(Exception):
    """A request that does not parse."""


class Reply(Exception):
    """Answer the current request with this status (raised from deep in a handler)."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message or _MESSAGES.get(code, "Failure")


class Reader:
    """Fields of one request packet."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            raise BadMessage("truncated packet")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def u32(self) -> int:
        return struct.unpack(">I", self.take(4))[0]

    def u64(self) -> int:
        return struct.unpack(">Q", self.take(8))[0]

    def string(self) -> bytes:
        return self.take(self.u32())

    def path(self) -> bytes:
        value = self.string()
        if b"\0" in value:
            raise Reply(NO_SUCH_FILE, "path holds a NUL byte")
        return value or b"."

    def attrs(self) -> dict:
        flags = self.u32()
        attrs = {}
        if flags & A_SIZE:
            attrs["size"] = self.u64()
        if flags & A_UIDGID:
            attrs["uid"], attrs["gid"] = self.u32(), self.u32()
        if flags & A_PERMISSIONS:
            attrs["permissions"] = self.u32()
        if flags & A_ACMODTIME:
            attrs["atime"], attrs["mtime"] = self.u32(), self.u32()
        if flags & A_EXTENDED:
            for _ in range(self.u32()):
                self.string()
                self.string()
        return attrs


def u32(value: int) -> bytes:
    return struct.pack(">I", value & 0xFFFFFFFF)


def u64(value: int) -> bytes:
    return struct.pack(">Q", max(0, value))


def string(value: bytes) -> bytes:
    return u32(len(value)) + value


def encode_attrs(st: os.stat_result) -> bytes:
    return (u32(A_SIZE | A_UIDGID | A_PERMISSIONS | A_ACMODTIME) + u64(st.st_size) + u32(st.st_uid)
            + u32(st.st_gid) + u32(st.st_mode) + u32(int(st.st_atime)) + u32(int(st.st_mtime)))


class Names:
    """User and group names for `ls -l` lines, cached."""

    def __init__(self) -> None:
        self._users: dict = {}
        self._groups: dict = {}

    def user(self, uid: int) -> str:
        if uid not in self._users:
            try:
                self._users[uid] = pwd.getpwuid(uid).pw_name
            except KeyError:
                self._users[uid] = str(uid)
        return self._users[uid]

    def group(self, gid: int) -> str:
        if gid not in self._groups:
            import grp

            try:
                self._groups[gid] = grp.getgrgid(gid).gr_name
            except KeyError:
                self._groups[gid] = str(gid)
        return self._groups[gid]

    def long_name(self, name: bytes, st: os.stat_result) -> bytes:
        """An `ls -l` line, as OpenSSH's sftp-server makes them."""
        when = time.localtime(st.st_mtime)
        recent = abs(time.time() - st.st_mtime) < 182 * 86400
        stamp = time.strftime("%b %e %H:%M" if recent else "%b %e  %Y", when)
        head = "%s %4d %-8s %-8s %8d %s " % (stat.filemode(st.st_mode), st.st_nlink, self.user(st.st_uid),
                                             self.group(st.st_gid), st.st_size, stamp)
        return head.encode("utf-8", "replace") + name
