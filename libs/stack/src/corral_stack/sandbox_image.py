"""The default sandbox image, built on this machine from its own apt sources: no registry needed.

`mmdebstrap` bootstraps a minimal root filesystem of the host's release (Debian bookworm here) with
python3, node (with TypeScript), git and bash, adds the `daytona` user (uid/gid 1000), and `docker import`s it as
`corral/sandbox:<recipe hash>`, also tagged `corral/sandbox:default`. The recipe hash covers this
module's recipe, the files in `image/` and the host's apt sources, so changing any of them builds a
new image, and an unchanged recipe finds its image in milliseconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.errors import APIError, ImageNotFound

from .docker_engine import Log, file_lock, install_debian_packages

RECIPE_VERSION = 1
REPOSITORY = "corral/sandbox"
DEFAULT_TAG = "default"
TAG_LENGTH = 16
VARIANT = "minbase"
PACKAGES = ("bash", "ca-certificates", "coreutils", "curl", "git", "node-typescript", "nodejs", "procps", "python3",
            "python3-pip", "python-is-python3")
RECIPE_DIR = Path(__file__).with_name("image")
CUSTOMIZE_HOOK = RECIPE_DIR / "customize.sh"
DPKG_EXCLUDES = RECIPE_DIR / "dpkg-excludes.cfg"
HOST_TRUST = Path("/etc/ssl/certs/ca-certificates.crt")
"""The host's CA bundle: the image trusts what the machine trusts (a TLS-inspecting proxy's CA included),
so `pip install` and `curl https://…` work in sandboxes and snapshot builds as they do on the host."""
IMAGE_CHANGES = (  # HOME and USER are left to the runner, which picks the user per sandbox
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    "WORKDIR /home/daytona",
    'CMD ["/bin/bash"]',
)
TAIL_LINES = 40
_SOURCES_PART = re.compile(r"^[A-Za-z0-9_.-]+\.(list|sources)$")  # the names apt itself reads
_PROXY_OPTION = re.compile(r'^(Acquire::(?:https?|ftp)::Proxy) "(.+)";$')


@dataclass(frozen=True)
class AptSources:
    """What the host's apt configuration says the image is built from."""

    suite: str  # the host's release codename: the image is of the same release
    files: tuple[Path, ...]  # the active sources files, in apt's order
    contents: tuple[tuple[str, str], ...]  # (file name, text) of each: part of the recipe hash
    build_options: tuple[str, ...] = ()  # apt options for the build only (the host's proxies)


def ensure_sandbox_image(client: docker.DockerClient, *, work_dir: Path, log: Log = print) -> str:
    """Return `corral/sandbox:<recipe hash>`, building it first if this engine lacks it.

    A build takes minutes (progress goes to `log`, the full mmdebstrap output to
    `work_dir/sandbox-image-build.log`); concurrent callers with the same `work_dir` wait for one
    build on a lock file there. The temporary build directory is removed afterwards.
    """
    sources = host_apt_sources()
    digest = recipe_hash(sources)
    ref = f"{REPOSITORY}:{digest[:TAG_LENGTH]}"
    if _present(client, ref):
        return ref
    work_dir = Path(work_dir)
    with file_lock(work_dir / "sandbox-image.lock", log=log):
        if not _present(client, ref):  # another process may have built it while we waited
            build_sandbox_image(client, ref=ref, digest=digest, sources=sources, work_dir=work_dir, log=log)
    return ref


def _present(client: docker.DockerClient, ref: str) -> bool:
    """True if `ref` exists; then also make sure `corral/sandbox:default` points at it."""
    try:
        image = client.images.get(ref)
    except ImageNotFound:
        return False
    if f"{REPOSITORY}:{DEFAULT_TAG}" not in image.tags:
        image.tag(REPOSITORY, DEFAULT_TAG)
    return True


