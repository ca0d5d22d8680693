"""PersonaAuth, the harness's token hook, against the Keycloak emulator and an API behind CatalystAuth over HTTP.

It must pick the right persona per request, log in over the realm's token endpoint, renew an access token
the Sovereign's clock says has expired (refresh within 30 days, a new login after), and leave explicit
Authorization headers alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta

import httpx
import pytest

from catalyst_sim.clock import VirtualClock
from catalyst_sim.control.identity import Authenticator
from catalyst_sim.control.identity.server import EmbeddedKeycloak
from catalyst_sim.harness.personas import ANONYMOUS, Persona, PersonaAuth, addressed_organization
from catalyst_sim.serving import ServerThread

from .conftest import make_app


class KeycloakSeeder:
    """The embedded backend's way of seeding users, over a bare EmbeddedKeycloak."""

    def __init__(self, keycloak: EmbeddedKeycloak, clock: VirtualClock) -> None:
        self.keycloak = keycloak
        self.clock = clock
        self.logins: list[str] = []

    def add_user(self, username: str, *, org: str | None, roles: Sequence[str],
                 environments: Sequence[str] | str = "*") -> tuple[str, str]:
        password = f"pw-{username}"
        self.keycloak.add_user(username, password, org=org, roles=roles, environments=environments)
        self.logins.append(username)
        return self.keycloak.issuer_url(org), password


@pytest.fixture(scope="module")
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture(scope="module")
def keycloak(clock: VirtualClock) -> Iterator[EmbeddedKeycloak]:
    with EmbeddedKeycloak(clock, sovereign_name="omantel") as keycloak:
        keycloak.add_organization("acme")
        keycloak.add_organization("bankdhofar")
        yield keycloak


@pytest.fixture(scope="module")
def api_url(keycloak: EmbeddedKeycloak, clock: VirtualClock) -> Iterator[str]:
    server = ServerThread(make_app(Authenticator(keycloak.topology, clock)), "persona-test-api").start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def seeder(keycloak: EmbeddedKeycloak, clock: VirtualClock) -> KeycloakSeeder:
    return KeycloakSeeder(keycloak, clock)


@pytest.fixture
def client(api_url: str, seeder: KeycloakSeeder) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_url, auth=PersonaAuth(seeder)) as http:
        yield http


@pytest.mark.parametrize(("path", "org"), [
    ("/api/v1/organizations/acme/environments", "acme"), ("/api/v1/environments/bankdhofar-prod/events", "bankdhofar"),
    ("/api/v1/organizations", None), ("/api/v1/environments/not_an_env", None), ("/api/v1/blueprints", None)])
def test_the_addressed_organization(path: str, org: str | None) -> None:
    assert addressed_organization(path) == org


def test_the_default_persona_is_the_addressed_orgs_admin_or_the_sovereign_admin(client: httpx.Client) -> None:
    assert client.get("/api/v1/environments/acme-dev").json()["user"] == "acme-admin"
    assert client.post("/api/v1/organizations/bankdhofar/environments").json()["user"] == "bankdhofar-admin"
    assert client.post("/api/v1/organizations").json()["user"] == "sovereign-admin"


def test_an_org_without_a_realm_is_asked_about_by_the_sovereign_admin(client: httpx.Client) -> None:
    assert client.get("/api/v1/organizations/nobody").json()["user"] == "sovereign-admin"


def test_a_named_person_acts_as_a_developer_of_the_addressed_org(client: httpx.Client) -> None:
    response = client.post("/api/v1/environments/acme-dev/applications", headers={"X-Catalyst-User": "layla"})
    assert response.json() == {"user": "layla", "org": "acme", "params": {"env": "acme-dev"}}


def test_a_registered_persona_keeps_its_role(client: httpx.Client) -> None:
    auth = client.auth
    assert isinstance(auth, PersonaAuth)
    auth.register(Persona("omar", "acme", ("org-viewer",), ("acme-dev",)))
    refused = client.post("/api/v1/environments/acme-dev/applications", headers={"X-Catalyst-User": "omar"})
    assert refused.status_code == 403 and "org-viewer may not write" in refused.json()["error"]["message"]
    with auth.acting_as(auth.personas["omar"]):
        assert client.get("/api/v1/environments/acme-dev").json()["user"] == "omar"
    with auth.acting_as(ANONYMOUS):
        assert client.get("/api/v1/environments/acme-dev").status_code == 401


def test_an_explicit_authorization_header_is_sent_as_it_is(client: httpx.Client) -> None:
    response = client.get("/api/v1/environments/acme-dev", headers={"Authorization": "Bearer forged.token.here"})
    assert response.status_code == 401 and "not a well-formed JWT" in response.json()["error"]["message"]


def test_tokens_are_reused_refreshed_and_renewed_on_the_clock(client: httpx.Client, seeder: KeycloakSeeder,
                                                              clock: VirtualClock) -> None:
    auth = client.auth
    assert isinstance(auth, PersonaAuth)
    layla = auth.register(Persona("layla", "acme", ("org-developer",)))
    with auth.acting_as(layla):
        assert client.get("/api/v1/environments/acme-dev").status_code == 200
        first = auth.access_token(layla)
        assert client.get("/api/v1/environments/acme-dev").status_code == 200
        assert auth.access_token(layla) == first  # cached while alive
        clock.advance(timedelta(minutes=15))
        assert client.get("/api/v1/environments/acme-dev").status_code == 200
        refreshed = auth.session(layla)
        assert refreshed.access_token != first
        old_refresh = refreshed.refresh_token
        clock.advance(timedelta(days=31))  # the session is over: only a new login helps
        assert client.get("/api/v1/environments/acme-dev").status_code == 200
        assert auth.session(layla).refresh_token != old_refresh
    assert seeder.logins.count("layla") == 1  # seeded once per scenario


def test_headers_for_another_client(client: httpx.Client, api_url: str) -> None:
    auth = client.auth
    assert isinstance(auth, PersonaAuth)
    headers = auth.headers_for("/api/v1/environments/bankdhofar-dev/events")
    with httpx.Client(base_url=api_url) as other:
        assert other.get("/api/v1/environments/bankdhofar-dev/events", headers=headers).json()["user"] == \
            "bankdhofar-admin"
