"""Large output is streamed in bounded chunks as it is produced, never held whole by the agent."""
from __future__ import annotations

import base64
from contextlib import aclosing

from agent_harness import RunningAgent, run_exec
from corral_agent.client import call

MIB = 1024 * 1024
CHUNK_LIMIT = 64 * 1024


async def test_five_mib_output_is_streamed_in_chunks_with_flat_agent_memory(agent: RunningAgent):
    await run_exec(agent.socket_path, command="echo warm-up")  # first exec: thread, imports, buffers
    peak_before = agent.status_kib("VmHWM")

    result = await run_exec(agent.socket_path, command=f"head -c {5 * MIB} /dev/zero | tr '\\0' x")

    assert result.last == {"type": "exit", "exitCode": 0, "timedOut": False, "signal": None}
    assert result.output == b"x" * (5 * MIB)
    assert len(result.chunks) >= 5 * MIB // CHUNK_LIMIT
    assert max(len(chunk) for chunk in result.chunks) <= CHUNK_LIMIT
    growth_kib = agent.status_kib("VmHWM") - peak_before
    assert growth_kib < 1024, f"agent peak RSS grew by {growth_kib} KiB while streaming 5 MiB"


async def test_output_arrives_before_the_process_ends(agent: RunningAgent):
    # The command only finishes once the client has seen its first line: no buffering until exit.
    fifo = agent.workdir / "go"
    command = f"mkfifo {fifo}; echo first; cat {fifo}; echo second"
    async with aclosing(call(agent.socket_path, {"op": "exec", "command": command, "timeout": 20})) as frames:
        seen = b""
        async for frame in frames:
            if frame["type"] == "output":
                seen += base64.b64decode(frame["data"])
                if seen == b"first\n":
                    fifo.write_text("")  # open + close: the cat sees EOF
            else:
                assert frame == {"type": "exit", "exitCode": 0, "timedOut": False, "signal": None}
    assert seen == b"first\nsecond\n"
