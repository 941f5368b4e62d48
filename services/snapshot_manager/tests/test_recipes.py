"""What the snapshot manager builds, as data."""

from __future__ import annotations

from corral_snapshot_manager.domain import recipes


def test_base_images_skip_scratch_stages_and_build_arguments() -> None:
    dockerfile = ("# FROM commented:out\nFROM --platform=linux/amd64 python:3.12 AS build\nRUN make\n"
                  "FROM build AS again\nFROM scratch\nFROM ${BASE}\nFROM \\\n  debian:bookworm\nFROM python:3.12\n")
    assert recipes.base_images(dockerfile) == ["python:3.12", "debian:bookworm"]


def test_python_verdicts() -> None:
    assert recipes.python_verdict("3.11.2\n", 0) == ("3.11.2", None)
    version, problem = recipes.python_verdict("3.8.10\n", 0)
    assert version == "3.8.10" and problem is not None and "3.9" in problem
    assert "does not run" in (recipes.python_verdict("exec: python3: not found", 127)[1] or "")


def test_adding_python_restores_the_image_user() -> None:
    assert recipes.add_python_dockerfile("img", "app").endswith("USER app\n")
    assert "USER root\nRUN " in recipes.add_python_dockerfile("img", "")
    assert not recipes.add_python_dockerfile("img", "root").endswith("USER root\n")


def test_a_missing_base_image_says_what_to_do() -> None:
    assert "no registry is configured" in recipes.missing_base_reason("python:3.12", "")
    assert "could not be pulled (registry r)" in recipes.missing_base_reason("python:3.12", "r")
