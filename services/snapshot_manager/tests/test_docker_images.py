"""The snapshot manager's Docker adapter against the real engine: a build streams its output line by line,
a build past its time is cancelled and says so, the python probe runs without the image's entrypoint."""

from __future__ import annotations

import os

import docker
import pytest

from corral_snapshot_manager.adapters.docker_images import DockerImages
from corral_snapshot_manager.app.ports import BuildError
from corral_snapshot_manager.domain import recipes
from corral_stack.sandbox_image import REPOSITORY
from corral_testing.stack import TEST_RUN_LABEL, remove_labelled

pytestmark = pytest.mark.docker


@pytest.fixture
def images() -> DockerImages:
    run = os.urandom(4).hex()
    adapter = DockerImages(labels={TEST_RUN_LABEL: run})
    yield adapter
    remove_labelled(TEST_RUN_LABEL, run)


def base_image() -> str:
    client = docker.from_env()
    try:
        tags = [t for image in client.images.list(REPOSITORY) for t in image.tags if not t.endswith(":default")]
    finally:
        client.close()
    if not tags:
        pytest.skip("no sandbox image on this engine yet (the stack builds it)")
    return tags[0]


async def test_a_build_streams_its_output_and_the_probe_bypasses_the_entrypoint(images: DockerImages) -> None:
    lines: list[str] = []
    tag = f"corral-snapshot:adapter-{os.urandom(4).hex()}"
    dockerfile = f'FROM {base_image()}\nRUN echo built-{tag[-8:]}\nENTRYPOINT ["/bin/false"]\n'
    await images.build(dockerfile, tag, {"corral.snapshot": "t"}, lines.append, timeout=120)
    assert any(f"built-{tag[-8:]}" in line for line in lines), lines
    output, code = await images.probe(tag, recipes.PYTHON_PROBE)
    assert recipes.python_verdict(output, code)[1] is None, output
    assert (await images.inspect(tag))["entrypoint"] == ["/bin/false"]


async def test_a_build_past_its_time_is_cancelled(images: DockerImages) -> None:
    tag = f"corral-snapshot:slow-{os.urandom(4).hex()}"
    with pytest.raises(BuildError, match="did not finish within 2s and was cancelled"):
        await images.build(f"FROM {base_image()}\nRUN sleep 60\n", tag, {}, lambda line: None, timeout=2)
    assert not await images.present(tag)


async def test_a_failing_step_is_the_reason(images: DockerImages) -> None:
    with pytest.raises(BuildError, match="returned a non-zero code: 3"):
        await images.build(f"FROM {base_image()}\nRUN exit 3\n", "corral-snapshot:failing", {}, lambda line: None,
                           timeout=60)
