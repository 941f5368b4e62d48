"""The host key is made once, private to its owner, and then always the same."""

from __future__ import annotations

from pathlib import Path

from corral_ssh_gateway.adapters.host_key import load_or_create
from corral_ssh_gateway.settings import Settings


def test_made_once_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "gw" / "host_key"
    first = load_or_create(path)
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    again = load_or_create(path)
    assert again.get_fingerprint() == first.get_fingerprint()
    assert first.get_algorithm() == "ssh-ed25519"
    assert [p.name for p in path.parent.iterdir()] == ["host_key"]  # no temporary file left behind


def test_settings_name_the_file(tmp_path: Path) -> None:
    env = {"CORRAL_HOME": str(tmp_path), "CORRAL_INTERNAL_TOKEN": "t"}
    assert Settings.from_env(env).host_key_path == tmp_path / "ssh-gateway" / "host_ed25519_key"
    assert Settings.from_env({**env, "CORRAL_SSH_HOST_KEY": "/etc/k"}).host_key_path == Path("/etc/k")
    settings = Settings.from_env({**env, "CORRAL_SSH_PORT": "2299", "CORRAL_SSH_HOST": "0.0.0.0"})
    assert (settings.port, settings.host) == (2299, "0.0.0.0")
