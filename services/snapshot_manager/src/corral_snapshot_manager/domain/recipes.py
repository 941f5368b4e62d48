"""What to build, as data: base images a Dockerfile needs, the Dockerfiles of an import and of the step
that adds python3, and the verdict on an image's python. No Docker here."""

from __future__ import annotations

import re

MIN_PYTHON = (3, 9)
"""The in-sandbox agent needs python3 ≥ 3.9."""

_FROM = re.compile(r"^\s*FROM\s+(?:--platform=\S+\s+)?(?P<image>\S+)(?:\s+AS\s+(?P<alias>\S+))?\s*$", re.IGNORECASE)

PYTHON_PROBE = ["python3", "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"]

ADD_PYTHON = (
    "if command -v apt-get >/dev/null 2>&1; then apt-get update && DEBIAN_FRONTEND=noninteractive "
    "apt-get install -y --no-install-recommends python3 && rm -rf /var/lib/apt/lists/*; "
    "elif command -v apk >/dev/null 2>&1; then apk add --no-cache python3; "
    "elif command -v dnf >/dev/null 2>&1; then dnf install -y python3; "
    "elif command -v yum >/dev/null 2>&1; then yum install -y python3; "
    "elif command -v microdnf >/dev/null 2>&1; then microdnf install -y python3; "
    "else echo 'no package manager to install python3 with' >&2; exit 1; fi"
)


def base_images(dockerfile: str) -> list[str]:
    """Images the Dockerfile builds FROM (not `scratch`, not an earlier stage, not `${ARG}` forms that only
    the build can resolve), in order, without duplicates."""
    aliases: set[str] = set()
    found: list[str] = []
    for line in _logical_lines(dockerfile):
        match = _FROM.match(line)
        if not match:
            continue
        image, alias = match.group("image"), match.group("alias")
        if image.lower() != "scratch" and image not in aliases and "$" not in image and image not in found:
            found.append(image)
        if alias:
            aliases.add(alias)
    return found


def _logical_lines(dockerfile: str) -> list[str]:
    lines, current = [], ""
    for raw in dockerfile.splitlines():
        stripped = raw.rstrip()
        if not current and stripped.lstrip().startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    if current:
        lines.append(current)
    return lines


def import_dockerfile(image: str) -> str:
    """An image kept as a snapshot: a metadata-only build, so the snapshot carries its own labels and
    outlives the source tag."""
    return f"FROM {image}\n"


def add_python_dockerfile(image: str, user: str) -> str:
    restore = f"USER {user}\n" if user and user not in ("root", "0") else ""
    return f"FROM {image}\nUSER root\nRUN {ADD_PYTHON}\n{restore}"


def python_verdict(output: str, exit_code: int) -> tuple[str, str | None]:
    """(version, problem): the problem is None when the image's python3 is usable by the agent."""
    text = output.strip().splitlines()[-1] if output.strip() else ""
    if exit_code != 0 or not re.fullmatch(r"\d+\.\d+\.\d+", text):
        return "", f"python3 does not run in the image (exit code {exit_code}: {output.strip()[-300:] or 'no output'})"
    version = tuple(int(part) for part in text.split(".")[:2])
    if version < MIN_PYTHON:
        return text, f"the image's python3 is {text}; the sandbox agent needs {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer"
    return text, None


def missing_base_reason(image: str, registry: str) -> str:
    if registry:
        return f"the base image {image} is not on this Docker host and could not be pulled (registry {registry})"
    return (f"the base image {image} is not present on this Docker host, and no registry is configured "
            "(CORRAL_REGISTRY) to pull it from; build or load it on this host first (e.g. docker load), "
            "or configure a registry")
