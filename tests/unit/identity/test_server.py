"""Keycloak's OIDC endpoints over HTTP, exercised with real clients: httpx and PyJWT's PyJWKClient (R-ID-02/04/05)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import jwt
import pytest

from catalyst_sim.clock import VirtualClock
from catalyst_sim.control.identity import Authenticator
from catalyst_sim.control.identity.server import EmbeddedKeycloak
from catalyst_sim.model.base import CatalystError

from .conftest import ORGS, bearer

# The virtual epoch may lie ahead of wall time, so a plain client verifies keys, not times.
NO_TIME_CHECKS = {"verify_exp": False, "verify_nbf": False, "verify_iat": False}


@pytest.fixture(params=["per-organization", "shared-sovereign"])
def keycloak(request: pytest.FixtureRequest, clock: VirtualClock) -> Iterator[EmbeddedKeycloak]:
    with EmbeddedKeycloak(clock, sovereign_name="omantel", keycloak_topology=request.param) as server:
        for org in ORGS:
            server.add_organization(org)
        server.add_user("alice", "alice-pw", org="acme", roles=["org-developer"], environments=["acme-prod"])
        server.add_user("bob", "bob-pw", org="bankdhofar", roles=["org-viewer"])
        server.add_user("root", "root-pw", org=None, roles=["sovereign-admin"])
        yield server


def _password_login(client: httpx.Client, issuer_url: str, user: str, password: str) -> httpx.Response:
    discovery = client.get(f"{issuer_url}/.well-known/openid-configuration")
    if discovery.status_code != 200:
        return discovery
    form = {"grant_type": "password", "client_id": "catalyst-console", "username": user, "password": password}
    return client.post(discovery.json()["token_endpoint"], data=form)


def test_discovery_and_jwks_served_per_realm_verify_a_token_with_pyjwkclient(keycloak: EmbeddedKeycloak) -> None:
    issuer_url = keycloak.issuer_url("acme")
    with httpx.Client() as client:
        discovery = client.get(f"{issuer_url}/.well-known/openid-configuration")
        assert discovery.status_code == 200
        assert discovery.json()["issuer"] == issuer_url
        jwks = client.get(discovery.json()["jwks_uri"])
        assert jwks.status_code == 200 and jwks.json()["keys"][0]["kid"] == keycloak.topology.issuer_for("acme").kid
        login = _password_login(client, issuer_url, "alice", "alice-pw")
    assert login.status_code == 200, login.text
    body = login.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900 and body["refresh_expires_in"] == 2592000
    token = body["access_token"]
    signing_key = jwt.PyJWKClient(discovery.json()["jwks_uri"]).get_signing_key_from_jwt(token)
    claims = jwt.decode(token, signing_key.key, algorithms=["RS256"], audience="catalyst-api", issuer=issuer_url,
                        options=NO_TIME_CHECKS)
    assert claims["sub"] == "alice" and claims["org"] == "acme" and claims["roles"] == ["org-developer"]
    # Another realm's published key does not verify it.
    other = jwt.PyJWKClient(f"{keycloak.issuer_url('bankdhofar')}/protocol/openid-connect/certs")
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, other.get_signing_keys()[0].key, algorithms=["RS256"], audience="catalyst-api",
                   options=NO_TIME_CHECKS)


def test_issuer_urls_follow_the_topology(keycloak: EmbeddedKeycloak) -> None:
    if keycloak.keycloak_topology == "per-organization":
        assert keycloak.issuer_url("acme") == f"{keycloak.url}/keycloak/acme/realms/acme"
    else:
        assert keycloak.issuer_url("acme") == f"{keycloak.url}/realms/acme"
    assert keycloak.issuer_url(None) == f"{keycloak.url}/realms/catalyst-admin"


def test_password_grant_tokens_pass_the_authenticator_and_refresh_over_http(keycloak: EmbeddedKeycloak,
                                                                            clock: VirtualClock) -> None:
    auth = Authenticator(keycloak.topology, clock)
    issuer_url = keycloak.issuer_url("acme")
    with httpx.Client() as client:
        tokens = _password_login(client, issuer_url, "alice", "alice-pw").json()
        principal = auth.check(bearer(tokens["access_token"]), organization="acme", environment="acme-prod",
                               action="write")
        assert principal.issuer == issuer_url
        clock.advance(timedelta(minutes=15))
        with pytest.raises(CatalystError, match="token expired"):
            auth.authenticate(bearer(tokens["access_token"]))
        token_endpoint = f"{issuer_url}/protocol/openid-connect/token"
        clock.advance(timedelta(days=29))
        refreshed = client.post(token_endpoint, data={"grant_type": "refresh_token",
                                                      "refresh_token": tokens["refresh_token"]})
        assert refreshed.status_code == 200, refreshed.text
        auth.authenticate(bearer(refreshed.json()["access_token"]))
        clock.advance(timedelta(days=1))
        dead = client.post(token_endpoint, data={"grant_type": "refresh_token",
                                                 "refresh_token": refreshed.json()["refresh_token"]})
        assert dead.status_code == 400 and dead.json()["error"] == "invalid_grant"


def test_revocation_ends_the_session(keycloak: EmbeddedKeycloak) -> None:
    issuer_url = keycloak.issuer_url("bankdhofar")
    with httpx.Client() as client:
        tokens = _password_login(client, issuer_url, "bob", "bob-pw").json()
        revoked = client.post(f"{issuer_url}/protocol/openid-connect/revoke", data={"token": tokens["refresh_token"]})
        assert revoked.status_code == 200
        garbage = client.post(f"{issuer_url}/protocol/openid-connect/revoke", data={"token": "garbage"})
        assert garbage.status_code == 200, "RFC 7009: an invalid token is not an error"
        again = client.post(f"{issuer_url}/protocol/openid-connect/token",
                            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert again.status_code == 400 and "revoked" in again.json()["error_description"]


def test_keycloak_error_shapes(keycloak: EmbeddedKeycloak) -> None:
    issuer_url = keycloak.issuer_url("acme")
    token_endpoint = f"{issuer_url}/protocol/openid-connect/token"
    with httpx.Client() as client:
        wrong = _password_login(client, issuer_url, "alice", "nope")
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_grant"
        # alice lives in acme's realm, not bankdhofar's.
        assert _password_login(client, keycloak.issuer_url("bankdhofar"), "alice", "alice-pw").status_code == 401
        assert client.post(token_endpoint, data={"grant_type": "client_credentials"}).json()["error"] == \
            "unsupported_grant_type"
        assert client.post(token_endpoint, data={"grant_type": "password"}).status_code == 400
        missing = client.get(f"{keycloak.url}/realms/nobody/.well-known/openid-configuration")
        assert missing.status_code == 404 and missing.json() == {"error": "Realm does not exist"}
        assert client.get(f"{issuer_url}/protocol/openid-connect/nothing").status_code == 404


def test_an_outage_is_per_org_keycloak_only_under_per_organization(keycloak: EmbeddedKeycloak) -> None:
    """R-ID-04: Org A's Keycloak down, Org B logs in; R-ID-05: the shared Keycloak is one failure domain."""
    keycloak.topology.set_available("acme", False)
    with httpx.Client() as client:
        acme = client.get(f"{keycloak.issuer_url('acme')}/protocol/openid-connect/certs")
        assert acme.status_code == 503
        bank = _password_login(client, keycloak.issuer_url("bankdhofar"), "bob", "bob-pw")
        admin = _password_login(client, keycloak.issuer_url(None), "root", "root-pw")
    if keycloak.keycloak_topology == "per-organization":
        assert bank.status_code == 200 and admin.status_code == 200
    else:
        assert bank.status_code == 503 and admin.status_code == 503


