"""An SFTP (version 3) server on stdin/stdout, as OpenSSH's `sftp-server`: what SSH's `sftp` subsystem runs.

The agent starts it as a process of its own (`exec_stream` with `"program": "sftp-server"`), as the
sandbox user in the user's home, so every file it makes belongs to that user, with the modes asked for.
Requests are answered one at a time in arrival order (clients pipeline them); a file's bytes pass
through one read or write at a time, so memory stays flat whatever the file size.

Besides the base protocol it offers OpenSSH's extensions that `sftp` and `scp` (which speaks SFTP since
OpenSSH 9) use: posix-rename, statvfs, fstatvfs, hardlink, fsync, lsetstat, limits, expand-path and
home-directory. As OpenSSH does, SYMLINK takes the target first, then the link path.
"""
from __future__ import annotations

import os
import pwd
import stat
import struct
import sys

from .sftp_wire import (
    ATTRS, BadMessage, CLOSE, DATA, EOF, EXTENDED, EXTENDED_REPLY, EXTENSIONS, FAILURE, FSETSTAT, FSTAT, F_APPEND,
    F_CREAT, F_EXCL, F_READ, F_TRUNC, F_WRITE, HANDLE, INIT, LSTAT, MAX_HANDLES, MAX_IO, MAX_PACKET, MKDIR, NAME,
    NO_SUCH_FILE, Names, OK, OPEN, OPENDIR, OP_UNSUPPORTED, READ, READDIR, READDIR_BATCH, READLINK, REALPATH,
    REMOVE, RENAME, RMDIR, Reader, Reply, SETSTAT, STAT, STATUS, SYMLINK, VERSION, VERSION_REPLY, WRITE,
    STATUS_OF_ERRNO, encode_attrs, string, u32, u64,
)

