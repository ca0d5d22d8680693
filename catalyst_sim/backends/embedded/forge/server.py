"""``EmbeddedForge``: the Gitea emulator as one object that starts, serves and always stops.

It wires the state, the bare-repo root, the webhook worker and the HTTP app (API + smart HTTP) and
serves them with :class:`~catalyst_sim.serving.ServerThread` on a free loopback port. Start creates
the site admin (``catalyst-admin`` by default) and an access token with scope ``all``, which is what
the embedded backend publishes as ``Endpoints.gitea_url/gitea_token/gitea_admin``.

``stop()`` ends the HTTP server, drains the webhook queue (bounded) and stops its worker; git
subprocesses only live for one request, so none survive. Stopping twice is harmless. The forge log
(``.log``) and the webhook deliveries can be written into an evidence bundle with
:meth:`write_evidence`.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from starlette.applications import Starlette

from catalyst_sim.backends.embedded.forge.api import AccessLog, ForgeAPI
from catalyst_sim.backends.embedded.forge.eventlog import ForgeLog
from catalyst_sim.backends.embedded.forge.models import AccessToken, ForgeState, Organization, PullRequest, User
from catalyst_sim.backends.embedded.forge.service import ForgeService, Settings
from catalyst_sim.backends.embedded.forge.smart_http import SmartHTTP
from catalyst_sim.backends.embedded.forge.webhooks import Delivery, WebhookDispatcher
from catalyst_sim.clock import Clock
from catalyst_sim.serving import ServerThread


class EmbeddedForge:
    """A loopback Gitea: real bare repos under ``root``, Gitea's API v1 subset, git smart HTTP."""

    def __init__(
        self,
        root: Path,
        clock: Clock,
        admin_user: str = "catalyst-admin",
        *,
        admin_email: str | None = None,
        admin_password: str | None = None,
        name: str = "forge",
        settings: Settings | None = None,
        webhook_timeout: float = 5.0,
        webhook_queue_size: int = 512,
    ) -> None:
        self.root = Path(root)
        self.clock = clock
        self.admin = admin_user
        self.admin_email = admin_email or f"{admin_user}@catalyst.invalid"
        self.admin_password = admin_password or secrets.token_urlsafe(18)
        self.name = name
        self.log = ForgeLog(clock)
        self.state = ForgeState()
        self.dispatcher = WebhookDispatcher(
            clock, self.log, name=name, timeout=webhook_timeout, maxsize=webhook_queue_size
        )
        self.service = ForgeService(
            self.state, self.root / "repositories", clock, self.log, self.dispatcher, settings
        )
        self.smart_http = SmartHTTP(self.service)
        self._server: ServerThread | None = None
        self._admin_token: AccessToken | None = None
        self.start_seconds: float | None = None

    # -- lifecycle --------------------------------------------------------------------------------
    def build_app(self) -> Starlette:
        api = ForgeAPI(self.service)
        app = Starlette(
            routes=[*api.routes(), *self.smart_http.routes()],
            exception_handlers=api.exception_handlers(),
        )
        app.add_middleware(AccessLog, service=self.service)
        return app

    def start(self) -> Self:
        if self._server is not None:
            return self
        started = time.perf_counter()
        self.service.root.mkdir(parents=True, exist_ok=True)
        admin = self.state.get_user(self.admin) or self.state.create_user(
            self.admin,
            self.admin_email,
            self.admin_password,
            now=self.clock.now(),
            is_admin=True,
            full_name="Catalyst Admin",
        )
        self._admin_token = self.state.create_token(
            admin, f"{self.name}-bootstrap-{secrets.token_hex(3)}", ["all"], now=self.clock.now()
        )
        self.dispatcher.start()
        server = ServerThread(self.build_app(), self.name)
        try:
            server.start()
        except BaseException:
            self.dispatcher.stop()
            raise
        self._server = server
        self.service.app_url = server.url
        self.start_seconds = time.perf_counter() - started
        self.log.record(
            "lifecycle",
            "forge started",
            url=server.url,
            root=str(self.root),
            ms=round(self.start_seconds * 1000, 2),
            version=self.version,
        )
        return self

    def stop(self) -> None:
        """Stop serving, drain the webhook queue, stop the worker; idempotent."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()
            self.log.record("lifecycle", "forge stopped")
        self.dispatcher.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    # -- endpoints --------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the embedded forge is not started")
        return self._server.url

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the embedded forge is not started")
        return self._server.port

    @property
    def token(self) -> str:
        if self._admin_token is None:
            raise RuntimeError("the embedded forge is not started")
        return self._admin_token.token

    @property
    def version(self) -> str:
        return self.service.version

    def clone_url(self, full_name: str, *, token: str | None = None, user: str | None = None) -> str:
        """``http://user:token@host:port/owner/repo.git`` — the credential git sends as basic auth."""
        scheme, _, hostport = self.url.partition("://")
        return f"{scheme}://{user or self.admin}:{token or self.token}@{hostport}/{full_name}.git"

    # -- seeding (for tests and the backend; everything here is also reachable through the API) --
    def create_user(
        self,
        login: str,
        password: str | None = None,
        *,
        email: str | None = None,
        admin: bool = False,
        scopes: tuple[str, ...] = ("all",),
    ) -> tuple[User, str]:
        """A user that may sign in at once (no forced password change) plus an access token."""
        user = self.state.create_user(
            login,
            email or f"{login}@catalyst.invalid",
            password or secrets.token_urlsafe(12),
            now=self.clock.now(),
            is_admin=admin,
        )
        token = self.state.create_token(user, f"{login}-token", scopes, now=self.clock.now())
        return user, token.token

    def add_org_member(self, org: str, login: str, permission: str = "write") -> None:
        """Put a user in a team of ``org`` with ``permission`` (read/write/admin/owner)."""
        found: Organization | None = self.state.get_org(org)
        user = self.state.get_user(login)
        if found is None or user is None:
            raise KeyError(f"no org {org!r} or user {login!r}")
        if permission == "owner":
            found.teams["owners"].members.add(user.id)
            return
        team_name = f"{permission}-members"
        team = found.teams.get(team_name) or self.state.add_team(found, team_name, permission)
        team.members.add(user.id)

    def add_team(
        self, org: str, name: str, permission: str = "write", members: tuple[str, ...] | list[str] = ()
    ) -> int:
        """Create a team covering every repo of ``org`` (read/write/admin) with ``members``; its id."""
        found: Organization | None = self.state.get_org(org)
        if found is None:
            raise KeyError(f"no org {org!r}")
        ids = []
        for login in members:
            user = self.state.get_user(login)
            if user is None:
                raise KeyError(f"no user {login!r}")
            ids.append(user.id)
        return self.state.add_team(found, name, permission, ids).id

    # -- inspection -------------------------------------------------------------------------------
    def deliveries(
        self, *, event: str | None = None, hook_id: int | None = None, repo: str | None = None
    ) -> list[Delivery]:
        return self.dispatcher.deliveries(event=event, hook_id=hook_id, repo=repo)

    def wait_for_webhooks(self, timeout: float = 10.0) -> bool:
        """Block until every queued webhook delivery has been attempted."""
        return self.dispatcher.wait_idle(timeout)

    def wait_for_delivery(
        self, predicate: Callable[[Delivery], bool], timeout: float = 10.0
    ) -> Delivery | None:
        return self.dispatcher.wait_for(predicate, timeout)

    def evidence(self) -> dict[str, Any]:
        """A JSON-able snapshot: orgs, repos (with branch heads), hooks, pull requests with their
        reviews, branch protections, deliveries, the forge log."""
        with self.state.lock:
            repos = list(self.state.repos.values())
            orgs = [o.name for o in self.state.orgs.values()]
            hooks = [
                {
                    "id": h.id,
                    "url": h.url,
                    "events": h.events,
                    "active": h.active,
                    "repo_id": h.repo_id,
                    "org_id": h.org_id,
                }
                for h in self.state.hooks.values()
            ]
        with self.state.lock:
            pulls = [self._pull_evidence(p) for p in self.state.pulls.values()]
            protections = [self.service.shapes.branch_protection(b) for b in self.state.protections.values()]
        repo_info = []
        for repo in repos:
            try:
                branches = {h.name: h.commit.sha for h in self.service.bare(repo).branches()}
            except Exception as exc:  # evidence must never fail the teardown that collects it
                branches = {"<error>": str(exc)}
            repo_info.append(
                {
                    "full_name": repo.full_name,
                    "private": repo.private,
                    "empty": repo.empty,
                    "default_branch": repo.default_branch,
                    "branches": branches,
                }
            )
        return {
            "url": self.url if self.running else None,
            "version": self.version,
            "orgs": orgs,
            "repos": repo_info,
            "hooks": hooks,
            "pulls": pulls,
            "branch_protections": protections,
            "deliveries": [d.summary() for d in self.deliveries()],
            "log": self.log.dump(),
        }

    def _pull_evidence(self, pull: PullRequest) -> dict[str, Any]:
        users = self.state.users_by_id
        repo = self.state.repos_by_id.get(pull.repo_id)
        return {
            "repo": repo.full_name if repo else None,
            "number": pull.index,
            "title": pull.title,
            "head": pull.head_branch,
            "base": pull.base_branch,
            "head_sha": pull.head_sha,
            "state": pull.state,
            "merged": pull.merged,
            "merge_commit_sha": pull.merge_commit_sha,
            "reviews": [
                {
                    "id": r.id,
                    "reviewer": users[r.reviewer_id].login if r.reviewer_id in users else None,
                    "state": str(r.state),
                    "official": r.official,
                    "stale": r.stale,
                    "dismissed": r.dismissed,
                    "commit_id": r.commit_id,
                }
                for r in self.state.reviews_of(pull)
            ],
        }

    def write_evidence(self, directory: Path) -> Path:
        """Write ``forge.json`` (state + deliveries) and ``forge-log.jsonl`` into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "forge.json").write_text(json.dumps(self.evidence(), indent=2, default=str))
        self.log.write(directory / "forge-log.jsonl")
        return directory