def test_a_sovereign_admin_logged_in_over_http_may_act_across_orgs(keycloak: EmbeddedKeycloak,
                                                                   clock: VirtualClock) -> None:
    auth = Authenticator(keycloak.topology, clock)
    with httpx.Client() as client:
        tokens = _password_login(client, keycloak.issuer_url(None), "root", "root-pw").json()
    principal = auth.authenticate(bearer(tokens["access_token"]))
    assert principal.user == "root" and principal.org is None and "sovereign-admin" in principal.roles
    for org in ORGS:  # authorize raises CatalystError (Forbidden) on a refusal
        assert auth.authorize(principal, organization=org, environment=f"{org}-prod", action="admin") is None


def test_stop_frees_the_server(clock: VirtualClock) -> None:
    server = EmbeddedKeycloak(clock, keycloak_topology="shared-sovereign").start()
    url = server.issuer_url(None)
    assert httpx.get(f"{url}/.well-known/openid-configuration").status_code == 200
    server.stop()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/.well-known/openid-configuration", timeout=2)


def test_an_organization_named_like_a_path_segment_still_resolves(clock: VirtualClock) -> None:
    with EmbeddedKeycloak(clock, keycloak_topology="per-organization") as server:
        server.add_organization("realms")
        server.add_user("eve", "eve-pw", org="realms", roles=["org-viewer"])
        url = server.issuer_url("realms")
        assert url.endswith("/keycloak/realms/realms/realms")
        with httpx.Client() as client:
            assert client.get(f"{url}/.well-known/openid-configuration").json()["issuer"] == url
            assert _password_login(client, url, "eve", "eve-pw").status_code == 200
