"""The `tunnel` op: a raw byte pipe to a TCP port on the agent's loopback, full duplex, half-close
carried both ways, refusals as error frames, and an open tunnel counted as activity."""
from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from agent_harness import DEADLINE_SECONDS, RunningAgent, raw_exchange
from corral_agent.client import AgentStream, PortClosed, open_tunnel
from corral_agent.framing import encode_frame
from session_harness import eventually, result_of

Serve = Callable[[socket.socket], None]


@contextmanager
def tcp_server(serve: Serve, host: str = "127.0.0.1", family: int = socket.AF_INET) -> Iterator[int]:
    """A listening socket on a free port; each accepted connection is handled by `serve` on its
    own thread. Yields the port; failures inside `serve` fail the test at the end."""
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, 0))
    listener.listen(16)
    errors: list[BaseException] = []
    threads: list[threading.Thread] = []

    def handle(conn: socket.socket) -> None:
        try:
            with conn:
                serve(conn)
        except BaseException as error:  # reported by the test below
            errors.append(error)

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=handle, args=(conn,), daemon=True)
            thread.start()
            threads.append(thread)

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield listener.getsockname()[1]
    finally:
        try:
            listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        listener.close()
        for thread in threads:
            thread.join(DEADLINE_SECONDS)
    if errors:
        raise errors[0]


def echo(conn: socket.socket) -> None:
    while data := conn.recv(65536):
        conn.sendall(data)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def read_all(stream: AgentStream) -> bytes:
    chunks = []
    async with asyncio.timeout(DEADLINE_SECONDS * 3):
        while chunk := await stream.read_raw(1024 * 1024):
            chunks.append(chunk)
    return b"".join(chunks)


async def tunnels_open(agent: RunningAgent) -> int:
    return int((await result_of(agent.socket_path, "activity"))["running"])


async def test_bytes_go_through_both_ways_and_the_tunnel_counts_as_activity(agent: RunningAgent):
    with tcp_server(echo) as port:
        assert await tunnels_open(agent) == 0
        stream = await open_tunnel(agent.socket_path, port)
        try:
            await stream.send_raw(b"hello through the tunnel\n")
            assert await stream.reader.readexactly(25) == b"hello through the tunnel\n"
            assert await tunnels_open(agent) == 1
        finally:
            await stream.close()

        async def closed() -> bool:
            return await tunnels_open(agent) == 0

        await eventually(closed, "the closed tunnel to stop counting as activity")


@pytest.mark.parametrize(("host", "family"), [("0.0.0.0", socket.AF_INET), ("::1", socket.AF_INET6)],
                         ids=["bound-to-any", "bound-to-ipv6-loopback"])
async def test_servers_bound_to_any_address_or_to_ipv6_loopback_are_reached(agent: RunningAgent, host, family):
    if family == socket.AF_INET6 and not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    with tcp_server(echo, host=host, family=family) as port:
        stream = await open_tunnel(agent.socket_path, port)
        async with stream:
            await stream.send_raw(b"ping")
            assert await stream.reader.readexactly(4) == b"ping"


async def test_nothing_listening_is_port_closed(agent: RunningAgent):
    port = free_port()
    with pytest.raises(PortClosed) as refused:
        await open_tunnel(agent.socket_path, port)
    assert refused.value.code == "PORT_CLOSED" and refused.value.port == port
    assert refused.value.message == f"nothing is listening on port {port} in the sandbox"
    frames = raw_exchange(agent.socket_path, encode_frame({"op": "tunnel", "port": port}))
    assert frames == [{"type": "error", "code": "PORT_CLOSED",
                       "message": f"nothing is listening on port {port} in the sandbox"}]


@pytest.mark.parametrize("port", [0, 65536, -1, "80", True, None, 80.0])
def test_a_bad_port_is_a_bad_request(agent: RunningAgent, port):
    frames = raw_exchange(agent.socket_path, encode_frame({"op": "tunnel", "port": port}))
    assert [(f["type"], f["code"]) for f in frames] == [("error", "BAD_REQUEST")]


