"""Every Catalyst API call is authenticated by a Keycloak token and authorized by its claims (R-ID-02, R-PROJ-04).

Token flow:

1. A user logs in at their Organization's Keycloak realm (``{keycloak}/realms/{org}``, an issuer per Org under
   ``per-organization``, a realm per Org in one Keycloak under ``shared-sovereign``; sovereign admins at
   realm ``catalyst-admin``) and gets an RS256 access token (15 min) and a refresh token (30 days, R-ID-02).
2. Every API request carries ``Authorization: Bearer <access token>``. :class:`CatalystAuth`, an ASGI
   middleware in front of the router, verifies it against the Sovereign's issuers with
   :class:`~catalyst_sim.control.identity.verify.Authenticator`: known issuer, that issuer's key, audience
   ``catalyst-api``, an access (not refresh) token, alive on the control plane's Clock. Anything else is
   ``401`` with a body naming what is wrong (missing, expired, unknown issuer, bad signature, tampered) and an
   RFC 6750 ``WWW-Authenticate`` header.
3. The route decides what the call needs, and the token's {org, environment, role} claims must grant it,
   else ``403`` naming the Organization or Environment refused. The verified :class:`Principal` is handed to
   the handler in ``request.state.principal`` (the author of a promotion is the token's subject).
4. When the access token expires the client refreshes it at the realm's token endpoint, which works until
   30 days after login; then the user logs in again.

What a route needs:

* ``{env}`` in the path: that Environment, of the Org its name names (R-NAME-07); reads for ``GET``,
  writes otherwise (install, promote).
* ``{org}`` in the path: that Organization; creating an Environment is Org administration (``org-admin``).
* no Org or Environment in the path: reading needs any valid token (the catalog, the Org list filtered by
  :func:`visible_organizations`); writing is Sovereign-wide and needs ``sovereign-admin`` (onboarding Orgs).
* public: ``/healthz``-style probes, ``/openapi.json``, and the Gitea webhook receiver, which proves its
  caller with the HMAC signature of the body instead.

Decisions:

* Rules are derived from path parameters rather than listed per handler, so a route added later (the
  snapshot and SSE reads of an Environment) is protected by its ``{env}`` parameter without anyone
  remembering to; the only explicit rules are the exceptions above.
* Authentication comes before everything else: an anonymous caller learns nothing, not even whether an
  Environment name is valid. A non-admin asking about another Org gets ``403`` whether or not it exists, so
  Org names do not leak through ``404``.
* Tokens are verified offline with the issuers' keys (the API's cached JWKS); the Clock is the Sovereign's,
  so time travel in a scenario expires tokens exactly as 15 real minutes would.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from starlette.requests import Request
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from catalyst_sim.control.identity.verify import Action, Authenticator, Principal
from catalyst_sim.model import naming
from catalyst_sim.model.base import CatalystError

Need = Literal["public", "authenticated", "sovereign-admin", "organization", "environment"]
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/openapi.json"})
STATUS = {"Unauthorized": 401, "Forbidden": 403, "Invalid": 422, "NotFound": 404}


@dataclass(frozen=True)
class Rule:
    """What a route requires of its caller; ``action`` ``None`` means read for GET, write otherwise."""

    need: Need
    param: str = ""
    action: Action | None = None

    def action_for(self, method: str) -> Action:
        if self.action is not None:
            return self.action
        return "read" if method.upper() in READ_METHODS else "write"


PUBLIC = Rule("public")
AUTHENTICATED = Rule("authenticated")
SOVEREIGN_ADMIN_ONLY = Rule("sovereign-admin")

# The exceptions to the rules derived from path parameters, by (method, route path).
EXPLICIT_RULES: dict[tuple[str, str], Rule] = {
    # Gitea signs each delivery with the webhook secret (HMAC); the receiver checks that, not a user.
    ("POST", "/api/v1/hooks/gitea"): PUBLIC,
    ("POST", "/api/v1/organizations"): SOVEREIGN_ADMIN_ONLY,  # onboarding an Org (J3, R-ORG-01)
    ("POST", "/api/v1/organizations/{org}/environments"): Rule("organization", "org", "admin"),
}


def rule_for(method: str, path: str, path_params: dict[str, Any]) -> Rule:
    """The rule of a matched route: explicit, public, or derived from its ``{env}``/``{org}`` parameters."""
    explicit = EXPLICIT_RULES.get((method.upper(), path))
    if explicit is not None:
        return explicit
    if path in PUBLIC_PATHS:
        return PUBLIC
    if "env" in path_params:
        return Rule("environment", "env")
    if "org" in path_params:
        return Rule("organization", "org")
    return AUTHENTICATED if method.upper() in READ_METHODS else SOVEREIGN_ADMIN_ONLY


def _match(routes: Iterable[BaseRoute], scope: Scope) -> tuple[str, dict[str, Any]] | None:
    """(route path, path params) of the route that will serve this request, or None (404/405 follow)."""
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.FULL:
            return str(getattr(route, "path", "")), dict(child.get("path_params", {}))
    return None


def _quoted(text: str) -> str:
    """RFC 6750 auth-param values are quoted strings: no quotes or backslashes inside."""
    return text.replace("\\", "/").replace('"', "'")


def problem_response_parts(error: CatalystError) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and the Catalyst error body for a refused call."""
    status = STATUS.get(error.code, 422)
    body = {"error": {"code": error.code, "message": str(error), "problems": [p.as_dict() for p in error.problems]}}
    headers = {"content-type": "application/json"}
    if status == 401:
        missing = any("no Authorization header" in p.message for p in error.problems)
        # RFC 6750 §3.1: a request without credentials gets no error code, a bad token gets invalid_token.
        challenge = 'Bearer realm="catalyst-api"' if missing else (
            f'Bearer realm="catalyst-api", error="invalid_token", error_description="{_quoted(str(error))}"')
        headers["www-authenticate"] = challenge
    elif status == 403:
        headers["www-authenticate"] = (f'Bearer realm="catalyst-api", error="insufficient_scope", '
                                       f'error_description="{_quoted(str(error))}"')
    return status, headers, json.dumps(body).encode("utf-8")


