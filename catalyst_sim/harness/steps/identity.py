"""Identity — every API call authorized by the token's {org, environment, role} (R-ID-02, R-ID-06, R-PROJ-04).

People log in at their realm's Keycloak token endpoint over HTTP and present the access token; the hostile
tokens (another Sovereign's issuer, another key, a tampered payload, a spliced key id) are made here the way
an attacker would make them, from a genuine token and a key of their own, never from the Sovereign's secrets.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
import jwt
import nats
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from pytest_bdd import given, parsers, then, when

from catalyst_sim.harness.context import ScenarioContext
from catalyst_sim.harness.personas import ANONYMOUS, CLIENT_ID, Persona, PersonaAuth, Session, persona_auth
from catalyst_sim.harness.steps.applications import install
from catalyst_sim.model import naming

PERSON = r"(?P<person>[A-Z][a-z]+)"
Q = r'"(?P<{}>[^"]+)"'
FOREIGN_ISSUER = "https://keycloak.other-sovereign.example/realms/{org}"


def login_of(person: str) -> str:
    return person.strip().lower()


def personas(context: ScenarioContext) -> PersonaAuth:
    try:
        return persona_auth(context.api)
    except LookupError as exc:
        pytest.skip(f"backend {context.backend.name} cannot seed Keycloak users: {exc}")


def persona(context: ScenarioContext, person: str) -> Persona:
    found = personas(context).personas.get(login_of(person))
    assert found is not None, f"{person} has no role yet: say e.g. 'Given {person} is an org-developer of \"acme\"'"
    return found


def call_as(context: ScenarioContext, person: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    with personas(context).acting_as(persona(context, person)):
        return context.call(method, path, **kwargs)


# -- who is who ------------------------------------------------------------------------------------------


@given(parsers.re(rf'{PERSON} is an? (?P<role>[a-z-]+) of {Q.format("org")}'
                  rf'(?: with access to {Q.format("environments")})?$'))
def person_has_role(catalyst: ScenarioContext, person: str, role: str, org: str, environments: str | None) -> None:
    scope = tuple(e.strip() for e in environments.split(",")) if environments else "*"
    personas(catalyst).register(Persona(login_of(person), org, (role,), scope))


# -- reading and writing as someone ----------------------------------------------------------------------


@when(parsers.re(rf'{PERSON} reads the Environment {Q.format("environment")}$'))
def person_reads_environment(catalyst: ScenarioContext, person: str, environment: str) -> None:
    call_as(catalyst, person, "GET", f"/api/v1/environments/{environment}")


@when(parsers.re(rf'{PERSON} lists the Applications of {Q.format("environment")}$'))
def person_lists_applications(catalyst: ScenarioContext, person: str, environment: str) -> None:
    call_as(catalyst, person, "GET", f"/api/v1/environments/{environment}/applications")


@when(parsers.re(rf'{PERSON} lists the Environments of {Q.format("org")}$'))
def person_lists_environments(catalyst: ScenarioContext, person: str, org: str) -> None:
    call_as(catalyst, person, "GET", f"/api/v1/organizations/{org}/environments")


@when(parsers.re(rf"{PERSON} lists the Organizations$"))
def person_lists_organizations(catalyst: ScenarioContext, person: str) -> None:
    call_as(catalyst, person, "GET", "/api/v1/organizations")


@then(parsers.re(r'(?:he|she|they) sees? only the Organizations "(?P<listing>[^"]*)"$'))
def sees_only_organizations(catalyst: ScenarioContext, listing: str) -> None:
    response = catalyst.last_response
    assert response is not None and response.status_code == 200, response.text if response else "no request"
    listed = sorted(item["metadata"]["name"] for item in response.json()["items"])
    assert listed == sorted(n.strip() for n in listing.split(",") if n.strip()), listed


@when(parsers.re(rf'{PERSON} installs {Q.format("app")} from {Q.format("blueprint")} in {Q.format("environment")}$'))
def person_installs(catalyst: ScenarioContext, person: str, app: str, blueprint: str, environment: str) -> None:
    with personas(catalyst).acting_as(persona(catalyst, person)):
        install(catalyst, app, blueprint, environment)


# -- tokens over time (R-ID-02) -----------------------------------------------------------------------------


def session_of(context: ScenarioContext, person: str) -> Session:
    session = context.state.get("sessions", {}).get(login_of(person))
    assert session is not None, f"{person} has not logged in: say 'Given {person} has logged in at the Keycloak ...'"
    return session


def token_grant(session: Session, form: dict[str, str]) -> httpx.Response:
    return httpx.post(session.token_endpoint, data={"client_id": CLIENT_ID, **form}, timeout=30.0)


@given(parsers.re(rf'{PERSON} has logged in at the Keycloak realm of {Q.format("org")}$'))
def person_logged_in(catalyst: ScenarioContext, person: str, org: str) -> None:
    who = persona(catalyst, person)
    assert who.org == org, f"{person} belongs to {who.org!r}, not {org!r}"
    session = personas(catalyst).session(who)
    response = token_grant(session, {"grant_type": "password", "username": session.username,
                                     "password": session.password})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["expires_in"], body["refresh_expires_in"]) == (15 * 60, 30 * 24 * 3600), body  # R-ID-02
    explicit = Session(session.issuer, session.username, session.password, body["access_token"],
                       body["refresh_token"])
    catalyst.state.setdefault("sessions", {})[login_of(person)] = explicit


def call_with_token(context: ScenarioContext, person: str, token: str) -> httpx.Response:
    org = persona(context, person).org
    return context.call("GET", f"/api/v1/organizations/{org}/environments",
                        headers={"Authorization": f"Bearer {token}"})


@then(parsers.re(rf"{PERSON}'s access token is accepted by the Catalyst API$"))
def token_accepted(catalyst: ScenarioContext, person: str) -> None:
    response = call_with_token(catalyst, person, session_of(catalyst, person).access_token)
    assert response.status_code == 200, response.text


@then(parsers.re(rf"{PERSON}'s access token is refused with status (?P<status>\d+) because {Q.format('reason')}$"))
def token_refused(catalyst: ScenarioContext, person: str, status: str, reason: str) -> None:
    response = call_with_token(catalyst, person, session_of(catalyst, person).access_token)
    assert response.status_code == int(status), response.text
    assert reason in response.json()["error"]["message"], response.text
    assert response.headers.get("www-authenticate", "").startswith("Bearer"), response.headers


@when(parsers.re(rf"{PERSON} refreshes (?:her|his|their) token$"))
def person_refreshes(catalyst: ScenarioContext, person: str) -> None:
    session = session_of(catalyst, person)
    response = token_grant(session, {"grant_type": "refresh_token", "refresh_token": session.refresh_token})
    assert response.status_code == 200, f"the refresh was refused: {response.status_code} {response.text}"
    body = response.json()
    session.access_token, session.refresh_token = body["access_token"], body["refresh_token"]


@then(parsers.re(rf"{PERSON}'s refresh is refused because {Q.format('reason')}$"))
def refresh_refused(catalyst: ScenarioContext, person: str, reason: str) -> None:
    session = session_of(catalyst, person)
    response = token_grant(session, {"grant_type": "refresh_token", "refresh_token": session.refresh_token})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "invalid_grant" and reason in body["error_description"], body


# -- hostile tokens ------------------------------------------------------------------------------------------


def _segments(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    _, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return jwt.get_unverified_header(token), claims, signature


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=").decode()


def _own_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def hostile_token(context: ScenarioContext, person: str, kind: str) -> str | None:
    """The token ``person`` presents; ``None`` for none at all."""
    session = session_of(context, person)
    header, claims, signature = _segments(session.access_token)
    if kind == "no token":
        return None
    if kind == "her access token":
        return session.access_token
    if kind == "her refresh token":
        return session.refresh_token
    if kind == "a token of another Sovereign's Keycloak":
        foreign = {**claims, "iss": FOREIGN_ISSUER.format(org=claims["org"])}
        return jwt.encode(foreign, _own_key(), algorithm="RS256", headers={"kid": "other-sovereign"})
    if kind == "a token signed by another issuer's key":
        return jwt.encode(claims, _own_key(), algorithm="RS256", headers={"kid": header["kid"]})
    if kind == "a token signed by bankdhofar's realm":
        # Ahmed's genuine header and signature spliced onto Layla's claims: bankdhofar's key id under acme's iss.
        other = context.state.get("sessions", {}).get("ahmed") or _login_explicitly(context, "Ahmed")
        other_header, _, other_signature = other.access_token.split(".")
        return f"{other_header}.{_b64(claims)}.{other_signature}"
    if kind == "a tampered token":
        raised = {**claims, "roles": ["org-admin"], "environments": "*", "org": "bankdhofar"}
        return f"{session.access_token.split('.')[0]}.{_b64(raised)}.{signature}"
    raise AssertionError(f"unknown kind of token {kind!r}")


def _login_explicitly(context: ScenarioContext, person: str) -> Session:
    who = persona(context, person)
    assert who.org is not None
    person_logged_in(context, person, who.org)
    return session_of(context, person)


@when(parsers.re(rf'{PERSON} reads the Environment {Q.format("environment")} with (?P<kind>.+)$'))
def person_reads_with(catalyst: ScenarioContext, person: str, environment: str, kind: str) -> None:
    token = hostile_token(catalyst, person, kind)
    path = f"/api/v1/environments/{environment}"
    if token is None:
        with personas(catalyst).acting_as(ANONYMOUS):
            catalyst.call("GET", path)
    else:
        catalyst.call("GET", path, headers={"Authorization": f"Bearer {token}"})



# -- NATS account isolation (R-PROJ-04, R-NAME-16) -----------------------------------------------------------


def nats_credentials(context: ScenarioContext, org: str) -> tuple[str, str]:
    server = getattr(context.backend, "nats", None)
    if server is None or context.endpoints.nats_url is None:
        pytest.skip(f"backend {context.backend.name} runs no NATS server whose Org accounts the harness can use")
    return server.credentials(org)


async def _cross_account_probe(url: str, publisher: tuple[str, str], outsider: tuple[str, str],
                               subject: str) -> tuple[list[str], list[str]]:
    """Publish on ``subject`` as ``publisher``; what did the publisher's own subscriber and the outsider's
    catch-all subscriber get? The outsider's own marker, sent after the publisher's message was delivered,
    arrives after anything the server would have routed to it before: no sleeping, no timing."""
    inside = await nats.connect(url, user=publisher[0], password=publisher[1], allow_reconnect=False)
    outside = await nats.connect(url, user=outsider[0], password=outsider[1], allow_reconnect=False)
    try:
        seen_inside: asyncio.Queue[str] = asyncio.Queue()
        seen_outside: asyncio.Queue[str] = asyncio.Queue()

        async def keep_inside(msg: Any) -> None:
            await seen_inside.put(msg.subject)

        async def keep_outside(msg: Any) -> None:
            await seen_outside.put(msg.subject)

        await inside.subscribe(subject, cb=keep_inside)
        await outside.subscribe(">", cb=keep_outside)
        await inside.flush()
        await outside.flush()
        await inside.publish(subject, b"identity probe")
        await inside.flush()
        got_inside = [await asyncio.wait_for(seen_inside.get(), 10)]
        marker = "identity.probe.marker"
        await outside.publish(marker, b"")
        got_outside = []
        while not got_outside or got_outside[-1] != marker:
            got_outside.append(await asyncio.wait_for(seen_outside.get(), 10))
        return got_inside, got_outside
    finally:
        await inside.close()
        await outside.close()


@then(parsers.re(rf'Org {Q.format("outsider")}\'s NATS credentials cannot subscribe to the subjects of '
                 rf'{Q.format("environment")}$'))
def nats_accounts_isolated(catalyst: ScenarioContext, outsider: str, environment: str) -> None:
    owner = naming.parse_environment_name(environment).organization
    url = catalyst.endpoints.nats_url or ""
    subject = f"ws.{environment}.identity.probe"
    got_inside, got_outside = asyncio.run(_cross_account_probe(
        url, nats_credentials(catalyst, owner), nats_credentials(catalyst, outsider), subject))
    assert got_inside == [subject], f"{owner}'s own subscriber missed {subject}: {got_inside}"
    assert subject not in got_outside, f"{outsider}'s account received {owner}'s {subject}: {got_outside}"
