"""exec through the real agent process: shell and argv, exit codes, env, cwd, stdin, merged output."""
from __future__ import annotations

import base64
import os
import shutil

import pytest
from agent_harness import RunningAgent, run_exec


def exit_of(code: int, signal: int | None = None, timed_out: bool = False) -> dict:
    return {"type": "exit", "exitCode": code, "timedOut": timed_out, "signal": signal}


async def test_command_output_and_exit_code_pass_through(agent: RunningAgent):
    result = await run_exec(agent.socket_path, command="echo hello; exit 3")
    assert result.output == b"hello\n"
    assert result.last == exit_of(3)


async def test_command_runs_under_the_first_shell_found(agent: RunningAgent):
    expected = next(shutil.which(s) for s in ("zsh", "bash", "sh") if shutil.which(s))
    result = await run_exec(agent.socket_path, command='readlink -f /proc/$$/exe')
    assert result.output.decode().strip() == os.path.realpath(expected)


async def test_command_longer_than_any_argument_limit(agent: RunningAgent):
    script = "x=" + "a" * 1_000_000 + "\necho ${#x}"  # one word past Linux's 128 KiB per argument
    result = await run_exec(agent.socket_path, command=script)
    assert (result.output, result.last) == (b"1000000\n", exit_of(0))


async def test_env_overrides_extend_the_agent_environment(agent: RunningAgent):
    result = await run_exec(
        agent.socket_path, command='echo "$FOO|$CORRAL_TEST_MARK"', env={"FOO": "bar baz", "CORRAL_TEST_MARK": "x"}
    )
    assert result.output == b"bar baz|x\n"
    inherited = await run_exec(agent.socket_path, command='echo "$CORRAL_TEST_MARK"')
    assert inherited.output == b"inherited\n"


async def test_cwd_defaults_to_the_workdir(agent: RunningAgent):
    result = await run_exec(agent.socket_path, command="pwd")
    assert result.output.decode().strip() == str(agent.workdir)


async def test_cwd_absolute_and_relative_to_the_workdir(agent: RunningAgent, short_tmp):
    (agent.workdir / "sub" / "dir").mkdir(parents=True)
    relative = await run_exec(agent.socket_path, argv=["pwd"], cwd="sub/dir")
    assert relative.output.decode().strip() == str(agent.workdir / "sub" / "dir")
    absolute = await run_exec(agent.socket_path, command="pwd", cwd=str(short_tmp))
    assert absolute.output.decode().strip() == str(short_tmp)


@pytest.mark.parametrize("cwd", ["missing", "/nonexistent/dir", "afile"])
async def test_missing_cwd_is_an_error_and_nothing_runs(agent: RunningAgent, cwd):
    (agent.workdir / "afile").write_text("not a directory")
    result = await run_exec(agent.socket_path, command="touch ran", cwd=cwd)
    assert [f["type"] for f in result.frames] == ["error"]
    assert result.last["code"] == "CWD_NOT_FOUND"
    assert not (agent.workdir / "ran").exists()


async def test_argv_python_code_run(agent: RunningAgent):
    result = await run_exec(agent.socket_path, argv=["python3", "-u", "-c", "print(1)"])
    assert (result.output, result.last) == (b"1\n", exit_of(0))


async def test_argv_code_run_sees_env_and_cwd(agent: RunningAgent):
    code = "import os, sys\nprint(os.getcwd(), os.environ['GREETING'], sys.argv[1:])\nraise SystemExit(7)"
    (agent.workdir / "proj").mkdir()
    result = await run_exec(
        agent.socket_path, argv=["python3", "-u", "-c", code, "a b"], cwd="proj", env={"GREETING": "hi"}
    )
    assert result.output.decode() == f"{agent.workdir / 'proj'} hi ['a b']\n"
    assert result.last == exit_of(7)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