def host_apt_sources(os_release: Path = Path("/etc/os-release")) -> AptSources:
    """The host's active apt sources files and release, read from its apt configuration now."""
    if shutil.which("apt-config") is None:
        raise RuntimeError("building the sandbox image needs a Debian or Ubuntu host (apt and mmdebstrap)")
    locations = _apt_config_shell({"LIST": "Dir::Etc::SourceList/f", "PARTS": "Dir::Etc::SourceParts/d"})
    candidates = [Path(locations["LIST"])] if locations.get("LIST") else []
    parts = Path(locations.get("PARTS", "/nonexistent"))
    if parts.is_dir():
        candidates += sorted(p for p in parts.iterdir() if _SOURCES_PART.match(p.name) and p.is_file())
    files, contents = [], []
    for path in candidates:
        text = path.read_text() if path.is_file() else ""
        if any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines()):
            files.append(path)
            contents.append((path.name, text))
    if not files:
        raise RuntimeError("this machine has no active apt sources to build the sandbox image from")
    fields = dict(line.split("=", 1) for line in os_release.read_text().splitlines() if "=" in line)
    suite = fields.get("VERSION_CODENAME", "").strip('"')
    if not suite:
        raise RuntimeError(f"{os_release} names no VERSION_CODENAME: cannot tell which release to build")
    return AptSources(suite, tuple(files), tuple(contents), _host_proxy_options())


def _apt_config_shell(names: Mapping[str, str]) -> dict[str, str]:
    query = [arg for pair in names.items() for arg in pair]
    out = subprocess.run(["apt-config", "shell", *query], capture_output=True, text=True, check=True).stdout
    return dict(shlex.split(line)[0].split("=", 1) for line in out.splitlines() if "=" in line)


def _host_proxy_options() -> tuple[str, ...]:
    dump = subprocess.run(["apt-config", "dump"], capture_output=True, text=True, check=True).stdout
    found = (_PROXY_OPTION.match(line) for line in dump.splitlines())
    return tuple(f'{m.group(1)} "{m.group(2)}"' for m in found if m)


