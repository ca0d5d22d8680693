"""Keycloak's OIDC endpoints over HTTP, so real OIDC clients (PyJWT's ``PyJWKClient``, httpx) can be used.

Served per realm under Keycloak's paths, ``{keycloak}/realms/{realm}/...`` (R-ID-04/05):

* ``GET  .well-known/openid-configuration`` — discovery;
* ``GET  protocol/openid-connect/certs`` — the realm's JWKS;
* ``POST protocol/openid-connect/token`` — ``grant_type=password`` against a simulated user directory,
  and ``grant_type=refresh_token`` (R-ID-02);
* ``POST protocol/openid-connect/revoke`` — RFC 7009 revocation (always 200, as the RFC says).

Errors use Keycloak's OAuth shapes: ``{"error": "invalid_grant", "error_description": ...}`` (401 for bad
credentials, 400 for a dead refresh token), ``404 {"error": "Realm does not exist"}`` for an unknown realm,
and ``503`` while the hosting Keycloak is down (R-ID-04 outage).

Decision: one emulator port hosts every Keycloak instance of the topology; instances differ by path
prefix (see :mod:`~catalyst_sim.control.identity.topology`), which keeps issuers distinct and lets an outage
be per instance. Form bodies are parsed with :func:`urllib.parse.parse_qs` so no multipart dependency is
needed for ``application/x-www-form-urlencoded``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from catalyst_sim.clock import Clock
from catalyst_sim.control.identity.issuers import (
    ALL_ENVIRONMENTS,
    Environments,
    Issuer,
    normalize_environments,
    normalize_roles,
)
from catalyst_sim.control.identity.topology import PER_ORGANIZATION, IdentityTopology
from catalyst_sim.model.base import CatalystError
from catalyst_sim.serving import ServerStartError, ServerThread


def _find_issuer(topology: IdentityTopology, path: str) -> tuple[Issuer | None, str]:
    """The realm a request path addresses and the rest of the path; every ``/realms/x`` split is tried, so an
    Organization named ``realms`` still resolves."""
    start = path.find("/realms/")
    while start >= 0:
        end = path.find("/", start + len("/realms/"))
        end = len(path) if end < 0 else end
        issuer = topology.issuer_by_url(topology.base_url + path[:end])
        if issuer is not None:
            return issuer, path[end:]
        start = path.find("/realms/", start + 1)
    return None, ""


@dataclass(frozen=True)
class _User:
    username: str
    salt: bytes
    digest: bytes
    org: str | None
    roles: tuple[str, ...]
    environments: Environments


class UserDirectory:
    """Simulated users per realm (stands in for Keycloak's user store or its federated IdP)."""

    def __init__(self) -> None:
        self._users: dict[tuple[str, str], _User] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _digest(salt: bytes, password: str) -> bytes:
        return hashlib.sha256(salt + password.encode("utf-8")).digest()

    def add(self, issuer: Issuer, username: str, password: str, *, org: str | None, roles: Iterable[str],
            environments: Environments = ALL_ENVIRONMENTS) -> None:
        normalized_roles = normalize_roles(roles)
        normalized_envs = normalize_environments(environments, org)
        salt = secrets.token_bytes(16)
        user = _User(username, salt, self._digest(salt, password), org, normalized_roles, normalized_envs)
        with self._lock:
            self._users[(issuer.url, username)] = user

    def check(self, issuer: Issuer, username: str, password: str) -> _User | None:
        with self._lock:
            user = self._users.get((issuer.url, username))
        if user is None or not hmac.compare_digest(user.digest, self._digest(user.salt, password)):
            return None
        return user


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def keycloak_app(topology: IdentityTopology | Callable[[], IdentityTopology], users: UserDirectory) -> Starlette:
    """The ASGI app serving every realm of ``topology``; its issuer URLs must start with the served URL.

    ``topology`` may be a callable, for a server that must bind its port before the issuer URLs exist.
    """
    current = topology if callable(topology) else (lambda: topology)

    async def handle(request: Request) -> JSONResponse:
        topology = current()
        issuer, rest = _find_issuer(topology, request.url.path)
        if issuer is None:
            return JSONResponse({"error": "Realm does not exist"}, status_code=404)
        if not issuer.available:
            return _oauth_error(503, "temporarily_unavailable", f"Keycloak for realm {issuer.realm!r} is down")
        if request.method == "GET" and rest == "/.well-known/openid-configuration":
            return JSONResponse(issuer.discovery())
        if request.method == "GET" and rest == "/protocol/openid-connect/certs":
            return JSONResponse(issuer.jwks())
        if request.method == "POST" and rest == "/protocol/openid-connect/token":
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", errors="replace")).items()}
            return _token(issuer, users, form)
        if request.method == "POST" and rest == "/protocol/openid-connect/revoke":
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", errors="replace")).items()}
            if "token" not in form:
                return _oauth_error(400, "invalid_request", "Token not provided")
            # RFC 7009 §2.2: an invalid token is not an error for revocation.
            with contextlib.suppress(CatalystError):
                issuer.revoke(form["token"])
            return JSONResponse({})
        return JSONResponse({"error": "Not Found"}, status_code=404)

    return Starlette(routes=[Route("/{path:path}", handle, methods=["GET", "POST"])])


def _token(issuer: Issuer, users: UserDirectory, form: dict[str, str]) -> JSONResponse:
    grant = form.get("grant_type")
    try:
        if grant == "password":
            if "username" not in form or "password" not in form:
                return _oauth_error(400, "invalid_request", "Missing parameter: username or password")
            user = users.check(issuer, form["username"], form["password"])
            if user is None:
                return _oauth_error(401, "invalid_grant", "Invalid user credentials")
            return JSONResponse(issuer.issue(user.username, user.org, user.roles, user.environments).as_oauth())
        if grant == "refresh_token":
            if "refresh_token" not in form:
                return _oauth_error(400, "invalid_request", "Missing parameter: refresh_token")
            return JSONResponse(issuer.refresh(form["refresh_token"]).as_oauth())
    except CatalystError as error:
        if error.code == "Upstream":
            return _oauth_error(503, "temporarily_unavailable", str(error))
        return _oauth_error(400, "invalid_grant", str(error))
    return _oauth_error(400, "unsupported_grant_type", f"Unsupported grant_type {grant!r}")


class EmbeddedKeycloak:
    """The Sovereign's Keycloak topology served on a free loopback port (start/stop, or a ``with`` block)."""

    def __init__(self, clock: Clock, *, sovereign_name: str = "sovereign",
                 keycloak_topology: str = PER_ORGANIZATION, key_size: int = 2048) -> None:
        self.clock = clock
        self.sovereign_name = sovereign_name
        self.keycloak_topology = keycloak_topology
        self.key_size = key_size
        self.users = UserDirectory()
        self._topology: IdentityTopology | None = None
        self._server: ServerThread | None = None

    @property
    def topology(self) -> IdentityTopology:
        if self._topology is None:
            raise ServerStartError("EmbeddedKeycloak is not started")
        return self._topology

    @property
    def url(self) -> str:
        return self.topology.base_url

    def start(self) -> EmbeddedKeycloak:
        """Bind a free port first, then lay out issuers whose URLs are on that port.

        Nobody can call the server before its URL is known, so the app reading the topology lazily
        never sees it missing.
        """
        server = ServerThread(keycloak_app(lambda: self.topology, self.users), f"keycloak:{self.sovereign_name}")
        server.start()
        try:
            self._topology = IdentityTopology(self.sovereign_name, self.keycloak_topology, self.clock, server.url,
                                              key_size=self.key_size)
        except BaseException:
            server.stop()
            raise
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> EmbeddedKeycloak:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def add_organization(self, org: str) -> Issuer:
        return self.topology.add_organization(org)

    def add_user(self, username: str, password: str, *, org: str | None, roles: Iterable[str],
                 environments: Environments = ALL_ENVIRONMENTS) -> None:
        """Register a user at their realm (``org=None``: the sovereign-admin realm) for ``grant_type=password``."""
        issuer = self.topology.sovereign_admin_issuer() if org is None else self.topology.issuer_for(org)
        self.users.add(issuer, username, password, org=org, roles=roles, environments=environments)

    def issuer_url(self, org: str | None) -> str:
        return (self.topology.sovereign_admin_issuer() if org is None else self.topology.issuer_for(org)).url