async def test_argv_node_code_run(agent: RunningAgent):
    result = await run_exec(agent.socket_path, argv=["node", "-e", "console.log(6 * 7); process.exit(2)"])
    assert (result.output, result.last) == (b"42\n", exit_of(2))


async def test_argv_gets_stdin(agent: RunningAgent):
    data = bytes(range(256)) * 4096  # 1 MiB, larger than a pipe buffer
    result = await run_exec(agent.socket_path, argv=["cat"], stdin=base64.b64encode(data).decode())
    assert result.output == data
    assert result.last == exit_of(0)


async def test_argv_without_stdin_reads_dev_null(agent: RunningAgent):
    result = await run_exec(agent.socket_path, argv=["sh", "-c", "cat; readlink /proc/self/fd/0"])
    assert result.output == b"/dev/null\n"


async def test_stdout_and_stderr_are_one_stream_in_write_order(agent: RunningAgent):
    code = (
        "import sys\n"
        "for i in range(50):\n"
        "    sys.stdout.write('out%d\\n' % i); sys.stdout.flush()\n"
        "    sys.stderr.write('err%d\\n' % i); sys.stderr.flush()\n"
    )
    result = await run_exec(agent.socket_path, argv=["python3", "-c", code])
    expected = "".join(f"out{i}\nerr{i}\n" for i in range(50))
    assert result.output.decode() == expected
    shell = await run_exec(agent.socket_path, command="echo a; echo b >&2; echo c; echo d 1>&2")
    assert shell.output == b"a\nb\nc\nd\n"


async def test_signal_death_reads_as_128_plus_signal(agent: RunningAgent):
    result = await run_exec(agent.socket_path, command="kill -TERM $$")
    assert result.last == exit_of(143, signal=15)


async def test_unknown_program_is_exec_failed(agent: RunningAgent):
    result = await run_exec(agent.socket_path, argv=["no-such-program-corral"])
    assert result.last["type"] == "error" and result.last["code"] == "EXEC_FAILED"
    assert "no-such-program-corral" in result.last["message"]


@pytest.mark.parametrize(
    "request_fields",
    [
        {},
        {"argv": ["true"], "command": "true"},
        {"argv": []},
        {"argv": "true"},
        {"argv": ["true", 1]},
        {"command": 5},
        {"command": "true", "stdin": "aGk="},
        {"argv": ["cat"], "stdin": "***"},
        {"command": "true", "timeout": -1},
        {"command": "true", "timeout": "5"},
        {"command": "true", "env": {"A=B": "c"}},
        {"command": "true", "env": {"A": 1}},
        {"command": "true", "env": ["A"]},
        {"command": "true", "cwd": 3},
    ],
)
async def test_invalid_exec_requests_are_bad_request(agent: RunningAgent, request_fields):
    result = await run_exec(agent.socket_path, **request_fields)
    assert [f["type"] for f in result.frames] == ["error"]
    assert result.last["code"] == "BAD_REQUEST", result.last


async def test_env_changes_reach_later_processes_only(agent) -> None:  # type: ignore[no-untyped-def]
    from corral_agent import client

    frames = [f async for f in client.call(agent.socket_path, {"op": "env", "set": {"CORRAL_X": "1"}, "unset": ["HOME_NOT_SET"]})]
    assert frames[-1]["type"] == "result"
    out = [f async for f in client.call(agent.socket_path, {"op": "exec", "command": "echo ${CORRAL_X:-unset}"})]
    assert base64.b64decode(out[0]["data"]) == b"1\n"
    frames = [f async for f in client.call(agent.socket_path, {"op": "env", "unset": ["CORRAL_X"]})]
    out = [f async for f in client.call(agent.socket_path, {"op": "exec", "command": "echo ${CORRAL_X:-unset}"})]
    assert base64.b64decode(out[0]["data"]) == b"unset\n"
    bad = [f async for f in client.call(agent.socket_path, {"op": "env", "set": {"A": 1}})]
    assert bad[-1]["type"] == "error" and bad[-1]["code"] == "BAD_REQUEST"