def recipe_hash(sources: AptSources) -> str:
    """sha256 of everything that decides the image's content (not the proxies, which do not)."""
    recipe = {
        "version": RECIPE_VERSION, "suite": sources.suite, "machine": platform.machine(),
        "variant": VARIANT, "packages": PACKAGES, "changes": IMAGE_CHANGES,
        "customize_hook": CUSTOMIZE_HOOK.read_text(), "dpkg_excludes": DPKG_EXCLUDES.read_text(),
        "sources": sources.contents, "host_trust": _host_trust_digest(),
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def _host_trust_digest() -> str:
    try:
        return hashlib.sha256(HOST_TRUST.read_bytes()).hexdigest()
    except OSError:
        return ""


def mmdebstrap_mode() -> str:
    """As root, `unshare` (a private mount namespace: a crash cannot leave mounts on the host) when
    the kernel allows it, else `root`; otherwise let mmdebstrap choose (unshare with subuids)."""
    if os.geteuid() != 0:
        return "auto"
    probe = subprocess.run(["unshare", "--mount", "--propagation", "unchanged", "--", "true"],
                           capture_output=True)
    return "unshare" if probe.returncode == 0 else "root"


def mmdebstrap_command(sources: AptSources, tarball: Path, *, mode: str) -> list[str]:
    """Each host sources file is passed as a MIRROR: mmdebstrap pastes it into the new system."""
    return [
        "mmdebstrap", f"--mode={mode}", f"--variant={VARIANT}", "--format=tar", "--verbose",
        f"--include={','.join(PACKAGES)}", f"--dpkgopt={DPKG_EXCLUDES}",
        *(f"--aptopt={option}" for option in sources.build_options),
        f'--customize-hook=sh {shlex.quote(str(CUSTOMIZE_HOOK))} "$1"',
        sources.suite, str(tarball), *map(str, sources.files),
    ]


def build_sandbox_image(client: docker.DockerClient, *, ref: str, digest: str, sources: AptSources,
                        work_dir: Path, log: Log = print) -> None:
    started = time.monotonic()
    log(f"building the sandbox image {ref} from this machine's apt sources ({sources.suite}); "
        "this takes a few minutes, once")
    if shutil.which("mmdebstrap") is None:
        install_debian_packages(["mmdebstrap"], log=log)
    work_dir.mkdir(parents=True, exist_ok=True)
    build_dir = Path(tempfile.mkdtemp(prefix="sandbox-image-", dir=work_dir))
    build_dir.chmod(0o755)  # lets apt download as its unprivileged `_apt` user (when work_dir allows)
    try:
        tarball = build_dir / "rootfs.tar"
        command = mmdebstrap_command(sources, tarball, mode=mmdebstrap_mode())
        _run_mmdebstrap(command, tmp_dir=build_dir, log_file=work_dir / "sandbox-image-build.log", log=log)
        log(f"importing the root filesystem ({tarball.stat().st_size / 1e6:.0f} MB) into Docker")
        _import(client, tarball, ref=ref, digest=digest)
    finally:
        _remove_build_dir(build_dir, log)
    size = client.images.get(ref).attrs.get("Size", 0)
    log(f"built {ref} ({size / 1e6:.0f} MB) in {time.monotonic() - started:.0f}s")


def _run_mmdebstrap(command: list[str], *, tmp_dir: Path, log_file: Path, log: Log) -> None:
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    env = {**os.environ, "TMPDIR": str(tmp_dir)}  # its temporary root lives in our build dir
    with open(log_file, "w") as record, subprocess.Popen(
        command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, errors="replace",
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            record.write(line)
            tail.append(line.rstrip())
            if line.startswith(("I: ", "W: ", "E: ")):
                log(f"  mmdebstrap {line.rstrip()}")
    if process.returncode != 0:
        raise RuntimeError(f"mmdebstrap failed with exit code {process.returncode} (full output in "
                           f"{log_file}); last lines:\n" + "\n".join(tail))


def _import(client: docker.DockerClient, tarball: Path, *, ref: str, digest: str) -> None:
    repository, tag = ref.rsplit(":", 1)
    changes = [*IMAGE_CHANGES, f"LABEL corral.recipe={digest}"]
    answer = client.api.import_image_from_file(str(tarball), repository=repository, tag=tag, changes=changes)
    try:
        client.images.get(ref).tag(REPOSITORY, DEFAULT_TAG)
    except ImageNotFound:
        raise RuntimeError(f"docker import did not create {ref}: {answer}") from None


def _remove_build_dir(path: Path, log: Log) -> None:
    """Delete the build directory, but never through a mount a crashed build might have left."""
    mount_points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    if any(point == str(path) or point.startswith(f"{path}/") for point in mount_points):
        log(f"not removing {path}: something is still mounted below it (unmount, then delete it)")
        return
    shutil.rmtree(path, ignore_errors=True)


def python3_version(client: docker.DockerClient, image: str, *,
                    labels: Mapping[str, str] | None = None) -> str:
    """`python3 --version` of `image` (e.g. "3.11.2"), run in a throwaway container without network."""
    container = client.containers.create(image, ["python3", "--version"], labels=dict(labels or {}),
                                         network_disabled=True)
    try:
        try:
            container.start()
        except APIError as error:
            raise RuntimeError(f"{image} cannot run python3: {error.explanation}") from error
        status = container.wait(timeout=60)["StatusCode"]
        output = container.logs(stdout=True, stderr=True).decode(errors="replace").strip()
    finally:
        container.remove(force=True)
    if status != 0 or not output.startswith("Python "):
        raise RuntimeError(f"{image}: `python3 --version` exited with {status}: {output}")
    return output.removeprefix("Python ")


__all__ = ["AptSources", "ensure_sandbox_image", "host_apt_sources", "python3_version", "recipe_hash"]
