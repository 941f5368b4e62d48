"""The default sandbox image: recipe hashing, and a real build (or reuse) run as user daytona."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import docker
import pytest

from corral_stack.sandbox_image import (
    DEFAULT_TAG, REPOSITORY, AptSources, ensure_sandbox_image, host_apt_sources, mmdebstrap_command,
    python3_version, recipe_hash,
)

SOURCES = AptSources(
    suite="bookworm",
    files=(Path("/etc/apt/sources.list.d/debian.sources"),),
    contents=(("debian.sources", "Types: deb\nURIs: file:///srv/archive/debian\nSuites: bookworm\n"),),
)


def test_recipe_hash_follows_the_host_sources_but_not_the_build_proxy() -> None:
    moved = replace(SOURCES, contents=(("debian.sources", SOURCES.contents[0][1] + "Components: main\n"),))
    assert recipe_hash(SOURCES) == recipe_hash(replace(SOURCES, build_options=('Acquire::http::Proxy "x"',)))
    assert recipe_hash(SOURCES) != recipe_hash(moved)
    assert recipe_hash(SOURCES) != recipe_hash(replace(SOURCES, suite="trixie"))


def test_mmdebstrap_gets_the_host_sources_files_and_the_recipe(tmp_path: Path) -> None:
    command = mmdebstrap_command(SOURCES, tmp_path / "rootfs.tar", mode="unshare")
    assert command[-3:] == ["bookworm", str(tmp_path / "rootfs.tar"), "/etc/apt/sources.list.d/debian.sources"]
    include = next(arg for arg in command if arg.startswith("--include="))
    assert {"python3", "nodejs", "git", "bash"} <= set(include.removeprefix("--include=").split(","))
    assert any(arg.startswith("--customize-hook=") and "customize.sh" in arg for arg in command)


@pytest.mark.skipif(shutil.which("apt-config") is None, reason="needs a Debian/Ubuntu host")
def test_host_apt_sources_are_read_from_apts_own_configuration() -> None:
    sources = host_apt_sources()
    assert sources.suite and sources.files
    assert all(path.is_file() for path in sources.files)
    assert [name for name, _ in sources.contents] == [path.name for path in sources.files]


@pytest.fixture(scope="session")
def sandbox_image(docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> str:
    return ensure_sandbox_image(docker_client, work_dir=tmp_path_factory.mktemp("image-work"))


def _run_as_daytona(client: docker.DockerClient, image: str, command: list[str], labels: dict[str, str]) -> str:
    output = client.containers.run(image, command, user="daytona", remove=True, labels=labels)
    return output.decode().strip()


@pytest.mark.docker
@pytest.mark.timeout(1800)  # a cold build takes minutes; a warm one milliseconds
def test_sandbox_image_has_the_toolchain_and_the_daytona_user(
        docker_client: docker.DockerClient, sandbox_image: str, test_labels: dict[str, str]) -> None:
    def run(*command: str) -> str:
        return _run_as_daytona(docker_client, sandbox_image, list(command), test_labels)

    assert tuple(int(part) for part in python3_version(docker_client, sandbox_image,
                                                        labels=test_labels).split(".")[:2]) >= (3, 9)
    assert run("python3", "--version").startswith("Python 3.")
    assert run("node", "--version").startswith("v")
    assert run("git", "--version").startswith("git version")
    assert run("bash", "-c", "id -u; id -g; echo $HOME; pwd") == "1000\n1000\n/home/daytona\n/home/daytona"
    assert ".bashrc" in run("ls", "-a", "/home/daytona")
    assert run("bash", "-c", "touch ~/x && ls ~/x") == "/home/daytona/x"
    assert run("bash", "-c", 'test -z "$(ls /var/lib/apt/lists | grep -v -e partial -e lock)" && echo clean') == "clean"


@pytest.mark.docker
@pytest.mark.timeout(1800)
def test_sandbox_image_is_labelled_tagged_default_and_leaves_the_user_to_the_runner(
        docker_client: docker.DockerClient, sandbox_image: str) -> None:
    image = docker_client.images.get(sandbox_image)
    assert f"{REPOSITORY}:{DEFAULT_TAG}" in image.tags
    assert image.labels["corral.recipe"].startswith(sandbox_image.rpartition(":")[2])
    config = image.attrs["Config"]
    assert not config.get("User") and config["WorkingDir"] == "/home/daytona"
    assert "LANG=C.UTF-8" in config["Env"] and config["Cmd"] == ["/bin/bash"]


@pytest.mark.docker
@pytest.mark.timeout(1800)
def test_a_second_call_reuses_the_image_without_building(
        docker_client: docker.DockerClient, sandbox_image: str, tmp_path: Path) -> None:
    images_before = {image.id for image in docker_client.images.list(all=True)}
    messages: list[str] = []
    assert ensure_sandbox_image(docker_client, work_dir=tmp_path, log=messages.append) == sandbox_image
    assert messages == []  # a build always says what it is doing
    assert {image.id for image in docker_client.images.list(all=True)} == images_before
    assert not list(tmp_path.glob("sandbox-image-*"))


@pytest.mark.docker
@pytest.mark.timeout(1800)
def test_python3_version_rejects_an_image_without_python3_and_leaves_no_container(
        docker_client: docker.DockerClient, sandbox_image: str, test_labels: dict[str, str]) -> None:
    stripper = docker_client.containers.run(sandbox_image, ["rm", "/usr/bin/python3"], detach=True,
                                            labels=test_labels)
    assert stripper.wait()["StatusCode"] == 0
    without_python = stripper.commit(repository="corral/test-no-python3", tag=test_labels["corral.test.run"])
    try:
        with pytest.raises(RuntimeError, match="python3"):
            python3_version(docker_client, without_python.id, labels=test_labels)
        left = docker_client.containers.list(all=True, filters={"ancestor": without_python.id})
        assert left == []
    finally:
        docker_client.images.remove(without_python.id, force=True)
