"""Escape attacks, each run inside a real sandbox as its default user and as root: every one must fail,
and each says why it fails."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Api
from .probes import last_json

USERS = ["daytona", "root"]

MOUNT = r"""
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
os.makedirs("/tmp/m", exist_ok=True)
def mount(src, target, fstype, options=None, flags=0):
    r = libc.mount(src.encode(), target.encode(), fstype.encode() if fstype else None, flags,
                   options.encode() if options else None)
    return "mounted" if r == 0 else os.strerror(ctypes.get_errno())
print(json.dumps({"result": mount(*%s)}))
"""

MOUNTS = {  # why they fail: no CAP_SYS_ADMIN, and the default seccomp profile refuses mount(2)
    "proc": ("proc", "/tmp/m", "proc"),
    "tmpfs": ("tmpfs", "/tmp/m", "tmpfs"),
    "bind": ("/", "/tmp/m", None, None, 4096),  # MS_BIND
    "overlay": ("overlay", "/tmp/m", "overlay", "lowerdir=/etc,upperdir=/tmp,workdir=/var/tmp"),
}


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("kind", list(MOUNTS))
async def test_mounting_a_filesystem_fails(api: Api, sandboxes: dict[str, str], kind: str, user: str) -> None:
    code, output = await api.python(sandboxes[user], MOUNT % (repr(MOUNTS[kind]),))
    assert last_json(output)["result"] == "Operation not permitted", output


@pytest.mark.parametrize("user", USERS)
async def test_a_user_namespace_grants_no_mount(api: Api, sandboxes: dict[str, str], user: str) -> None:
    """`unshare -Urm` would make anyone root of a new namespace; seccomp refuses unshare(CLONE_NEWUSER)."""
    code, output = await api.sh(sandboxes[user], "unshare -Urm mount -t tmpfs none /tmp 2>&1")
    assert code != 0 and "Operation not permitted" in output, output


@pytest.fixture(scope="module")
def host_marker() -> Iterator[Path]:
    """A file only the host has: no path from a sandbox may lead to it."""
    path = Path(f"/tmp/corral-host-secret-{os.urandom(4).hex()}")
    path.write_text("host secret\n")
    yield path
    path.unlink()


@pytest.mark.parametrize("user", USERS)
async def test_host_files_are_not_reachable_through_proc(api: Api, sandboxes: dict[str, str], host_marker: Path,
                                                         user: str) -> None:
    """The PID namespace shows only the sandbox's processes, and every /proc/<pid>/root is its own root."""
    code, output = await api.python(sandboxes[user], r"""
import glob, json, os
found = [p for p in glob.glob("/proc/[0-9]*/root%s") if os.path.exists(p)]
cmdlines = []
for d in glob.glob("/proc/[0-9]*/cmdline"):
    if d == "/proc/" + str(os.getpid()) + "/cmdline": continue
    try: cmdlines.append(open(d, "rb").read().replace(b"\0", b" ").decode())
    except OSError: pass
print(json.dumps({"found": found, "host_processes": [c for c in cmdlines if "corral_runner" in c or "dockerd" in c],
                  "root_hostname": open("/proc/1/root/etc/hostname").read().strip() if os.access("/proc/1/root/etc/hostname", os.R_OK) else None}))
""" % (host_marker,))
    result = last_json(output)
    assert result["found"] == [] and result["host_processes"] == [], result
    assert result["root_hostname"] in (None, sandboxes[user]), result


