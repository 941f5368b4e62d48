"""The `tunnel` op: a raw byte pipe between the client and a TCP port on the sandbox's loopback.

    tunnel {port}   -> {"type": "connected"}, then raw bytes both ways until both directions end;
                       or {"type": "error", "code": "PORT_CLOSED", ...} when nothing listens there.

The agent connects to 127.0.0.1:port, then [::1]:port (a server bound to 0.0.0.0 is reached on
127.0.0.1; one bound to ::1 only on the second try), each with a short connect timeout. After the
`connected` frame the unix-socket connection carries the TCP stream unchanged. Half-close travels
through: EOF from one side becomes shutdown(SHUT_WR) on the other, and the pipe ends once both
directions have ended (or at once, both ways, when either side fails). Each direction is copied by
its own thread (the connection's thread and one more), so a full-duplex transfer cannot deadlock.

Servers bound to localhost work even in a sandbox without network (`networkBlockAll`): the tunnel
never leaves the sandbox's network namespace. An open tunnel is client activity (see `Tunnels.busy`).
"""
from __future__ import annotations

import select
import socket
import threading

from .errors import BAD_REQUEST, PORT_CLOSED, UNAVAILABLE, AgentError
from .framing import encode_frame

CONNECT_TIMEOUT_SECONDS = 3.0
CHUNK_BYTES = 64 * 1024
HANGUP_POLL_MS = 500
_LOOPBACKS = ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1"))


class Tunnels:
    """The count of open tunnels: each one is a client using the sandbox right now."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = 0

    def opened(self) -> None:
        with self._lock:
            self._open += 1

    def closed(self) -> None:
        with self._lock:
            self._open -= 1

    def busy(self) -> int:
        with self._lock:
            return self._open


def tunnel(message: dict, context, connection) -> None:  # type: ignore[no-untyped-def]
    port = message.get("port")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise AgentError(BAD_REQUEST, "'port' must be an integer from 1 to 65535")
    target = connect_loopback(port)
    if target is None:
        raise AgentError(PORT_CLOSED, "nothing is listening on port %d in the sandbox" % (port,))
    tunnels = context.area("tunnels", Tunnels)
    tunnels.opened()
    try:
        _pipe(connection.sock, target)
    finally:
        tunnels.closed()
        target.close()


def _pipe(client: socket.socket, target: socket.socket) -> None:
    """Say `connected`, then copy both ways: sandbox -> client on a new thread (started before the
    frame, but held back until the frame is out), client -> sandbox on this one."""
    go = threading.Event()

    def outbound() -> None:
        go.wait()
        _copy(target, client)

    thread = threading.Thread(target=outbound, daemon=True)
    try:
        thread.start()
    except RuntimeError:  # no thread left (pids limit): still time for an error frame
        raise AgentError(UNAVAILABLE, "the agent cannot start a thread for the tunnel") from None
    try:
        client.sendall(encode_frame({"type": "connected"}))
    except OSError:  # the client is gone already
        _shutdown(target, socket.SHUT_RDWR)
        _shutdown(client, socket.SHUT_RDWR)
    finally:
        go.set()
    if _copy(client, target):
        _await_hangup(client, target, thread)
    thread.join()


def _await_hangup(client: socket.socket, target: socket.socket, outbound: threading.Thread) -> None:
    """The client half-closed; the sandbox side may still talk. Should the client then go away
    entirely (a full close, seen as POLLHUP), end the sandbox side too, so a server that ignores
    EOF cannot hold the tunnel (and its activity) open forever."""
    poller = select.poll()
    poller.register(client, select.POLLHUP)
    while outbound.is_alive():
        if poller.poll(HANGUP_POLL_MS):  # only POLLHUP (and POLLERR, POLLNVAL) are reported
            _shutdown(target, socket.SHUT_RDWR)
            return


def connect_loopback(port: int):  # type: ignore[no-untyped-def]
    """A connected TCP socket to the port on 127.0.0.1 or ::1, or None if neither accepts."""
    for family, address in _LOOPBACKS:
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError:  # no IPv6 in this sandbox
            continue
        try:
            sock.settimeout(CONNECT_TIMEOUT_SECONDS)
            sock.connect((address, port))
        except OSError:
            sock.close()
            continue
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    return None


def _copy(source: socket.socket, sink: socket.socket) -> bool:
    """Copy until `source` ends: a clean EOF half-closes `sink` (True); a failure on either side
    ends both directions of both sockets (False; the other thread then returns too)."""
    buffer = bytearray(CHUNK_BYTES)
    view = memoryview(buffer)
    try:
        while True:
            count = source.recv_into(buffer)
            if count == 0:
                break
            sink.sendall(view[:count])
    except OSError:
        for sock in (source, sink):
            _shutdown(sock, socket.SHUT_RDWR)
        return False
    _shutdown(sink, socket.SHUT_WR)
    return True


def _shutdown(sock: socket.socket, how: int) -> None:
    try:
        sock.shutdown(how)
    except OSError:
        pass


HANDLERS: dict = {"tunnel": tunnel}