class Server:
    def __init__(self, read_fd: int = 0, write_fd: int = 1) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd
        self.handles: dict = {}  # handle -> ("file", fd) | ("dir", path, [names])
        self.next_handle = 0
        self.names = Names()
        self.buffer = bytearray()
        self.handlers = {
            OPEN: self.open, CLOSE: self.close, READ: self.read, WRITE: self.write, LSTAT: self.lstat,
            FSTAT: self.fstat, SETSTAT: self.setstat, FSETSTAT: self.fsetstat, OPENDIR: self.opendir,
            READDIR: self.readdir, REMOVE: self.remove, MKDIR: self.mkdir, RMDIR: self.rmdir,
            REALPATH: self.realpath, STAT: self.stat, RENAME: self.rename, READLINK: self.readlink,
            SYMLINK: self.symlink, EXTENDED: self.extended,
        }
        self.extensions = {
            b"posix-rename@openssh.com": self.posix_rename, b"statvfs@openssh.com": self.statvfs,
            b"fstatvfs@openssh.com": self.fstatvfs, b"hardlink@openssh.com": self.hardlink,
            b"fsync@openssh.com": self.fsync, b"lsetstat@openssh.com": self.lsetstat,
            b"limits@openssh.com": self.limits, b"expand-path@openssh.com": self.expand_path,
            b"home-directory": self.home_directory,
        }

    # --- the loop ---------------------------------------------------------------------------------

    def serve(self) -> int:
        """Answer requests until the client closes its end; the exit status."""
        try:
            while True:
                packet = self._next_packet()
                if packet is None:
                    return 0
                self._dispatch(packet)
        except BadMessage as error:
            sys.stderr.write("sftp-server: %s\n" % (error,))
            return 1
        except (BrokenPipeError, ConnectionError):
            return 0
        finally:
            for handle in list(self.handles):
                self._release(handle)

    def _next_packet(self) -> bytes | None:
        while True:
            if len(self.buffer) >= 4:
                length = struct.unpack(">I", self.buffer[:4])[0]
                if length < 1 or length > MAX_PACKET + 1024:
                    raise BadMessage("packet of %d bytes" % (length,))
                if len(self.buffer) >= 4 + length:
                    packet = bytes(self.buffer[4:4 + length])
                    del self.buffer[:4 + length]
                    return packet
            chunk = os.read(self.read_fd, 1024 * 1024)
            if not chunk:
                if self.buffer:
                    raise BadMessage("the client closed mid-packet")
                return None
            self.buffer += chunk

    def _send(self, kind: int, body: bytes) -> None:
        view = memoryview(u32(len(body) + 1) + bytes((kind,)) + body)
        while view:
            view = view[os.write(self.write_fd, view):]

    def _dispatch(self, packet: bytes) -> None:
        kind, reader = packet[0], Reader(packet[1:])
        if kind == INIT:
            reader.u32()
            self._send(VERSION_REPLY, u32(VERSION) + b"".join(string(n) + string(v) for n, v in EXTENSIONS))
            return
        request_id = reader.u32()
        handler = self.handlers.get(kind)
        try:
            if handler is None:
                raise Reply(OP_UNSUPPORTED, "unknown request type %d" % (kind,))
            reply = handler(reader)
        except Reply as status:
            reply = (STATUS, u32(status.code) + string(status.message.encode()) + string(b""))
        except OSError as error:
            code = STATUS_OF_ERRNO.get(error.errno or 0, FAILURE)
            reply = (STATUS, u32(code) + string((error.strerror or str(error)).encode()) + string(b""))
        self._send(reply[0], u32(request_id) + reply[1])

    # --- handles ----------------------------------------------------------------------------------

    def _new_handle(self, value: tuple) -> tuple:
        if len(self.handles) >= MAX_HANDLES:
            if value[0] == "file":
                os.close(value[1])
            raise Reply(FAILURE, "too many open handles")
        self.next_handle += 1
        handle = b"%d" % (self.next_handle,)
        self.handles[handle] = value
        return HANDLE, string(handle)

    def _handle(self, reader: Reader, kind: str) -> tuple:
        value = self.handles.get(reader.string())
        if value is None or value[0] != kind:
            raise Reply(FAILURE, "invalid handle")
        return value

    def _release(self, handle: bytes) -> None:
        value = self.handles.pop(handle, None)
        if value is not None and value[0] == "file":
            os.close(value[1])

    # --- requests -----------------------------------------------------------------------------------

    def open(self, reader: Reader) -> tuple:
        path, pflags, attrs = reader.path(), reader.u32(), reader.attrs()
        flags = os.O_CLOEXEC | os.O_NOCTTY
        if pflags & F_READ and pflags & F_WRITE:
            flags |= os.O_RDWR
        elif pflags & F_WRITE:
            flags |= os.O_WRONLY
        else:
            flags |= os.O_RDONLY
        for bit, os_bit in ((F_APPEND, os.O_APPEND), (F_CREAT, os.O_CREAT), (F_TRUNC, os.O_TRUNC),
                            (F_EXCL, os.O_EXCL)):
            if pflags & bit:
                flags |= os_bit
        fd = os.open(path, flags, attrs.get("permissions", 0o666) & 0o7777)
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            os.close(fd)
            raise Reply(FAILURE, "is a directory")
        return self._new_handle(("file", fd, bool(pflags & F_APPEND)))

    def close(self, reader: Reader) -> tuple:
        handle = reader.string()
        if handle not in self.handles:
            raise Reply(FAILURE, "invalid handle")
        self._release(handle)
        return _ok()

    def read(self, reader: Reader) -> tuple:
        fd = self._handle(reader, "file")[1]
        offset, length = reader.u64(), reader.u32()
        data = os.pread(fd, min(length, MAX_IO), offset)
        if not data and length:
            raise Reply(EOF)
        return DATA, string(data)

    def write(self, reader: Reader) -> tuple:
        _, fd, append = self._handle(reader, "file")
        offset, data = reader.u64(), memoryview(reader.string())
        while data:
            written = os.write(fd, data) if append else os.pwrite(fd, data, offset)
            data = data[written:]
            offset += written
        return _ok()

    def stat(self, reader: Reader) -> tuple:
        return ATTRS, encode_attrs(os.stat(reader.path()))

    def lstat(self, reader: Reader) -> tuple:
        return ATTRS, encode_attrs(os.lstat(reader.path()))

    def fstat(self, reader: Reader) -> tuple:
        return ATTRS, encode_attrs(os.fstat(self._handle(reader, "file")[1]))

    def setstat(self, reader: Reader) -> tuple:
        path = reader.path()
        _apply_attrs(path, reader.attrs(), follow=True)
        return _ok()

    def lsetstat(self, reader: Reader) -> tuple:
        path = reader.path()
        _apply_attrs(path, reader.attrs(), follow=False)
        return _ok()

    def fsetstat(self, reader: Reader) -> tuple:
        fd = self._handle(reader, "file")[1]
        _apply_attrs(fd, reader.attrs(), follow=True)
        return _ok()

    def opendir(self, reader: Reader) -> tuple:
        path = reader.path()
        names = [b".", b".."] + sorted(os.listdir(path))  # raises for a missing or unreadable directory
        return self._new_handle(("dir", path, names))

    def readdir(self, reader: Reader) -> tuple:
        _, path, names = self._handle(reader, "dir")
        if not names:
            raise Reply(EOF)
        batch, names[:] = names[:READDIR_BATCH], names[READDIR_BATCH:]
        entries = []
        for name in batch:
            try:
                st = os.lstat(os.path.join(path, name))
            except OSError:
                continue  # removed meanwhile
            entries.append(string(name) + string(self.names.long_name(name, st)) + encode_attrs(st))
        return NAME, u32(len(entries)) + b"".join(entries)

    def remove(self, reader: Reader) -> tuple:
        path = reader.path()
        if stat.S_ISDIR(os.lstat(path).st_mode):
            raise Reply(FAILURE, "is a directory")
        os.unlink(path)
        return _ok()

    def mkdir(self, reader: Reader) -> tuple:
        path, attrs = reader.path(), reader.attrs()
        os.mkdir(path, attrs.get("permissions", 0o777) & 0o7777)
        return _ok()

    def rmdir(self, reader: Reader) -> tuple:
        os.rmdir(reader.path())
        return _ok()

    def realpath(self, reader: Reader) -> tuple:
        return _one_name(os.path.realpath(reader.path()))

    def rename(self, reader: Reader) -> tuple:
        old, new = reader.path(), reader.path()
        if os.path.lexists(new):  # SFTP v3: never replace an existing file
            raise Reply(FAILURE, "the target exists")
        os.rename(old, new)
        return _ok()

    def readlink(self, reader: Reader) -> tuple:
        return _one_name(os.readlink(reader.path()))

    def symlink(self, reader: Reader) -> tuple:
        target, link = reader.string(), reader.path()  # OpenSSH's order
        os.symlink(target, link)
        return _ok()

    def extended(self, reader: Reader) -> tuple:
        handler = self.extensions.get(reader.string())
        if handler is None:
            raise Reply(OP_UNSUPPORTED, "unsupported extension")
        return handler(reader)

    # --- extensions ---------------------------------------------------------------------------------

    def posix_rename(self, reader: Reader) -> tuple:
        old, new = reader.path(), reader.path()
        os.rename(old, new)
        return _ok()

    def statvfs(self, reader: Reader) -> tuple:
        return _statvfs(os.statvfs(reader.path()))

    def fstatvfs(self, reader: Reader) -> tuple:
        return _statvfs(os.fstatvfs(self._handle(reader, "file")[1]))

    def hardlink(self, reader: Reader) -> tuple:
        old, new = reader.path(), reader.path()
        os.link(old, new)
        return _ok()

    def fsync(self, reader: Reader) -> tuple:
        os.fsync(self._handle(reader, "file")[1])
        return _ok()

    def limits(self, reader: Reader) -> tuple:
        return EXTENDED_REPLY, u64(MAX_PACKET) + u64(MAX_IO) + u64(MAX_IO) + u64(MAX_HANDLES)

    def expand_path(self, reader: Reader) -> tuple:
        path = reader.path()
        if path.startswith(b"~"):
            expanded = os.path.expanduser(path)
            if expanded == path:
                raise Reply(NO_SUCH_FILE, "no such user")
            path = expanded
        return _one_name(os.path.realpath(path))

    def home_directory(self, reader: Reader) -> tuple:
        user = reader.string()
        try:
            home = pwd.getpwnam(user.decode()).pw_dir.encode() if user else os.path.expanduser(b"~")
        except (KeyError, UnicodeDecodeError):
            raise Reply(NO_SUCH_FILE, "no such user") from None
        return _one_name(home)


