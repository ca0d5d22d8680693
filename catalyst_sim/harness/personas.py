"""Who the harness acts as on the Catalyst API: personas logged in at Keycloak, tokens attached to each call.

Every API call needs a Keycloak access token (R-ID-02, see :mod:`catalyst_sim.control.api.auth`). Steps do
not handle tokens themselves: the scenario's ``httpx`` client carries a :class:`PersonaAuth`, which picks the
acting persona for each request, logs it in at its realm's token endpoint (``grant_type=password``, over
HTTP like any OIDC client), refreshes the access token when the Sovereign's clock says it has expired, logs
in again once the 30-day session is over, and sends ``Authorization: Bearer``.

The acting persona is, in order:

1. the one a step chose with :meth:`PersonaAuth.acting_as` (``ANONYMOUS`` sends no token at all);
2. the person a request names in ``X-Catalyst-User`` (how the promotion steps say "Layla promotes"): a
   registered persona of that login, else an ``org-developer`` of the Organization the request addresses.
   The header is removed: the API believes only the token, so the person *is* the token's subject;
3. by default, the ``org-admin`` of the Organization the request addresses (its path names the Org or one
   of its Environments), and the ``sovereign-admin`` for Sovereign-wide calls (onboarding an Org, the
   catalog, the policies) or when the addressed Org has no realm (it does not exist).

A request that already carries an ``Authorization`` header is sent as it is: that is how the identity steps
present expired, foreign or tampered tokens.

Users are seeded into the realms through the backend (:class:`UserSeeder`); that stands in for the
Organization's user federation (R-ID-04/05) and is harness housekeeping, like ``reset``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

import httpx
import jwt

from catalyst_sim.clock import Clock
from catalyst_sim.model import naming
from catalyst_sim.model.base import CatalystError

USER_HEADER = "X-Catalyst-User"
CLIENT_ID = "catalyst-console"
SOVEREIGN_ADMIN_LOGIN = "sovereign-admin"


@dataclass(frozen=True)
class Persona:
    """A user as their realm knows them: login, Organization (``None``: sovereign-admin realm), roles, scope."""

    login: str
    org: str | None
    roles: tuple[str, ...]
    environments: tuple[str, ...] | str = "*"

    @classmethod
    def org_admin(cls, org: str) -> Persona:
        return cls(f"{org}-admin", org, ("org-admin",))

    @classmethod
    def sovereign_admin(cls) -> Persona:
        return cls(SOVEREIGN_ADMIN_LOGIN, None, ("sovereign-admin",))


ANONYMOUS = Persona("", None, ())


@runtime_checkable
class UserSeeder(Protocol):
    """What a backend offers to put users into its Keycloak realms."""

    clock: Clock

    def add_user(self, username: str, *, org: str | None, roles: Sequence[str],
                 environments: Sequence[str] | str = "*") -> tuple[str, str]:
        """Create or reset the user; returns (issuer URL of their realm, password)."""
        ...


@dataclass
class Session:
    """One persona's login: the realm's issuer, credentials and the current token pair."""

    issuer: str
    username: str
    password: str
    access_token: str = ""
    refresh_token: str = ""
    access_expires: datetime = field(default_factory=lambda: datetime.min.replace(tzinfo=UTC))

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/token"


class LoginError(RuntimeError):
    pass


def addressed_organization(path: str) -> str | None:
    """The Organization a Catalyst API path is about, from ``/organizations/{org}`` or ``/environments/{env}``."""
    parts = [p for p in path.split("/") if p]
    for index, part in enumerate(parts[:-1]):
        if part == "organizations":
            return parts[index + 1]
        if part == "environments":
            parsed = naming.problems_for_environment_name(parts[index + 1])
            return None if parsed else naming.parse_environment_name(parts[index + 1]).organization
    return None


class PersonaAuth(httpx.Auth):
    """An ``httpx`` auth hook attaching the acting persona's access token to every Catalyst API request."""

    requires_request_body = True

    def __init__(self, seeder: UserSeeder, *, timeout: float = 30.0) -> None:
        self.seeder = seeder
        self.timeout = timeout
        self.personas: dict[str, Persona] = {}
        self._sessions: dict[Persona, Session] = {}
        self._acting: Persona | None = None
        self._lock = threading.RLock()

    # -- who acts ---------------------------------------------------------------------------------------

    def register(self, persona: Persona) -> Persona:
        """Make ``persona`` the one its login stands for in this scenario (steps name people by login)."""
        with self._lock:
            self.personas[persona.login] = persona
        return persona

    @contextlib.contextmanager
    def acting_as(self, persona: Persona) -> Iterator[Persona]:
        previous, self._acting = self._acting, persona
        try:
            yield persona
        finally:
            self._acting = previous

    def persona_for(self, request: httpx.Request) -> Persona:
        named = request.headers.pop(USER_HEADER, None)
        if self._acting is not None:
            return self._acting
        org = addressed_organization(request.url.path)
        if named:
            registered = self.personas.get(named)
            if registered is not None:
                return registered
            return Persona(named, org, ("org-developer",)) if org else Persona(named, None, ("sovereign-admin",))
        return Persona.org_admin(org) if org else Persona.sovereign_admin()

    # -- tokens ------------------------------------------------------------------------------------------

    def session(self, persona: Persona) -> Session:
        """The persona's session, seeding the user at first use."""
        with self._lock:
            session = self._sessions.get(persona)
            if session is None:
                environments = persona.environments if isinstance(persona.environments, str) else list(
                    persona.environments)
                issuer, password = self.seeder.add_user(persona.login, org=persona.org, roles=list(persona.roles),
                                                        environments=environments)
                session = Session(issuer, persona.login, password)
                self._sessions[persona] = session
            return session

    def _grant(self, session: Session, form: dict[str, str]) -> httpx.Response:
        return httpx.post(session.token_endpoint, data={"client_id": CLIENT_ID, **form}, timeout=self.timeout)

    def _store(self, session: Session, body: dict[str, Any]) -> None:
        session.access_token, session.refresh_token = body["access_token"], body["refresh_token"]
        exp = jwt.decode(session.access_token, options={"verify_signature": False})["exp"]
        session.access_expires = datetime.fromtimestamp(exp, tz=UTC)

    def login(self, session: Session) -> None:
        response = self._grant(session, {"grant_type": "password", "username": session.username,
                                         "password": session.password})
        if response.status_code != 200:
            raise LoginError(f"{session.username} cannot log in at {session.issuer}: {response.status_code} "
                             f"{response.text[:300]}")
        self._store(session, response.json())

    def refresh(self, session: Session) -> bool:
        """Refresh the access token; False once the refresh token is refused (the 30-day session is over)."""
        if not session.refresh_token:
            return False
        response = self._grant(session, {"grant_type": "refresh_token", "refresh_token": session.refresh_token})
        if response.status_code != 200:
            return False
        self._store(session, response.json())
        return True

    def access_token(self, persona: Persona, *, renew: bool = False) -> str:
        """A live access token for ``persona`` on the Sovereign's clock: cached, refreshed, or a new login."""
        with self._lock:
            session = self.session(persona)
            stale = renew or not session.access_token or self.seeder.clock.now() >= session.access_expires
            if stale and not self.refresh(session):
                self.login(session)
            return session.access_token

    def _token_for(self, persona: Persona, *, renew: bool = False) -> str | None:
        try:
            return self.access_token(persona, renew=renew)
        except CatalystError:
            # No realm for the addressed Org (it does not exist): the sovereign-admin asks instead, and the
            # API answers what it would answer anyone allowed to ask (404, 422).
            if persona == Persona.org_admin(persona.org or ""):
                return self.access_token(Persona.sovereign_admin(), renew=renew)
            raise

    def headers_for(self, path: str, persona: Persona | None = None) -> dict[str, str]:
        """An ``Authorization`` header for a client that is not this ``httpx`` client (an SSE stream): the given
        persona's, else the default one for ``path``. The token lives 15 virtual minutes; ask again after."""
        if persona is None:
            org = addressed_organization(path)
            persona = Persona.org_admin(org) if org else Persona.sovereign_admin()
        return {"Authorization": f"Bearer {self._token_for(persona)}"}

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if "authorization" in request.headers:
            yield request
            return
        persona = self.persona_for(request)
        if persona == ANONYMOUS:
            yield request
            return
        request.headers["Authorization"] = f"Bearer {self._token_for(persona)}"
        response = yield request
        if response.status_code == 401:
            # Like a console: the token may have died between our check and the server's; renew once.
            request.headers["Authorization"] = f"Bearer {self._token_for(persona, renew=True)}"
            yield request


def persona_auth(client: httpx.Client) -> PersonaAuth:
    """The :class:`PersonaAuth` of a scenario's API client (steps choose personas through it)."""
    auth = client.auth
    if not isinstance(auth, PersonaAuth):
        raise LookupError("this API client carries no PersonaAuth: the backend cannot seed Keycloak users")
    return auth
