"""A build's log reaches its readers whole, in order, ended by one `end` chunk, however its close falls."""

from __future__ import annotations

import asyncio

from corral_contracts.snapshot_manager import BuildLogChunk
from corral_snapshot_manager.app.builds import BuildLog
from corral_web.asyncio_compat import ORIGINAL_WAIT_FOR


async def test_closing_as_a_chunk_is_acknowledged_keeps_every_line_and_ends() -> None:
    """The close lands in the loop iteration where the pump's write is acknowledged. With Python 3.11's
    `wait_for` (nats-py's) a cancelled pump dropped that cancellation and ran on, and the build hung in close()."""
    loop = asyncio.get_running_loop()
    chunks: list[BuildLogChunk] = []
    acknowledged: list[asyncio.Future[None]] = []
    writing = asyncio.Event()

    async def publish(chunk: BuildLogChunk) -> None:
        ack = loop.create_future()
        acknowledged.append(ack)
        writing.set()
        await ORIGINAL_WAIT_FOR(ack, 5)
        chunks.append(chunk)

    log = BuildLog("snapshot-1", 1, publish)
    log.say("Step 1/2 : FROM base")
    await asyncio.wait_for(writing.wait(), 5)
    log.say("FAILED: the command returned a non-zero code: 1")
    acknowledged[-1].set_result(None)
    closing = asyncio.ensure_future(log.close())
    give_up = loop.time() + 5
    while not closing.done():  # acknowledge the final chunk when it comes
        await asyncio.wait({closing}, timeout=0.01)
        for ack in acknowledged:
            if not ack.done():
                ack.set_result(None)
        assert loop.time() < give_up, "close() never returned"
    await closing
    assert "".join(c.text for c in chunks) == "Step 1/2 : FROM base\nFAILED: the command returned a non-zero code: 1\n"
    assert [c.seq for c in chunks] == list(range(1, len(chunks) + 1))
    assert [c.end for c in chunks] == [False] * (len(chunks) - 1) + [True]

