"""The host firewall through `iptables` / `iptables-restore` (either backend), every call in a thread.

Only our own chains are ever rewritten; the engine's chains get one jump each (`INPUT`,
`DOCKER-USER`, or `FORWARD` when the engine keeps no `DOCKER-USER`), inserted first and never twice.
Changes to shared chains go through one `iptables-restore --noflush` transaction, retried when
another runner changed the chain meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess

from ..app.ports import FirewallError
from ..domain import network_policy as np

log = logging.getLogger(__name__)


class IptablesFirewall:
    def __init__(self, iptables: str = "iptables", ip6tables: str | None = "ip6tables"):
        self._v4 = iptables
        self._v6 = ip6tables if ip6tables and shutil.which(ip6tables) else None
        self._lock = asyncio.Lock()

    def available(self) -> str | None:
        """Why the firewall cannot be used here (None when it can)."""
        if shutil.which(self._v4) is None:
            return f"{self._v4} is not installed"
        done = subprocess.run([self._v4, "-w", "5", "-S", "INPUT"], capture_output=True, text=True)
        if done.returncode != 0:
            return f"{self._v4} refused: {done.stderr.strip() or done.stdout.strip()} (the runner must run as root)"
        return None

    # --- low level ------------------------------------------------------------------------------

    def _run(self, binary: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([binary, "-w", "5", *args], capture_output=True, text=True)
        if check and done.returncode != 0:
            raise FirewallError(f"{binary} {' '.join(args)}: {done.stderr.strip()}")
        return done

    def _restore(self, binary: str, script: str) -> None:
        done = subprocess.run([f"{binary}-restore", "-w", "5", "--noflush"], input=script, capture_output=True,
                              text=True)
        if done.returncode != 0:
            raise FirewallError(f"{binary}-restore: {done.stderr.strip()}\n{script}")

    def _chain_exists(self, binary: str, chain: str) -> bool:
        return self._run(binary, "-S", chain, check=False).returncode == 0

    def _hook(self, binary: str, parent: str, chain: str) -> None:
        if self._run(binary, "-C", parent, "-j", chain, check=False).returncode != 0:
            self._run(binary, "-I", parent, "1", "-j", chain)

    def _install(self, binary: str, rules: dict[str, list[list[str]]]) -> None:
        if not self._chain_exists(binary, np.SANDBOXES_CHAIN):
            self._run(binary, "-N", np.SANDBOXES_CHAIN, check=False)  # lost a race: fine if it exists now
        self._restore(binary, np.restore_script(rules))
        self._hook(binary, "INPUT", np.HOST_CHAIN)
        forward = np.FORWARD_HOOK if self._chain_exists(binary, np.FORWARD_HOOK) else "FORWARD"
        self._hook(binary, forward, np.GUARD_CHAIN)

    def _hooked(self, binary: str) -> bool:
        forward = np.FORWARD_HOOK if self._chain_exists(binary, np.FORWARD_HOOK) else "FORWARD"
        return all(self._run(binary, "-C", parent, "-j", chain, check=False).returncode == 0
                   for parent, chain in (("INPUT", np.HOST_CHAIN), (forward, np.GUARD_CHAIN)))

    def _jumps(self) -> list[np.Jump]:
        done = self._run(self._v4, "-S", np.SANDBOXES_CHAIN, check=False)
        return np.parse_jumps(done.stdout) if done.returncode == 0 else []

    def _transact(self, build) -> None:  # type: ignore[no-untyped-def]
        """Build a script from the current jumps and apply it; another runner may change the shared
        chain between the listing and the transaction, so a refused one is rebuilt and retried."""
        for attempt in range(5):
            try:
                script = build(self._jumps())
                if script:
                    self._restore(self._v4, script)
                return
            except FirewallError:
                if attempt == 4:
                    raise

    # --- the port ---------------------------------------------------------------------------

    async def install(self, bridge: str, denied: list[str]) -> None:
        async with self._lock:
            await asyncio.to_thread(self._install, self._v4, np.base_rules(bridge, denied))
            if self._v6:
                await asyncio.to_thread(self._install, self._v6, np.base_rules6(bridge))

    async def installed(self) -> bool:
        """The hooks into the engine's chains are in place (something may have flushed them)."""
        return await asyncio.to_thread(self._hooked, self._v4)

    async def apply(self, bridge: str, runner_id: str, sandbox_id: str, ip: str, allowed: tuple[str, ...]) -> None:
        """The sandbox's own chain (rewritten atomically) and one jump to it for its current address."""
        chain = np.sandbox_chain(sandbox_id)
        wanted = np.jump_rule(bridge, ip, runner_id, sandbox_id)

        def build(jumps: list[np.Jump]) -> str:
            mine = [j for j in jumps if j.chain == chain]
            current = [j for j in mine if f"-s {ip}/32" in j.spec and j.runner_id == runner_id]
            stale = [j for j in mine if j not in current[:1]]
            additions = [] if current else [(np.SANDBOXES_CHAIN, wanted)]
            return np.restore_script({chain: np.sandbox_rules(allowed)},
                                     deletions=[(np.SANDBOXES_CHAIN, j.spec) for j in stale], additions=additions)

        async with self._lock:
            await asyncio.to_thread(self._transact, build)

    async def remove(self, sandbox_id: str) -> None:
        """No rule of the sandbox is left (idempotent)."""
        chain = np.sandbox_chain(sandbox_id)

        def remove() -> None:
            def build(jumps: list[np.Jump]) -> str:
                stale = [(np.SANDBOXES_CHAIN, j.spec) for j in jumps if j.chain == chain]
                return np.restore_script({}, deletions=stale) if stale else ""
            self._transact(build)
            if self._chain_exists(self._v4, chain):
                self._run(self._v4, "-F", chain, check=False)
                self._run(self._v4, "-X", chain, check=False)

        async with self._lock:
            await asyncio.to_thread(remove)

    async def sandboxes(self, runner_id: str) -> dict[str, str]:
        """Sandbox id -> source address of every jump this runner installed."""
        async with self._lock:
            jumps = await asyncio.to_thread(self._jumps)
        found: dict[str, str] = {}
        for jump in jumps:
            if jump.runner_id == runner_id:
                source = jump.spec.split("-s ", 1)[1].split()[0] if "-s " in jump.spec else ""
                found[jump.sandbox_id] = source.removesuffix("/32")
        return found