def _ok() -> tuple:
    return STATUS, u32(OK) + string(b"Success") + string(b"")


def _one_name(path: bytes) -> tuple:
    # attrs of a NAME reply to REALPATH carry nothing (flags 0), as OpenSSH's server answers
    return NAME, u32(1) + string(path) + string(path) + u32(0)


def _statvfs(st: os.statvfs_result) -> tuple:
    fields = (st.f_bsize, st.f_frsize, st.f_blocks, st.f_bfree, st.f_bavail, st.f_files, st.f_ffree,
              st.f_favail, getattr(st, "f_fsid", 0), st.f_flag, st.f_namemax)
    return EXTENDED_REPLY, b"".join(u64(v) for v in fields)


def _apply_attrs(target: object, attrs: dict, follow: bool) -> None:
    """Size, owner, mode, times, in the order OpenSSH applies them. `target` is a path or an fd."""
    if "size" in attrs:
        os.truncate(target, attrs["size"])  # type: ignore[arg-type]
    if "permissions" in attrs and (follow or isinstance(target, int)):
        os.chmod(target, attrs["permissions"] & 0o7777)  # type: ignore[arg-type]
    if "atime" in attrs:
        os.utime(target, (attrs["atime"], attrs["mtime"]),  # type: ignore[arg-type]
                 **({} if isinstance(target, int) else {"follow_symlinks": follow}))
    if "uid" in attrs:
        os.chown(target, attrs["uid"], attrs["gid"],  # type: ignore[arg-type]
                 **({} if isinstance(target, int) else {"follow_symlinks": follow}))


def main() -> int:
    return Server().serve()


if __name__ == "__main__":
    sys.exit(main())
