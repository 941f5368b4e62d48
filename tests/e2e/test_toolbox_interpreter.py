"""The code interpreter (and TypeScript code-run) through the official SDK, sync and async."""

from __future__ import annotations

import json
import time

import aiohttp
import pytest
from aiohttp import WSMsgType
from daytona import AsyncDaytona, CodeRunParams, CreateSandboxFromSnapshotParams, Daytona
from daytona.common.code_interpreter import ExecutionError, OutputMessage
from daytona.common.errors import DaytonaError, DaytonaNotFoundError, DaytonaTimeoutError

from corral_stack.stack import Stack
from .conftest import config

pytestmark = [pytest.mark.e2e, pytest.mark.docker]




class Streamed:
    def __init__(self) -> None:
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.errors: list[ExecutionError] = []

    def on_stdout(self, message: OutputMessage) -> None:
        self.stdout.append(message.output)

    def on_stderr(self, message: OutputMessage) -> None:
        self.stderr.append(message.output)

    def on_error(self, error: ExecutionError) -> None:
        self.errors.append(error)


def test_sync_sdk_code_interpreter(stack: Stack, sandbox_id: str) -> None:
    interpreter = Daytona(config(stack)).get(sandbox_id).code_interpreter
    assert interpreter.run_code("counter = 41\nimport json").error is None
    streamed = Streamed()
    result = interpreter.run_code("counter += 1\nprint(json.dumps({'n': counter}))\n"
                                  "import sys; print('to stderr', file=sys.stderr)",
                                  on_stdout=streamed.on_stdout, on_stderr=streamed.on_stderr)
    assert (result.stdout, result.stderr, result.error) == ('{"n": 42}\n', "to stderr\n", None)
    assert ("".join(streamed.stdout), "".join(streamed.stderr)) == ('{"n": 42}\n', "to stderr\n")

    failed = interpreter.run_code("print('before')\nraise KeyError('missing')", on_error=streamed.on_error)
    assert failed.stdout == "before\n" and failed.error is not None
    assert (failed.error.name, failed.error.value) == ("KeyError", "'missing'")
    assert "raise KeyError('missing')" in failed.error.traceback and streamed.errors == [failed.error]
    assert interpreter.run_code("import os\nprint(os.environ['ONE_RUN'])", envs={"ONE_RUN": "yes"}).stdout == "yes\n"

    started = time.monotonic()
    with pytest.raises(DaytonaTimeoutError):
        interpreter.run_code("import time\ntime.sleep(60)", timeout=1)
    assert time.monotonic() - started < 10
    assert interpreter.run_code("print(counter)").stdout == "42\n"  # the interrupt kept the globals

    context = interpreter.create_context(cwd="/tmp")
    try:
        assert (context.language, context.cwd, context.active) == ("python", "/tmp", True)
        isolated = interpreter.run_code("import os\nprint(os.getcwd(), 'counter' in globals())", context=context)
        assert isolated.stdout == "/tmp False\n"
        assert [c.id for c in interpreter.list_contexts()] == [context.id]
    finally:
        interpreter.delete_context(context)
    assert interpreter.list_contexts() == []
    with pytest.raises(DaytonaNotFoundError):
        interpreter.delete_context(context)
    with pytest.raises(DaytonaError, match="not found"):
        interpreter.run_code("1", context=context)


async def test_async_sdk_code_interpreter(stack: Stack, sandbox_id: str) -> None:
    async with AsyncDaytona(config(stack)) as daytona:
        interpreter = (await daytona.get(sandbox_id)).code_interpreter
        context = await interpreter.create_context()
        try:
            assert context.cwd == "/home/daytona" and context.created_at
            await interpreter.run_code("items = []", context=context)
            streamed = Streamed()
            code = ("import sys\nfor i in range(3):\n    items.append(i)\n    print(i)\n"
                    "print(len(items), file=sys.stderr)")
            result = await interpreter.run_code(code, context=context, on_stdout=streamed.on_stdout,
                                                on_stderr=streamed.on_stderr)
            assert (result.stdout, result.stderr, result.error) == ("0\n1\n2\n", "3\n", None)
            assert "".join(streamed.stdout) == "0\n1\n2\n"
            failed = await interpreter.run_code("1/0", context=context, on_error=streamed.on_error)
            assert failed.error is not None and failed.error.name == "ZeroDivisionError"
            with pytest.raises(DaytonaTimeoutError):
                await interpreter.run_code("while True: pass", context=context, timeout=1)
            assert (await interpreter.run_code("print(items)", context=context)).stdout == "[0, 1, 2]\n"
            assert context.id in [c.id for c in await interpreter.list_contexts()]
        finally:
            await interpreter.delete_context(context)
        assert context.id not in [c.id for c in await interpreter.list_contexts()]


async def test_interpreter_wire(stack: Stack, sandbox_id: str) -> None:
    """Frames and close codes on the raw WebSocket: a control frame, then 1000; 4008 on timeout."""
    auth = {"Authorization": f"Bearer {stack.admin_api_key}"}
    url = f"{stack.toolbox_url}/{sandbox_id}/process/interpreter/execute"
    async with aiohttp.ClientSession(headers=auth) as http:
        for request, close_code in (({"code": "print('wire')"}, 1000), ({"code": "import time; time.sleep(30)",
                                                                          "timeout": 1}, 4008)):
            async with http.ws_connect(url) as ws:
                await ws.send_str(json.dumps(request))
                messages = [json.loads(m.data) async for m in ws if m.type == WSMsgType.TEXT]
                assert ws.close_code == close_code
            if close_code == 1000:
                assert messages == [{"type": "stdout", "text": "wire\n"}, {"type": "control", "text": "completed"}]
        async with http.ws_connect(url) as ws:
            await ws.send_str(json.dumps({"code": "1", "contextId": "nope"}))
            assert [m async for m in ws] == [] and ws.close_code == 1008
        async with http.delete(f"{url.rsplit('/', 1)[0]}/context/default") as response:
            assert response.status == 400


def test_typescript_code_run(stack: Stack) -> None:
    daytona = Daytona(config(stack))
    sandbox = daytona.create(CreateSandboxFromSnapshotParams(language="typescript"), timeout=120)
    try:
        code = ("interface Point { x: number; y: number }\n"
                "const p: Point = { x: 3, y: 4 };\n"
                "const norm = (q: Point): number => Math.hypot(q.x, q.y);\n"
                "console.log(`norm=${norm(p)}`, process.argv.slice(1).join(','));\n")
        run = sandbox.process.code_run(code, params=CodeRunParams(argv=["a", "b"]))
        assert (run.exit_code, run.result) == (0, "norm=5 a,b\n")
        failed = sandbox.process.code_run("const f = (n: number): never => { throw new Error('typed ' + n) };\nf(1);")
        assert failed.exit_code == 1 and "Error: typed 1" in failed.result and "[eval].ts:1" in failed.result
        bad = sandbox.process.code_run("let x: number = ;")
        assert bad.exit_code == 1 and "error TS1109" in bad.result
    finally:
        daytona.delete(sandbox, timeout=60)