class CatalystAuth:
    """ASGI middleware: authenticate the Bearer token, then authorize the matched route by the token's claims."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        router = getattr(scope.get("app"), "router", None)
        matched = _match(getattr(router, "routes", []), scope)
        if matched is None:  # the router answers 404 or 405; there is nothing to protect
            await self.app(scope, receive, send)
            return
        path, params = matched
        rule = rule_for(scope["method"], path, params)
        if rule.need != "public":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            try:
                principal = self.check(rule, scope["method"], params, headers.get("authorization"))
            except CatalystError as error:
                status, response_headers, body = problem_response_parts(error)
                raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response_headers.items()]
                await send({"type": "http.response.start", "status": status, "headers": raw_headers})
                await send({"type": "http.response.body", "body": body})
                return
            scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

    def check(self, rule: Rule, method: str, params: dict[str, Any], authorization: str | None) -> Principal:
        """The caller's Principal if ``rule`` lets it through; ``Unauthorized`` or ``Forbidden`` otherwise."""
        principal = self.authenticator.authenticate(authorization)
        if rule.need == "authenticated" or principal.sovereign_admin:
            return principal
        if rule.need == "sovereign-admin":
            raise CatalystError.single(
                f"only a sovereign-admin may do this; user {principal.user!r} of Organization {principal.org!r} "
                f"has role(s) {', '.join(principal.roles)} (R-ID-06)", code="Forbidden")
        action = rule.action_for(method)
        value = str(params.get(rule.param, ""))
        if rule.need == "environment":
            organization = naming.parse_environment_name(value, field=rule.param).organization
            self.authenticator.authorize(principal, organization=organization, environment=value, action=action)
        else:
            self.authenticator.authorize(principal, organization=value, action=action)
        return principal


def principal_of(request: Request) -> Principal:
    """The verified caller of a request the middleware let through."""
    principal = request.scope.get("state", {}).get("principal")
    if not isinstance(principal, Principal):
        raise CatalystError.single("this call needs an authenticated caller: send 'Authorization: Bearer <access "
                                   "token>' (R-ID-02)", field="Authorization", code="Unauthorized")
    return principal


def visible_organizations(principal: Principal, names: Iterable[str]) -> list[str]:
    """The Organizations a caller may see: all for a sovereign-admin, else only their own (R-PROJ-04)."""
    return [name for name in names if principal.sovereign_admin or name == principal.org]
