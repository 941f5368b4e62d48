"""Child processes with prefixed, line-buffered logs: `[api] ...`, `[runner] ...`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO


class ServiceProcess:
    def __init__(self, name: str, argv: Sequence[str], *, env: dict[str, str], log_file: Path | None = None,
                 echo: bool = True):
        self.name = name
        self.argv = list(argv)
        self.env = env
        self.log_file = log_file
        self.echo = echo
        self.process: subprocess.Popen[bytes] | None = None
        self._pump: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> "ServiceProcess":
        self.process = subprocess.Popen(self.argv, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        self._pump = threading.Thread(target=self._copy, args=(self.process.stdout,), daemon=True,
                                      name=f"log-{self.name}")
        self._pump.start()
        return self

    def _copy(self, stream: IO[bytes] | None) -> None:
        assert stream is not None
        sink = open(self.log_file, "ab", buffering=0) if self.log_file else None
        prefix = f"[{self.name}] ".encode()
        try:
            for line in iter(stream.readline, b""):
                if sink:
                    sink.write(line)
                if self.echo:
                    sys.stdout.buffer.write(prefix + line)
                    sys.stdout.buffer.flush()
        finally:
            if sink:
                sink.close()

    def signal(self, signum: int) -> None:
        if self.running():
            assert self.process is not None
            os.kill(self.process.pid, signum)

    def stop(self, timeout: float = 15.0) -> None:
        if not self.process:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._pump:
            self._pump.join(timeout=5)
        self.process = None

    def kill(self) -> None:
        """SIGKILL, as a crash would (fault tests)."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self._pump:
            self._pump.join(timeout=5)
        self.process = None