async def test_a_large_full_duplex_transfer_does_not_deadlock(agent: RunningAgent):
    """Both sides send 24 MiB at once while reading: far beyond every socket buffer, so a pipe that
    copied one direction at a time would stall. Every byte arrives, in order."""
    size = 24 * 1024 * 1024
    upload = os.urandom(size)
    download = os.urandom(size)
    received: dict[str, str] = {}

    def serve(conn: socket.socket) -> None:
        def send() -> None:
            conn.sendall(download)
            conn.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send)
        sender.start()
        digest = hashlib.sha256()
        while data := conn.recv(1024 * 1024):
            digest.update(data)
        received["upload"] = digest.hexdigest()
        sender.join()

    with tcp_server(serve) as port:
        stream = await open_tunnel(agent.socket_path, port)
        async with stream:
            async def push() -> None:
                view = memoryview(upload)
                for start in range(0, size, 256 * 1024):
                    await stream.send_raw(view[start:start + 256 * 1024])
                stream.half_close()

            pushed = asyncio.create_task(push())
            got = await read_all(stream)
            await asyncio.wait_for(pushed, DEADLINE_SECONDS)
    assert len(got) == size and hashlib.sha256(got).digest() == hashlib.sha256(download).digest()
    assert received["upload"] == hashlib.sha256(upload).hexdigest()


async def test_an_echo_of_a_large_stream_flows_while_it_is_sent(agent: RunningAgent):
    size = 16 * 1024 * 1024
    payload = os.urandom(size)
    with tcp_server(echo) as port:
        stream = await open_tunnel(agent.socket_path, port)
        async with stream:
            async def push() -> None:
                await stream.send_raw(payload)
                stream.half_close()

            pushed = asyncio.create_task(push())
            got = await read_all(stream)
            await pushed
    assert got == payload


async def test_client_half_close_reaches_the_server_which_still_answers(agent: RunningAgent):
    """The client's EOF becomes the server's EOF; the server answers after it, then closes."""

    def serve(conn: socket.socket) -> None:
        request = b""
        while data := conn.recv(65536):
            request += data
        conn.sendall(b"got %d bytes: %s" % (len(request), request[:20]))

    with tcp_server(serve) as port:
        stream = await open_tunnel(agent.socket_path, port)
        async with stream:
            await stream.send_raw(b"the whole request")
            stream.half_close()
            assert await read_all(stream) == b"got 17 bytes: the whole request"


async def test_server_half_close_reaches_the_client_which_can_still_send(agent: RunningAgent):
    """The server's EOF arrives as the end of the stream; bytes the client sends afterwards still
    reach the server, and the tunnel ends once the client half-closes too."""
    seen: list[bytes] = []

    def serve(conn: socket.socket) -> None:
        conn.sendall(b"banner")
        conn.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
        seen.append(data)

    with tcp_server(serve) as port:
        stream = await open_tunnel(agent.socket_path, port)
        async with stream:
            assert await read_all(stream) == b"banner"
            await stream.send_raw(b"after the server's EOF")
            stream.half_close()
            assert await stream.read_raw(1) == b""

        async def done() -> bool:
            return await tunnels_open(agent) == 0

        await eventually(done, "the tunnel to end")
    assert seen == [b"after the server's EOF"]


async def test_a_client_that_goes_away_ends_a_server_that_ignores_eof(agent: RunningAgent):
    """A half-closed client that then closes entirely takes the tunnel down, even when the server
    never closes its side: no thread (and no activity) is left behind."""
    release = threading.Event()

    def serve(conn: socket.socket) -> None:
        while conn.recv(65536):
            pass
        release.wait(DEADLINE_SECONDS)  # EOF from the client: ignored, the connection stays open

    with tcp_server(serve) as port:
        stream = await open_tunnel(agent.socket_path, port)
        await stream.send_raw(b"x")
        stream.half_close()

        async def one_open() -> bool:
            return await tunnels_open(agent) == 1

        await eventually(one_open, "the half-closed tunnel to stay open")
        await stream.close()

        async def none_open() -> bool:
            return await tunnels_open(agent) == 0

        try:
            await eventually(none_open, "the abandoned tunnel to end while the server holds its side open")
        finally:
            release.set()


async def test_a_server_reset_ends_the_tunnel(agent: RunningAgent):
    def serve(conn: socket.socket) -> None:
        conn.recv(1)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()  # with a zero linger: a reset

    with tcp_server(serve) as port:
        stream = await open_tunnel(agent.socket_path, port)
        async with stream:
            await stream.send_raw(b"x")
            assert await read_all(stream) == b""

        async def none_open() -> bool:
            return await tunnels_open(agent) == 0

        await eventually(none_open, "the reset tunnel to end")


async def test_many_tunnels_at_once(agent: RunningAgent):
    with tcp_server(echo) as port:
        async def one(n: int) -> bytes:
            stream = await open_tunnel(agent.socket_path, port)
            async with stream:
                message = b"tunnel %d" % n
                await stream.send_raw(message)
                stream.half_close()
                return await read_all(stream)

        results = await asyncio.gather(*(one(n) for n in range(20)))
    assert results == [b"tunnel %d" % n for n in range(20)]