WRITES = {  # /proc/sys, /sys and the sysrq trigger are read-only in a container; /proc/kcore is masked
    "proc_sys": ("/proc/sys/vm/drop_caches", "3"),
    "sysrq_trigger": ("/proc/sysrq-trigger", "h"),  # `h` only prints help, should it ever get through
    "sys_kernel": ("/sys/kernel/mm/transparent_hugepage/enabled", "never"),
    "core_pattern": ("/proc/sys/kernel/core_pattern", "|/tmp/evil"),
}


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("target", list(WRITES))
async def test_kernel_settings_cannot_be_written(api: Api, sandboxes: dict[str, str], target: str, user: str) -> None:
    path, value = WRITES[target]
    code, output = await api.python(sandboxes[user], f"""
import json
try:
    with open({path!r}, "w") as f:
        f.write({value!r})
    print(json.dumps({{"result": "written"}}))
except OSError as e:
    print(json.dumps({{"result": e.strerror}}))
""")
    assert last_json(output)["result"] in ("Read-only file system", "Permission denied", "No such file or directory"), output


@pytest.mark.parametrize("user", USERS)
async def test_kernel_memory_is_not_readable(api: Api, sandboxes: dict[str, str], user: str) -> None:
    code, output = await api.python(sandboxes[user], r"""
import json
out = {}
for path in ("/proc/kcore", "/dev/mem", "/dev/kmsg", "/proc/kallsyms"):
    try:
        data = open(path, "rb").read(4096)
        out[path] = "nonzero" if path == "/proc/kallsyms" and any(l.split()[0].strip(b"0") for l in data.splitlines() if l) else len(data)
    except OSError as e:
        out[path] = e.strerror
print(json.dumps(out))
""")
    result = last_json(output)
    assert result["/proc/kcore"] in (0, "Permission denied", "No such file or directory"), result  # masked: empty
    assert result["/dev/mem"] == "No such file or directory" and result["/dev/kmsg"] == "No such file or directory"
    assert result["/proc/kallsyms"] != "nonzero", result  # kernel addresses are hidden


@pytest.mark.parametrize("user", USERS)
async def test_kernel_modules_cannot_be_loaded(api: Api, sandboxes: dict[str, str], user: str) -> None:
    """No CAP_SYS_MODULE; seccomp refuses init_module and finit_module."""
    code, output = await api.python(sandboxes[user], r"""
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
out = {}
for name, number, args in (("init_module", 175, (ctypes.c_char_p(b"\0" * 64), 64, b"")),
                           ("finit_module", 313, (os.open("/etc/hostname", os.O_RDONLY), b"", 0))):
    r = libc.syscall(number, *args)
    out[name] = "loaded" if r == 0 else os.strerror(ctypes.get_errno())
print(json.dumps(out))
""")
    assert last_json(output) == {"init_module": "Operation not permitted", "finit_module": "Operation not permitted"}
    code, output = await api.sh(sandboxes[user], "modprobe dummy 2>&1 || insmod /nonexistent.ko 2>&1")
    assert code != 0, output


@pytest.mark.parametrize("user", USERS)
async def test_no_docker_socket_anywhere(api: Api, sandboxes: dict[str, str], user: str) -> None:
    code, output = await api.python(sandboxes[user], r"""
import json, os, socket, stat
sockets = []
for top in ("/run", "/var/run", "/var/lib", "/tmp", "/home", "/root", "/opt", "/srv", "/mnt", "/"):
    for root, dirs, files in os.walk(top):
        if root.startswith(("/proc", "/sys")): dirs[:] = []; continue
        for name in files:
            path = os.path.join(root, name)
            try:
                if stat.S_ISSOCK(os.lstat(path).st_mode): sockets.append(path)
            except OSError: pass
        if top == "/": dirs[:] = [d for d in dirs if d not in ("proc", "sys", "usr")]
tried = {}
for path in ("/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock"):
    s = socket.socket(socket.AF_UNIX)
    try: s.connect(path); tried[path] = "connected"
    except OSError as e: tried[path] = e.strerror
print(json.dumps({"sockets": sorted(set(os.path.realpath(p) for p in sockets)), "tried": tried}))
""")
    result = last_json(output)
    assert set(result["sockets"]) <= {"/run/corral/agent.sock"}, result  # only the sandbox's own agent
    assert set(result["tried"].values()) == {"No such file or directory"}, result


