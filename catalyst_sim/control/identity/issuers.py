"""One Keycloak realm emulated as an OIDC issuer: RS256 keys, JWKS, discovery, tokens (R-ID-02, R-ID-06).

A user's identity is a Keycloak OIDC JWT: the access token lives **15 min**, the refresh token **30 days**
(R-ID-02). Every instant here comes from the :class:`~catalyst_sim.clock.Clock`, never from wall time, so
a scenario can jump past 15 min or 30 days in one step.

Decisions:

* The refresh lifetime is a *session* maximum, like Keycloak's "SSO Session Max": a refresh at day 29
  succeeds, but the refresh token it returns still expires 30 days after the login. Otherwise a client
  refreshing every day would never have to log in again and "refresh 30 days" would mean nothing.
* Refresh tokens are RS256 JWTs with ``typ: Refresh`` and ``aud`` = the issuer URL (Keycloak does the
  same), so one can never be accepted as a Bearer access token by the Catalyst API (``aud`` differs).
* Access tokens are verified offline with the published key (the API caches JWKS): revoking a session
  stops its refreshes at once, while an access token already handed out dies within its 15 minutes.
* A realm of an Organization only issues tokens for that Organization and never ``sovereign-admin``;
  only the ``catalyst-admin`` realm mints sovereign-admin tokens (R-ID-06). Under ``per-organization``
  each Org runs its own Keycloak (R-ID-04), so an Org's Keycloak admin must not be able to mint
  cross-Org power; :mod:`~catalyst_sim.control.identity.verify` enforces the same binding on input.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from jwt.algorithms import RSAAlgorithm

from catalyst_sim.clock import Clock
from catalyst_sim.model import naming
from catalyst_sim.model.base import CatalystError, Problem

ACCESS_TOKEN_LIFETIME = timedelta(minutes=15)  # R-ID-02
REFRESH_TOKEN_LIFETIME = timedelta(days=30)  # R-ID-02
AUDIENCE = "catalyst-api"
ALGORITHM = "RS256"
ADMIN_REALM = "catalyst-admin"  # R-ID-05: the sovereign-admin team's realm

# R-ID-06, in the documented order.
ROLES: tuple[str, ...] = ("sovereign-admin", "org-admin", "org-developer", "org-viewer", "security-officer",
                          "billing-admin")
SOVEREIGN_ADMIN = "sovereign-admin"

ALL_ENVIRONMENTS: Literal["*"] = "*"
Environments = Sequence[str] | Literal["*"]


@dataclass(frozen=True)
class TokenPair:
    """What a login or a refresh returns, shaped after Keycloak's token endpoint response."""

    access_token: str
    refresh_token: str
    access_expires_at: datetime
    refresh_expires_at: datetime
    session_id: str
    issued_at: datetime
    token_type: str = "Bearer"

    @property
    def expires_in(self) -> int:
        return int((self.access_expires_at - self.issued_at).total_seconds())

    @property
    def refresh_expires_in(self) -> int:
        return int((self.refresh_expires_at - self.issued_at).total_seconds())

    def as_oauth(self) -> dict[str, Any]:
        """The RFC 6749 §5.1 / Keycloak JSON body for this pair."""
        return {"access_token": self.access_token, "expires_in": self.expires_in,
                "refresh_expires_in": self.refresh_expires_in, "refresh_token": self.refresh_token,
                "token_type": self.token_type, "not-before-policy": 0, "session_state": self.session_id,
                "scope": "openid profile email"}


@dataclass
class _Session:
    user: str
    org: str | None
    roles: tuple[str, ...]
    environments: tuple[str, ...] | Literal["*"]
    started: datetime
    expires_at: datetime
    revoked: bool = False


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unauthorized(message: str) -> CatalystError:
    return CatalystError.single(message, code="Unauthorized")


def normalize_roles(roles: Iterable[str], *, field: str = "roles") -> tuple[str, ...]:
    """Known R-ID-06 roles, de-duplicated, in the documented order; an unknown role is an error."""
    if isinstance(roles, str):
        raise CatalystError.single(f"roles must be a list of role names, got the string {roles!r}", field=field)
    given = list(roles)
    unknown = [r for r in given if r not in ROLES]
    if unknown:
        raise CatalystError.single(f"unknown role(s) {', '.join(map(repr, unknown))}; roles are "
                                   f"{', '.join(ROLES)} (R-ID-06)", field=field)
    if not given:
        raise CatalystError.single("a user needs at least one role (R-ID-06)", field=field)
    return tuple(r for r in ROLES if r in given)


