"""The unix socket server: one thread per connection, one request per connection."""
from __future__ import annotations

import errno
import os
import socket
import stat
import sys
import threading
import time

from .connection import Connection
from .context import AgentContext
from .errors import BAD_REQUEST, INTERNAL, UNAVAILABLE, UNKNOWN_OP, AgentError
from .framing import FrameError
from .handlers import HANDLERS

REQUEST_TIMEOUT_SECONDS = 30.0  # a connection that sends no complete request by then is dropped
_ACCEPT_RETRY_SECONDS = 0.05  # after EMFILE and friends, before accepting again


class StartupError(Exception):
    """The agent cannot listen where it was asked to."""


class AgentServer:
    def __init__(self, context: AgentContext, socket_path: str, socket_mode: int = 0o660) -> None:
        self.context = context
        self.socket_path = os.path.abspath(socket_path)
        self.socket_mode = socket_mode
        self._listener: socket.socket | None = None
        self._inode: int | None = None

    def listen(self) -> None:
        """Bind the socket: parent directory created, a stale socket file replaced, mode set."""
        os.makedirs(os.path.dirname(self.socket_path), exist_ok=True)
        _remove_stale_socket(self.socket_path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(self.socket_path)
            os.chmod(self.socket_path, self.socket_mode)
            listener.listen(128)
        except OSError:
            listener.close()
            raise
        self._inode = os.stat(self.socket_path).st_ino
        self._listener = listener

    def serve_forever(self) -> None:
        listener = self._listener
        if listener is None:
            raise RuntimeError("listen() first")
        while True:
            try:
                sock, _ = listener.accept()
            except OSError as error:
                if self._listener is None or error.errno == errno.EBADF:
                    return
                log("accept failed: %s" % (error,))
                time.sleep(_ACCEPT_RETRY_SECONDS)
                continue
            self._start_connection(sock)

    def close(self) -> None:
        """Stop listening, remove our socket file, kill the process groups of running execs."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
            try:
                if os.stat(self.socket_path).st_ino == self._inode:
                    os.unlink(self.socket_path)
            except OSError:
                pass
        self.context.groups.kill_all()

    def _start_connection(self, sock: socket.socket) -> None:
        try:
            threading.Thread(target=serve_connection, args=(sock, self.context), daemon=True).start()
        except RuntimeError:  # no thread left (pids limit): say so rather than hang the client
            connection = Connection(sock)
            try:
                connection.send(AgentError(UNAVAILABLE, "the agent cannot start a thread").frame(), 1.0)
            except OSError:
                pass
            connection.close()


def serve_connection(sock: socket.socket, context: AgentContext) -> None:
    """Read the one request, run its handler, reply; never raises."""
    connection = Connection(sock)
    try:
        _dispatch(connection, context)
    except AgentError as error:
        _reply(connection, error)
    except (ConnectionError, socket.timeout):
        pass  # the client went away or stopped reading
    except Exception as error:  # a bug: keep serving the other connections
        import traceback

        log("internal error:\n" + traceback.format_exc())
        _reply(connection, AgentError(INTERNAL, "internal agent error: %s" % (error,)))
    finally:
        connection.close()


def _dispatch(connection: Connection, context: AgentContext) -> None:
    try:
        request = connection.read_request(REQUEST_TIMEOUT_SECONDS)
    except FrameError as error:
        raise AgentError(BAD_REQUEST, str(error)) from None
    except socket.timeout:
        raise AgentError(BAD_REQUEST, "no complete request within %gs" % (REQUEST_TIMEOUT_SECONDS,)) from None
    if request is None:
        return  # connected and closed: a liveness probe
    connection.sock.settimeout(None)
    op = request.get("op")
    if not isinstance(op, str):
        raise AgentError(BAD_REQUEST, "the request has no 'op' string")
    handler = HANDLERS.get(op)
    if handler is None:
        raise AgentError(UNKNOWN_OP, "unknown op %r (known: %s)" % (op, ", ".join(sorted(HANDLERS))))
    handler(request, context, connection)


def _reply(connection: Connection, error: AgentError) -> None:
    try:
        connection.sock.setblocking(True)
        connection.send(error.frame(), 5.0)
    except OSError:
        pass


def _remove_stale_socket(path: str) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise StartupError("%s exists and is not a socket; not replacing it" % (path,))
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)  # nobody listens: left over from an agent that died
        return
    finally:
        probe.close()
    raise StartupError("another process is listening on %s" % (path,))


def log(message: str) -> None:
    try:
        sys.stderr.write("corral-agent: %s\n" % (message,))
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
