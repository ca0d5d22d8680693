"""Fixtures for the embedded-forge contract tests: a forge, clients, real git, a webhook receiver.

Each test module gets its own forge (module scope keeps the suite fast); tests inside a module use
unique org/repo names so they never see each other's state. The receiver is a real loopback HTTP
server (our ``ServerThread``), so webhook deliveries cross a socket exactly as they would to the
control plane. At the end of the session no ``catalyst-sim:forge*`` thread may be left running.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from catalyst_sim.backends.embedded.forge import EmbeddedForge
from catalyst_sim.clients.gitea import GiteaClient
from catalyst_sim.clock import VirtualClock
from catalyst_sim.serving import ServerThread

_names = itertools.count(1)
STARTED: set[str] = set()  # server/forge names started by these tests (threads are catalyst-sim:<name>*)


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_names)}"


def started(name: str) -> str:
    STARTED.add(name)
    return name


def threads_of(names: set[str]) -> list[str]:
    return [
        t.name
        for t in threading.enumerate()
        if t.is_alive()
        and any(t.name == f"catalyst-sim:{n}" or t.name.startswith(f"catalyst-sim:{n}-") for n in names)
    ]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A loopback webhook receiver that records every request (status set by ``status``)."""

    server: ServerThread | None = None
    requests: list[Received] = field(default_factory=list)
    status: int = 200
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def url(self, path: str = "/hook") -> str:
        assert self.server is not None
        return f"{self.server.url}{path}"

    async def handle(self, request: Request) -> PlainTextResponse:
        item = Received(
            request.url.path, {k.lower(): v for k, v in request.headers.items()}, await request.body()
        )
        with self._cond:
            self.requests.append(item)
            self._cond.notify_all()
        return PlainTextResponse("ok", status_code=self.status)

    def wait_for(self, predicate: Callable[[Received], bool], timeout: float = 10.0) -> Received:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for item in self.requests:
                    if predicate(item):
                        return item
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no matching webhook within {timeout}s; got {[r.path for r in self.requests]}"
                    )
                self._cond.wait(remaining)

    def received(self, path: str) -> list[Received]:
        with self._cond:
            return [r for r in self.requests if r.path == path]


@pytest.fixture(scope="module")
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture(scope="module")
def forge(tmp_path_factory: pytest.TempPathFactory, clock: VirtualClock) -> Iterator[EmbeddedForge]:
    with EmbeddedForge(tmp_path_factory.mktemp("forge"), clock, name=started(unique("forge"))) as running:
        yield running


@pytest.fixture(scope="module")
def gitea(forge: EmbeddedForge) -> Iterator[GiteaClient]:
    with GiteaClient(forge.url, forge.token) as client:
        yield client


@pytest.fixture(scope="module")
def http(forge: EmbeddedForge) -> Iterator[httpx.Client]:
    """A raw client (no auth) to check statuses, headers and JSON exactly as sent."""
    with httpx.Client(base_url=f"{forge.url}/api/v1", timeout=30.0, trust_env=False) as client:
        yield client


@pytest.fixture(scope="module")
def auth(forge: EmbeddedForge) -> dict[str, str]:
    return {"Authorization": f"token {forge.token}"}


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    app = Starlette(routes=[Route("/{path:path}", receiver.handle, methods=["POST"])])
    receiver.server = ServerThread(app, started(unique("forge-test-receiver"))).start()
    try:
        yield receiver
    finally:
        receiver.server.stop()


class Git:
    """The real ``git`` CLI with an isolated configuration, run inside a scratch directory."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "/bin/false",
            "GIT_AUTHOR_NAME": "Dev Eloper",
            "GIT_AUTHOR_EMAIL": "dev@example.invalid",
            "GIT_COMMITTER_NAME": "Dev Eloper",
            "GIT_COMMITTER_EMAIL": "dev@example.invalid",
            "LANG": "C",
        }

    def run(
        self, *args: str, cwd: Path | None = None, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["git", "-c", "credential.helper=", "-c", "init.defaultBranch=main", *args],
            cwd=cwd or self.home,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {result.stderr}")
        return result

    def out(self, *args: str, cwd: Path) -> str:
        return self.run(*args, cwd=cwd).stdout.strip()


@pytest.fixture
def git(tmp_path: Path) -> Git:
    home = tmp_path / "git-home"
    home.mkdir()
    return Git(home)


@pytest.fixture
def new_repo(gitea: GiteaClient) -> Callable[..., tuple[str, str]]:
    """Create an org + repo with unique names: ``new_repo(auto_init=True, private=False)``."""

    def make(**options: Any) -> tuple[str, str]:
        org = unique("org")
        gitea.create_org(org)
        name = unique("repo")
        gitea.create_org_repo(org, name, **options)
        return org, name

    return make


@pytest.fixture(scope="session", autouse=True)
def no_forge_threads_left() -> Iterator[None]:
    """After every forge these tests started is stopped, none of its threads may survive."""
    yield
    deadline = time.monotonic() + 5
    while (left := threads_of(STARTED)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"forge threads still alive after the session: {left}"
