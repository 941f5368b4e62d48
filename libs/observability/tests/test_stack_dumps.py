"""`kill -USR1` makes a running process write its threads and its asyncio tasks, and it keeps running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from corral_testing.waiting import wait_until

PROGRAM = textwrap.dedent("""
    import asyncio, sys, threading, time
    from corral_observability import stack_dumps

    def stuck_worker():
        time.sleep(3600)

    async def waits_forever():
        await asyncio.Event().wait()

    async def main():
        stack_dumps.install(asyncio.get_running_loop())
        threading.Thread(target=stuck_worker, name="stuck", daemon=True).start()
        asyncio.create_task(waits_forever(), name="the-waiter")
        print("ready", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
""")


def test_a_dump_shows_threads_and_tasks_and_the_process_goes_on(tmp_path) -> None:  # type: ignore[no-untyped-def]
    errors = tmp_path / "stderr"
    with open(errors, "wb") as sink:
        process = subprocess.Popen([sys.executable, "-c", PROGRAM], stdout=subprocess.PIPE, stderr=sink)
    try:
        assert process.stdout is not None and process.stdout.readline() == b"ready\n"
        os.kill(process.pid, signal.SIGUSR1)
        wait_until(lambda: "the-waiter" in errors.read_text(), timeout=10, message="no task dump")
        text = errors.read_text()
        assert "in stuck_worker" in text, text  # faulthandler: the blocked thread's frame
        assert "in waits_forever" in text, text  # the task's await chain
        assert process.poll() is None, "the dump stopped the process"
    finally:
        process.kill()
        process.wait()
