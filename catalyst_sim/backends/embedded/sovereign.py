"""The ``embedded`` backend: a whole Sovereign in this process, on loopback (DESIGN.md §4).

Infrastructure starts once per session: the virtual clock, the Gitea emulator over real bare
repos and ``git http-backend``, and the reference control plane serving the Catalyst API on its own
event loop in a background thread. ``reset`` gives the next scenario a clean Sovereign in
milliseconds by wiping the forge rather than restarting anything.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from catalyst_sim import __version__
from catalyst_sim.backends.base import BackendOptions
from catalyst_sim.backends.embedded.forge.server import EmbeddedForge
from catalyst_sim.backends.endpoints import Component, Endpoints
from catalyst_sim.clients.gitea import GiteaClient
from catalyst_sim.clock import VirtualClock
from catalyst_sim.control.api.app import create_app
from catalyst_sim.control.config_store import SYSTEM_ORG, SYSTEM_REPOS
from catalyst_sim.control.plane import ControlPlane, ControlPlaneConfig
from catalyst_sim.serving import ServerThread


def git_version() -> str:
    result = subprocess.run(["git", "--version"], capture_output=True, text=True, check=False)
    return result.stdout.strip().removeprefix("git version ")


class EmbeddedBackend:
    name = "embedded"

    def __init__(self, options: BackendOptions) -> None:
        self.options = options
        self.clock = VirtualClock()
        self.forge: EmbeddedForge | None = None
        self.plane: ControlPlane | None = None
        self.api: ServerThread | None = None
        self.endpoints: Endpoints | None = None
        self.startup_seconds = 0.0
        self._baseline: dict[str, dict[str, str]] = {}

    def start(self) -> Endpoints:
        if self.endpoints is not None:
            return self.endpoints
        started = time.perf_counter()
        run_dir = self.options.run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.forge = EmbeddedForge(run_dir / "forge", clock=self.clock)
            self.forge.start()
            self.plane = ControlPlane(
                ControlPlaneConfig(gitea_url=self.forge.url, gitea_token=self.forge.token),
                self.clock,
            )
            self.plane.start()
            self._baseline = self._system_refs()
            self.api = ServerThread(create_app(self.plane), "catalyst-api").start()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - started
        self.endpoints = Endpoints(
            catalyst_api=self.api.url,
            gitea_url=self.forge.url,
            gitea_token=self.forge.token,
            gitea_admin=self.forge.admin,
            components=[
                Component(
                    "catalyst-control-plane",
                    real=False,
                    implementation="catalyst-sim reference control plane",
                    version=__version__,
                    url=self.api.url,
                ),
                Component(
                    "gitea",
                    real=False,
                    implementation="catalyst-sim Gitea API emulator",
                    version=self.forge.version,
                    url=self.forge.url,
                ),
                Component(
                    "git",
                    real=True,
                    implementation="git http-backend (smart HTTP), bare repos",
                    version=git_version(),
                ),
                Component("clock", real=False, implementation="catalyst-sim virtual clock"),
            ],
        )
        return self.endpoints

    def _system_refs(self) -> dict[str, dict[str, str]]:
        assert self.forge is not None
        refs = {}
        for repo in SYSTEM_REPOS:
            found = self.forge.state.get_repo(SYSTEM_ORG, repo)
            if found is not None:
                refs[repo] = self.forge.service.bare(found).refs()
        return refs

    def reset(self) -> None:
        """Wipe every Organization and rewind the ``system`` repos to their state at start.

        The servers keep running: a clean Sovereign costs a few API calls and ref updates, not a
        restart. Rewinding refs in the bare repos is harness housekeeping, not a Catalyst surface.
        """
        assert self.forge is not None and self.plane is not None
        gitea = GiteaClient(self.forge.url, self.forge.token)
        try:
            for org in gitea.list_orgs():
                if org["username"] != SYSTEM_ORG:
                    gitea.delete_org(org["username"], cascade=True)
        finally:
            gitea.close()
        for repo, refs in self._system_refs().items():
            bare = self.forge.service.bare(self.forge.state.get_repo(SYSTEM_ORG, repo))
            baseline = self._baseline.get(repo, {})
            for ref, sha in refs.items():
                if ref not in baseline:
                    bare.delete_ref(ref, sha)
                elif baseline[ref] != sha:
                    bare.update_ref(ref, baseline[ref], sha, message="catalyst-sim reset")
        self.plane.forget()
        self.plane.start()

    def evidence(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        if self.forge is not None:
            self.forge.write_evidence(directory)
        (directory / "clock.txt").write_text(f"virtual now: {self.clock.now().isoformat()}\n")

    def stop(self) -> None:
        for stop in (
            self.api.stop if self.api else None,
            self.plane.close if self.plane else None,
            self.forge.stop if self.forge else None,
        ):
            if stop is not None:
                stop()
        self.api = None
        self.endpoints = None

    def remove_run_dir(self) -> None:
        shutil.rmtree(self.options.run_dir, ignore_errors=True)