def normalize_environments(environments: Environments, org: str | None, *,
                           field: str = "environments") -> tuple[str, ...] | Literal["*"]:
    """``"*"`` or a list of Environment names of ``org`` (R-NAME-07), de-duplicated and sorted."""
    if environments == ALL_ENVIRONMENTS:
        return ALL_ENVIRONMENTS
    if isinstance(environments, str) or not isinstance(environments, Sequence):
        raise CatalystError.single(f"environments must be '*' or a list of Environment names, got "
                                   f"{environments!r}", field=field)
    problems: list[Problem] = []
    for index, name in enumerate(environments):
        where = f"{field}[{index}]"
        if item_problems := naming.problems_for_environment_name(name, field=where):
            problems += item_problems
        elif org is not None and naming.parse_environment_name(name).organization != org:
            problems.append(Problem(f"Environment {name!r} does not belong to Organization {org!r}", field=where))
    if problems:
        raise CatalystError(problems)
    return tuple(sorted(set(environments)))


class Issuer:
    """One Keycloak realm: its signing key, its published JWKS and discovery, and its user sessions.

    ``organization`` is the Org the realm belongs to (realm ``{org}``, R-ORG-03), or ``None`` for the
    ``catalyst-admin`` realm of the sovereign-admin team (R-ID-05). ``available`` models the Keycloak
    process hosting the realm being up; a realm that is down issues and refreshes nothing (R-ID-04).
    """

    def __init__(self, realm: str, keycloak_url: str, clock: Clock, *, organization: str | None,
                 key_size: int = 2048) -> None:
        self.realm = realm
        self.keycloak_url = keycloak_url.rstrip("/")
        self.url = f"{self.keycloak_url}/realms/{realm}"
        self.clock = clock
        self.organization = organization
        self.available = True
        self._private_key: RSAPrivateKey = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
        self._public_jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(self._private_key.public_key()))
        self.kid = self._thumbprint(self._public_jwk)
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Issuer({self.url!r})"

    @staticmethod
    def _thumbprint(jwk: dict[str, Any]) -> str:
        """RFC 7638 JWK thumbprint: a stable ``kid`` derived from the key itself."""
        canonical = json.dumps({"e": jwk["e"], "kty": jwk["kty"], "n": jwk["n"]}, separators=(",", ":"),
                               sort_keys=True)
        return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())

    # -- what the realm publishes -----------------------------------------------------------------

    @property
    def is_admin_realm(self) -> bool:
        return self.organization is None

    @property
    def jwks_uri(self) -> str:
        return f"{self.url}/protocol/openid-connect/certs"

    @property
    def token_endpoint(self) -> str:
        return f"{self.url}/protocol/openid-connect/token"

    @property
    def revocation_endpoint(self) -> str:
        return f"{self.url}/protocol/openid-connect/revoke"

    def public_key(self, kid: str) -> RSAPublicKey | None:
        """The verification key with this ``kid``, or ``None`` if the realm does not publish it."""
        return self._private_key.public_key() if kid == self.kid else None

    def jwks(self) -> dict[str, Any]:
        """RFC 7517 JWK Set with the realm's public signing key (what Keycloak serves at ``/certs``)."""
        key = dict(self._public_jwk)
        key.update({"kid": self.kid, "use": "sig", "alg": ALGORITHM})
        return {"keys": [key]}

    def discovery(self) -> dict[str, Any]:
        """The subset of ``.well-known/openid-configuration`` a relying party needs."""
        return {
            "issuer": self.url,
            "jwks_uri": self.jwks_uri,
            "token_endpoint": self.token_endpoint,
            "revocation_endpoint": self.revocation_endpoint,
            "grant_types_supported": ["password", "refresh_token"],
            "response_types_supported": ["code", "token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_post"],
        }

    # -- tokens -----------------------------------------------------------------------------------

    def _require_available(self) -> None:
        if not self.available:
            raise CatalystError.single(f"Keycloak for realm {self.realm!r} ({self.url}) is unavailable",
                                       code="Upstream")

    def issue(self, user: str, org: str | None, roles: Iterable[str],
              environments: Environments = ALL_ENVIRONMENTS) -> TokenPair:
        """Log ``user`` in: start a 30-day session and return its first token pair (R-ID-02)."""
        self._require_available()
        if not isinstance(user, str) or not user:
            raise CatalystError.single("user must be a non-empty string", field="user")
        normalized_roles = normalize_roles(roles)
        if self.is_admin_realm:
            if org is not None:
                raise CatalystError.single(f"realm {self.realm!r} is the sovereign-admin realm; its users belong "
                                           f"to no Organization (R-ID-06), got org {org!r}", field="org")
        else:
            if org != self.organization:
                raise CatalystError.single(f"realm {self.realm!r} issues tokens only for Organization "
                                           f"{self.organization!r}, not {org!r} (R-ORG-03)", field="org")
            if SOVEREIGN_ADMIN in normalized_roles:
                raise CatalystError.single(f"sovereign-admin is granted only by realm {ADMIN_REALM!r}, not by "
                                           f"Organization realm {self.realm!r} (R-ID-06)", field="roles")
        normalized_envs = normalize_environments(environments, org)
        now = self.clock.now()
        session = _Session(user=user, org=org, roles=normalized_roles, environments=normalized_envs, started=now,
                           expires_at=now + REFRESH_TOKEN_LIFETIME)
        session_id = str(uuid.uuid4())
        with self._lock:
            self._sessions[session_id] = session
        return self._mint(session_id, session, now)

    def _mint(self, session_id: str, session: _Session, now: datetime) -> TokenPair:
        issued = int(now.timestamp())
        access_exp = issued + int(ACCESS_TOKEN_LIFETIME.total_seconds())
        refresh_exp = int(session.expires_at.timestamp())
        headers = {"kid": self.kid, "typ": "JWT"}
        access = {
            "iss": self.url, "sub": session.user, "aud": AUDIENCE, "azp": AUDIENCE, "typ": "Bearer",
            "iat": issued, "nbf": issued, "exp": access_exp, "jti": str(uuid.uuid4()), "sid": session_id,
            "preferred_username": session.user, "org": session.org, "roles": list(session.roles),
            "environments": (session.environments if session.environments == ALL_ENVIRONMENTS
                             else list(session.environments)),
        }
        refresh = {
            "iss": self.url, "sub": session.user, "aud": self.url, "azp": AUDIENCE, "typ": "Refresh",
            "iat": issued, "nbf": issued, "exp": refresh_exp, "jti": str(uuid.uuid4()), "sid": session_id,
        }
        issued_at = datetime.fromtimestamp(issued, tz=now.tzinfo)
        return TokenPair(
            access_token=jwt.encode(access, self._private_key, algorithm=ALGORITHM, headers=headers),
            refresh_token=jwt.encode(refresh, self._private_key, algorithm=ALGORITHM, headers=headers),
            access_expires_at=datetime.fromtimestamp(access_exp, tz=now.tzinfo),
            refresh_expires_at=datetime.fromtimestamp(refresh_exp, tz=now.tzinfo),
            session_id=session_id, issued_at=issued_at,
        )

    def _decode_own(self, token: str, what: str) -> dict[str, Any]:
        """Verify ``token``'s signature with this realm's key; times are checked by the caller on the Clock."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise _unauthorized(f"the {what} is not a well-formed JWT: {exc}") from exc
        key = self.public_key(str(header.get("kid", "")))
        if key is None:
            raise _unauthorized(f"the {what} was not signed by realm {self.realm!r} (unknown key id "
                                f"{header.get('kid')!r})")
        try:
            return jwt.decode(token, key, algorithms=[ALGORITHM], issuer=self.url,
                              options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                                       "verify_aud": False, "require": ["exp", "iat", "sid", "typ"]})
        except jwt.InvalidSignatureError as exc:
            raise _unauthorized(f"the {what}'s signature does not verify with realm {self.realm!r}'s key") from exc
        except jwt.PyJWTError as exc:
            raise _unauthorized(f"the {what} is invalid: {exc}") from exc

    def refresh(self, refresh_token: str) -> TokenPair:
        """A new access token for a live session; refused after 30 days or once revoked (R-ID-02)."""
        self._require_available()
        claims = self._decode_own(refresh_token, "refresh token")
        if claims.get("typ") != "Refresh":
            raise _unauthorized(f"a {claims.get('typ')!r} token is not a refresh token")
        now = self.clock.now()
        if now.timestamp() >= float(claims["exp"]):
            raise _unauthorized(f"refresh token expired at "
                                f"{datetime.fromtimestamp(claims['exp'], tz=now.tzinfo).isoformat()} "
                                f"(refresh tokens live {REFRESH_TOKEN_LIFETIME.days} days, R-ID-02); log in again")
        session_id = str(claims["sid"])
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None:
            raise _unauthorized(f"session {session_id} is unknown to realm {self.realm!r}")
        if session.revoked:
            raise _unauthorized(f"session {session_id} was revoked; log in again")
        if now >= session.expires_at:
            raise _unauthorized("the session ended (30 days after login, R-ID-02); log in again")
        return self._mint(session_id, session, now)

    def revoke(self, token: str) -> None:
        """End the session a refresh or access token belongs to (RFC 7009): its refreshes are refused."""
        claims = self._decode_own(token, "token")
        with self._lock:
            session = self._sessions.get(str(claims["sid"]))
            if session is not None:
                session.revoked = True

    def session_active(self, session_id: str) -> bool:
        with self._lock:
            session = self._sessions.get(session_id)
        return session is not None and not session.revoked and self.clock.now() < session.expires_at
