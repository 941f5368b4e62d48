"""What every request handler may need: who and where the agent is, and what is running."""
from __future__ import annotations

import os
import pwd
import threading

from .process_groups import ProcessGroups

SHELLS = ("zsh", "bash", "sh")  # `command` runs under the first of these found on PATH


class AgentContext:
    __slots__ = ("workdir", "home", "user", "shell", "version", "groups", "env", "env_lock", "areas", "areas_lock")

    def __init__(self, workdir: str, home: str, user: str, shell: str | None, version: str) -> None:
        self.workdir = workdir
        self.home = home
        self.user = user
        self.shell = shell
        self.version = version
        self.groups = ProcessGroups()
        # The sandbox environment every new process starts from; `env` requests change it.
        self.env = dict(os.environ)
        self.env_lock = threading.Lock()
        # State an area keeps between requests (its PTYs, ...), made on first use: see `area()`.
        self.areas = {}
        self.areas_lock = threading.Lock()

    def environment(self) -> dict:
        """A copy of the current sandbox environment."""
        with self.env_lock:
            return dict(self.env)

    def area(self, name: str, factory):  # type: ignore[no-untyped-def]
        """The state of area `name`, made by `factory()` the first time it is asked for."""
        with self.areas_lock:
            state = self.areas.get(name)
            if state is None:
                state = self.areas[name] = factory()
            return state


def build_context(workdir: str, version: str) -> AgentContext:
    """Look the user, home and shell up once, at startup."""
    user, home = _identity()
    return AgentContext(
        workdir=os.path.abspath(workdir),
        home=home,
        user=user,
        shell=find_program(SHELLS, os.environ.get("PATH", os.defpath)),
        version=version,
    )


def find_program(names: tuple[str, ...], search_path: str) -> str | None:
    """The absolute path of the first of `names` that is an executable file on `search_path`."""
    directories = [os.path.abspath(d) for d in search_path.split(os.pathsep) if d]
    for name in names:
        for directory in directories:
            candidate = os.path.join(directory, name)
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
    return None


def _identity() -> tuple[str, str]:
    uid = os.getuid()
    try:
        entry = pwd.getpwuid(uid)
        user, home = entry.pw_name, entry.pw_dir
    except KeyError:  # an image without a passwd entry for the sandbox uid
        user, home = os.environ.get("USER") or str(uid), "/"
    return user, os.path.abspath(os.environ.get("HOME") or home or "/")
