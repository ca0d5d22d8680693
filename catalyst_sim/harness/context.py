"""What one scenario holds: clients of the Sovereign's public surfaces and what it has seen.

Steps act like people do, through the Catalyst API, the Gitea API and ``git`` only (DESIGN.md §1);
nothing here reaches into control-plane internals.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from catalyst_sim.backends.base import Backend
from catalyst_sim.backends.endpoints import Endpoints
from catalyst_sim.clients.gitea import GiteaClient
from catalyst_sim.harness.personas import PersonaAuth, UserSeeder


class GitCommandError(RuntimeError):
    pass


@dataclass
class ScenarioContext:
    backend: Backend
    endpoints: Endpoints
    api: httpx.Client
    gitea: GiteaClient
    workdir: Path
    seed: int
    last_response: httpx.Response | None = None
    responses: list[httpx.Response] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, backend: Backend, *, workdir: Path, seed: int) -> ScenarioContext:
        endpoints = backend.start()  # idempotent: the session already started it
        # Every call carries the acting persona's Keycloak access token (see harness/personas.py).
        auth = PersonaAuth(backend) if isinstance(backend, UserSeeder) else None
        api = httpx.Client(base_url=endpoints.catalyst_api, timeout=30.0, auth=auth)
        gitea = GiteaClient(endpoints.gitea_url, endpoints.gitea_token)
        return cls(backend=backend, endpoints=endpoints, api=api, gitea=gitea, workdir=workdir, seed=seed)

    def close(self) -> None:
        self.api.close()
        self.gitea.close()

    # -- Catalyst API -------------------------------------------------------------------------
    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.api.request(method, path, **kwargs)
        self.last_response = response
        self.responses.append(response)
        return response

    # -- git, the real client -----------------------------------------------------------------
    def git(self, *args: str, cwd: Path | None = None) -> str:
        env = {"GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(self.workdir),
               "GIT_AUTHOR_NAME": "catalyst-sim", "GIT_AUTHOR_EMAIL": "sim@catalyst.invalid",
               "GIT_COMMITTER_NAME": "catalyst-sim", "GIT_COMMITTER_EMAIL": "sim@catalyst.invalid",
               "PATH": "/usr/local/bin:/usr/bin:/bin"}
        result = subprocess.run(["git", *args], cwd=cwd or self.workdir, env=env, capture_output=True,
                                text=True, timeout=60)
        if result.returncode != 0:
            raise GitCommandError(f"git {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def clone_url(self, repo: str) -> str:
        parts = urlsplit(self.endpoints.gitea_url)
        user = quote(self.endpoints.gitea_admin)
        token = quote(self.endpoints.gitea_token)
        return urlunsplit((parts.scheme, f"{user}:{token}@{parts.netloc}", f"/{repo}.git", "", ""))

    def clone(self, repo: str, branch: str) -> Path:
        target = self.workdir / "clones" / f"{repo.replace('/', '__')}@{branch}"
        if target.exists():
            self.git("fetch", "--quiet", "origin", cwd=target)
            self.git("checkout", "--quiet", "-B", branch, f"origin/{branch}", cwd=target)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            self.git("clone", "--quiet", "--branch", branch, self.clone_url(repo), str(target))
        return target

    # -- evidence -------------------------------------------------------------------------------
    def write_evidence(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        exchanges = [
            {"request": f"{r.request.method} {r.request.url}", "status": r.status_code, "body": _body(r)}
            for r in self.responses
        ]
        (directory / "api-exchanges.json").write_text(json.dumps(exchanges, indent=2, default=str))


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:4000]
