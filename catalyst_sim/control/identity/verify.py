"""Authenticate a Bearer JWT against the Sovereign's issuers and authorize it by {org, environment, role}.

Every API call carries a Keycloak access token (R-ID-02) and is authorized by its claims
{org, environment, role} (R-PROJ-04): a token of Org A never reaches Org B's Environments, whatever its
role, and only ``sovereign-admin`` crosses Organizations (R-ID-06).

Decisions:

* Time is the :class:`~catalyst_sim.clock.Clock`'s, never ``time.time()``: PyJWT verifies the signature,
  issuer and audience, and this module checks ``exp``/``nbf``/``iat`` against ``clock.now()`` (RFC 7519:
  a token is refused *at* ``exp``, so it is valid at 14:59 and refused at 15:00).
* The issuer is chosen by the unverified ``iss`` claim and then the token is verified with *that*
  issuer's key only, so a token signed by another realm's key fails even if it copies the ``kid``.
  Only RS256 is accepted (no ``none``, no HS256 keyed with a public key).
* Verification is offline, as the API would do with cached JWKS: a token issued before its Org's
  Keycloak went down stays valid until it expires (R-ID-04 isolates failures, it does not log users out).
* An Organization realm's token must name that Organization in ``org`` and may not claim
  ``sovereign-admin``; otherwise a per-organization Keycloak (run per Org, R-ID-04) could grant itself
  access to other Orgs.
* Role matrix (R-ID-06): ``org-viewer`` reads, ``org-developer`` reads and writes, ``org-admin`` also
  administers its Org; ``security-officer`` reads (it audits); ``billing-admin`` reads the Organization
  itself but no Environment. Write and admin need the Environment to be listed in the token too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import jwt

from catalyst_sim.clock import Clock
from catalyst_sim.control.identity.issuers import (
    ALGORITHM,
    ALL_ENVIRONMENTS,
    AUDIENCE,
    ROLES,
    SOVEREIGN_ADMIN,
    Issuer,
)
from catalyst_sim.control.identity.topology import IdentityTopology
from catalyst_sim.model import naming
from catalyst_sim.model.base import CatalystError

Action = Literal["read", "write", "admin"]
ACTIONS: tuple[str, ...] = ("read", "write", "admin")

# What each role may do on an Environment of its own Org, and on the Organization itself.
ENVIRONMENT_ACTIONS: dict[str, frozenset[str]] = {
    "org-admin": frozenset({"read", "write", "admin"}),
    "org-developer": frozenset({"read", "write"}),
    "org-viewer": frozenset({"read"}),
    "security-officer": frozenset({"read"}),
    "billing-admin": frozenset(),
}
ORGANIZATION_ACTIONS: dict[str, frozenset[str]] = {
    "org-admin": frozenset({"read", "write", "admin"}),
    "org-developer": frozenset({"read"}),
    "org-viewer": frozenset({"read"}),
    "security-officer": frozenset({"read"}),
    "billing-admin": frozenset({"read"}),
}


@dataclass(frozen=True)
class Principal:
    """Who is calling, as proven by a verified access token."""

    user: str
    org: str | None
    roles: tuple[str, ...]
    environments: tuple[str, ...] | Literal["*"]
    issuer: str
    expires_at: datetime | None = None
    session_id: str = ""

    @property
    def sovereign_admin(self) -> bool:
        return SOVEREIGN_ADMIN in self.roles

    def may_access_environment(self, environment: str) -> bool:
        return self.environments == ALL_ENVIRONMENTS or environment in self.environments


def _unauthorized(message: str) -> CatalystError:
    return CatalystError.single(message, field="Authorization", code="Unauthorized")


def _forbidden(message: str, *, object: str = "") -> CatalystError:
    return CatalystError.single(message, object=object, code="Forbidden")


def _instant(value: Any, claim: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _unauthorized(f"claim {claim!r} must be a NumericDate, got {value!r}")
    return datetime.fromtimestamp(value, tz=UTC)


class Authenticator:
    """Turns an ``Authorization`` header into a :class:`Principal` and checks what it may do."""

    def __init__(self, topology: IdentityTopology, clock: Clock, *, audience: str = AUDIENCE,
                 leeway_seconds: float = 0.0) -> None:
        self.topology = topology
        self.clock = clock
        self.audience = audience
        self.leeway_seconds = leeway_seconds

    # -- authentication ---------------------------------------------------------------------------

    @staticmethod
    def bearer_token(authorization_header: str | None) -> str:
        if not authorization_header or not authorization_header.strip():
            raise _unauthorized("no Authorization header: a Bearer access token is required (R-ID-02)")
        scheme, _, token = authorization_header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized(f"the Authorization header must be 'Bearer <access token>', got scheme {scheme!r}")
        return token.strip()

    def authenticate(self, authorization_header: str | None) -> Principal:
        """Verify the Bearer access token: issuer, RS256 signature, audience, type, lifetime on the Clock."""
        token = self.bearer_token(authorization_header)
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise _unauthorized(f"the token is not a well-formed JWT: {exc}") from exc
        if header.get("alg") != ALGORITHM:
            raise _unauthorized(f"the token is signed with {header.get('alg')!r}; only {ALGORITHM} is accepted")
        iss = unverified.get("iss")
        issuer = self.topology.issuer_by_url(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise _unauthorized(f"token issued by an unknown issuer {iss!r}")
        claims = self._verify(token, header, issuer)
        self._check_lifetime(claims)
        return self._principal(claims, issuer)

    def _verify(self, token: str, header: dict[str, Any], issuer: Issuer) -> dict[str, Any]:
        kid = header.get("kid")
        key = issuer.public_key(kid) if isinstance(kid, str) else None
        if key is None:
            raise _unauthorized(f"the token is signed with key id {kid!r}, which issuer {issuer.url} does not "
                                f"publish")
        try:
            return jwt.decode(
                token, key, algorithms=[ALGORITHM], audience=self.audience, issuer=issuer.url,
                # Times are checked on the Clock in _check_lifetime, never on wall time.
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                         "require": ["iss", "sub", "aud", "exp", "iat", "nbf"]},
            )
        except jwt.InvalidSignatureError as exc:
            raise _unauthorized(f"the token's signature does not verify with the key of issuer {issuer.url} "
                                f"(tampered, or signed by another issuer)") from exc
        except jwt.InvalidAudienceError as exc:
            raise _unauthorized(f"the token is not meant for {self.audience!r} (aud {exc})") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise _unauthorized(f"the token lacks the {exc.claim!r} claim") from exc
        except jwt.PyJWTError as exc:
            raise _unauthorized(f"the token is invalid: {exc}") from exc

    def _check_lifetime(self, claims: dict[str, Any]) -> None:
        now = self.clock.now()
        exp = _instant(claims["exp"], "exp")
        nbf = _instant(claims["nbf"], "nbf")
        iat = _instant(claims["iat"], "iat")
        leeway = self.leeway_seconds
        if now.timestamp() >= exp.timestamp() + leeway:
            raise _unauthorized(f"token expired at {exp.isoformat()} (now {now.isoformat()}); access tokens live "
                                f"15 minutes, refresh it (R-ID-02)")
        if now.timestamp() + leeway < nbf.timestamp():
            raise _unauthorized(f"token not valid before {nbf.isoformat()} (now {now.isoformat()})")
        if now.timestamp() + leeway < iat.timestamp():
            raise _unauthorized(f"token issued in the future at {iat.isoformat()} (now {now.isoformat()})")

    def _principal(self, claims: dict[str, Any], issuer: Issuer) -> Principal:
        if claims.get("typ") != "Bearer":
            raise _unauthorized(f"a {claims.get('typ')!r} token is not an access token")
        for claim in ("roles", "environments"):
            if claim not in claims:
                raise _unauthorized(f"the token lacks the {claim!r} claim")
        roles = claims["roles"]
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise _unauthorized(f"claim 'roles' must be a list of role names, got {roles!r}")
        unknown = [r for r in roles if r not in ROLES]
        if unknown:
            raise _unauthorized(f"the token carries unknown role(s) {unknown} (R-ID-06)")
        environments = claims["environments"]
        if environments != ALL_ENVIRONMENTS and (
                not isinstance(environments, list) or not all(isinstance(e, str) for e in environments)):
            raise _unauthorized(f"claim 'environments' must be '*' or a list of names, got {environments!r}")
        org = claims.get("org")
        if issuer.is_admin_realm:
            if org is not None:
                raise _unauthorized(f"a token of realm {issuer.realm!r} names Organization {org!r}; sovereign "
                                    f"admins belong to no Organization (R-ID-06)")
        else:
            if org != issuer.organization:
                raise _unauthorized(f"a token of realm {issuer.realm!r} claims Organization {org!r}; that realm "
                                    f"speaks only for {issuer.organization!r}")
            if SOVEREIGN_ADMIN in roles:
                raise _unauthorized(f"realm {issuer.realm!r} cannot grant sovereign-admin (R-ID-06)")
        return Principal(
            user=str(claims["sub"]), org=org, roles=tuple(r for r in ROLES if r in roles),
            environments=(ALL_ENVIRONMENTS if environments == ALL_ENVIRONMENTS else tuple(environments)),
            issuer=issuer.url, expires_at=_instant(claims["exp"], "exp"), session_id=str(claims.get("sid", "")),
        )

    # -- authorization ----------------------------------------------------------------------------

    def authorize(self, principal: Principal, *, organization: str, environment: str | None = None,
                  action: Action = "read") -> None:
        """Raise ``Forbidden`` unless ``principal`` may do ``action`` there (R-PROJ-04, R-ID-06)."""
        if action not in ACTIONS:
            raise CatalystError.single(f"unknown action {action!r}; one of {', '.join(ACTIONS)}", field="action")
        target = f"Environment/{environment}" if environment else f"Organization/{organization}"
        if principal.sovereign_admin:
            return
        if principal.org != organization:
            raise _forbidden(f"user {principal.user!r} of Organization {principal.org!r} may not access "
                             f"Organization {organization!r} (R-PROJ-04)", object=target)
        if environment is not None:
            owner = naming.parse_environment_name(environment, field="environment").organization
            if owner != organization:
                raise _forbidden(f"Environment {environment!r} belongs to Organization {owner!r}, not "
                                 f"{organization!r} (R-PROJ-04)", object=target)
            if not principal.may_access_environment(environment):
                raise _forbidden(f"user {principal.user!r} has no access to Environment {environment!r}; the "
                                 f"token lists {list(principal.environments)} (R-PROJ-04)", object=target)
        table = ORGANIZATION_ACTIONS if environment is None else ENVIRONMENT_ACTIONS
        allowed = set().union(*(table.get(role, frozenset()) for role in principal.roles))
        if action not in allowed:
            where = f"Environment {environment!r}" if environment else f"Organization {organization!r}"
            raise _forbidden(f"role(s) {', '.join(principal.roles)} may not {action} {where} (R-ID-06)",
                             object=target)

    def check(self, authorization_header: str | None, *, organization: str, environment: str | None = None,
              action: Action = "read") -> Principal:
        """Authenticate then authorize in one call: what an API route does."""
        principal = self.authenticate(authorization_header)
        self.authorize(principal, organization=organization, environment=environment, action=action)
        return principal