@pytest.mark.parametrize("user", USERS)
async def test_processes_outside_the_sandbox_cannot_be_traced(api: Api, sandboxes: dict[str, str], user: str) -> None:
    """The runner's own process is invisible (PID namespace); its host PID names nothing or a sandbox process."""
    code, output = await api.python(sandboxes[user], r"""
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
PTRACE_ATTACH, PTRACE_DETACH = 16, 17
out = {"visible": sorted(int(p) for p in os.listdir("/proc") if p.isdigit())}
r = libc.ptrace(PTRACE_ATTACH, %d, 0, 0)
out["attach_runner"] = "attached" if r == 0 else os.strerror(ctypes.get_errno())
print(json.dumps(out))
""" % os.getpid())
    result = last_json(output)
    assert result["attach_runner"] in ("No such process", "Operation not permitted"), result
    assert len(result["visible"]) < 50, result  # a handful of its own processes, not the host's


CHANGES = {  # no CAP_SYS_ADMIN / CAP_SYS_TIME / CAP_MKNOD; /proc/sys read-only
    "hostname": "hostname evil",
    "sysctl": "sysctl -w kernel.domainname=evil",
    "clock": "date -s '2001-01-01 00:00:00'",
    "mknod_block_device": "mknod /tmp/sda b 8 0",
    "mknod_char_device": "mknod /tmp/mem c 1 1",
}


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("change", list(CHANGES))
async def test_host_settings_and_devices_cannot_be_changed(api: Api, sandboxes: dict[str, str], change: str,
                                                           user: str) -> None:
    code, output = await api.sh(sandboxes[user], CHANGES[change] + " 2>&1")
    assert code != 0, output
    assert (await api.sh(sandboxes[user], "hostname"))[1].strip() == sandboxes[user]


async def test_the_file_api_stays_inside_the_sandbox(api: Api, sandboxes: dict[str, str], host_marker: Path) -> None:
    """`../` and symbolic links through the toolbox's file API resolve inside the sandbox's own filesystem."""
    sid = sandboxes["root"]
    await api.sh(sid, "ln -sfn / /root/hostroot && ln -sfn /tmp /root/tmplink")
    for path in (str(host_marker), f"/root/hostroot{host_marker}", f"/root/tmplink/{host_marker.name}",
                 f"../../../../..{host_marker}", f"/root/../../..{host_marker}"):
        response = await api.toolbox("GET", sid, "files/download", params={"path": path})
        assert b"host secret" not in response.content, path
    upload = f"corral-upload-{os.urandom(4).hex()}"
    for path in (f"../../../../tmp/{upload}", f"/root/hostroot/tmp/{upload}"):
        response = await api.toolbox("POST", sid, "files/upload", params={"path": path},
                                     files={"file": ("x", b"from the sandbox")})
        assert response.status_code < 500, response.text
    assert not Path(f"/tmp/{upload}").exists()  # it landed, if at all, in the sandbox's /tmp
    response = await api.toolbox("GET", sid, "files", params={"path": "/root/hostroot/tmp"})
    assert host_marker.name not in response.text


async def test_the_agent_socket_cannot_be_pointed_at_another_sandbox(api: Api, sandboxes: dict[str, str]) -> None:
    """The run directory is the sandbox's: a link named agent.sock toward another sandbox's socket (its host
    path is easily guessed) must not make the runner run our commands over there."""
    attacker = await api.create(labels={"corral.security": "socket-thief"})
    victim = sandboxes["daytona"]
    runner = (await api.get(victim))["runnerId"]
    victim_socket = api.stack.home / "runners" / runner / "runs" / victim / "agent.sock"  # known, or guessed
    try:
        code, output = await api.sh(attacker["id"], "mv /run/corral/agent.sock /run/corral/real.sock && "
                                                    f"ln -s {victim_socket} /run/corral/agent.sock && echo swapped")
        assert "swapped" in output, output
        response = await api.toolbox("POST", attacker["id"], "process/execute", json={"command": "hostname"})
        assert victim not in response.text, response.text
    finally:
        await api.delete(attacker["id"])
