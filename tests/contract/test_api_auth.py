"""The Catalyst API's identity contract on the embedded backend, over HTTP with ordinary clients.

The Sovereign serves its Keycloak realms (discovery, JWKS, token endpoint) so a real OIDC client (PyJWT's
``PyJWKClient``) can verify what the API verifies; an Organization's realm appears when it is onboarded and
goes when it is gone (R-ORG-03); every API call needs a token and is authorized by its claims (R-ID-02,
R-PROJ-04); the probes, OpenAPI and the HMAC-signed Gitea webhook stay open.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from catalyst_sim.backends.embedded.sovereign import EmbeddedBackend
from catalyst_sim.clients.gitea import GiteaClient
from catalyst_sim.harness.personas import ANONYMOUS, Persona, PersonaAuth

POLICIES = Path(__file__).resolve().parents[2] / "fixtures" / "policies"






@pytest.fixture
def raw(backend: EmbeddedBackend) -> Iterator[httpx.Client]:
    """No token at all."""
    assert backend.endpoints is not None
    with httpx.Client(base_url=backend.endpoints.catalyst_api) as client:
        yield client


def onboard(api: httpx.Client, *orgs: str) -> None:
    for org in orgs:
        assert api.post("/api/v1/organizations", json={"name": org, "contact": f"a@{org}.example"}).status_code == 201
        assert api.post(f"/api/v1/organizations/{org}/environments", json={"envType": "dev"}).status_code == 201


def test_keycloak_is_reported_as_emulated_with_its_url(backend: EmbeddedBackend) -> None:
    assert backend.endpoints is not None
    keycloak = next(c for c in backend.endpoints.components if c.name == "keycloak")
    assert keycloak.kind == "emulated" and keycloak.url == backend.endpoints.keycloak_url
    assert "per-organization" in keycloak.implementation  # the SME topology of fixtures/topologies/sme.yaml


def test_an_onboarded_org_gets_a_realm_whose_jwks_verifies_its_tokens(api: httpx.Client,
                                                                      backend: EmbeddedBackend) -> None:
    onboard(api, "acme")
    issuer, password = backend.add_user("layla", org="acme", roles=["org-developer"])
    assert issuer.endswith("/keycloak/acme/realms/acme")  # per-organization: acme's own Keycloak (R-ID-04)
    discovery = httpx.get(f"{issuer}/.well-known/openid-configuration").json()
    assert discovery["issuer"] == issuer
    tokens = httpx.post(discovery["token_endpoint"], data={"grant_type": "password", "client_id": "console",
                                                           "username": "layla", "password": password}).json()
    key = jwt.PyJWKClient(discovery["jwks_uri"]).get_signing_key_from_jwt(tokens["access_token"])
    claims = jwt.decode(tokens["access_token"], key.key, algorithms=["RS256"], audience="catalyst-api",
                        options={"verify_exp": False})  # the virtual clock is days ahead of wall time
    assert (claims["iss"], claims["sub"], claims["org"], claims["roles"]) == (issuer, "layla", "acme",
                                                                             ["org-developer"])
    listed = api.get("/api/v1/environments/acme-dev/applications",
                     headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert listed.status_code == 200, listed.text


def test_a_reset_removes_the_realms_of_orgs_that_are_gone(api: httpx.Client, backend: EmbeddedBackend) -> None:
    onboard(api, "acme")
    issuer, password = backend.add_user("layla", org="acme", roles=["org-developer"])
    token = httpx.post(f"{issuer}/protocol/openid-connect/token", data={
        "grant_type": "password", "client_id": "console", "username": "layla", "password": password}).json()
    backend.reset()
    assert httpx.get(f"{issuer}/.well-known/openid-configuration").status_code == 404
    assert api.post("/api/v1/organizations", json={"name": "acme", "contact": "a@acme.example"}).status_code == 201
    refused = api.get("/api/v1/organizations/acme", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert refused.status_code == 401, refused.text  # the new acme realm has a new key


def test_every_api_call_needs_a_token(raw: httpx.Client) -> None:
    for method, path in [("GET", "/api/v1/organizations"), ("POST", "/api/v1/organizations"),
                         ("GET", "/api/v1/blueprints"), ("GET", "/api/v1/policies"),
                         ("GET", "/api/v1/environments/acme-dev/applications"),
                         ("POST", "/api/v1/environments/acme-stg/applications/orders-db/promotions")]:
        response = raw.request(method, path, json={})
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"]["problems"][0]["field"] == "Authorization"
        assert response.headers["www-authenticate"] == 'Bearer realm="catalyst-api"'


def test_probes_openapi_and_the_signed_webhook_stay_open(raw: httpx.Client) -> None:
    assert raw.get("/healthz").status_code == 200
    document = raw.get("/openapi.json").json()
    assert "/api/v1/organizations" in document["paths"]
    unsigned = raw.post("/api/v1/hooks/gitea", content=b"{}", headers={"X-Gitea-Event": "push"})
    assert unsigned.status_code == 401 and "signature" in unsigned.json()["error"]["message"]


def test_an_org_sees_only_itself_and_cannot_read_another(api: httpx.Client) -> None:
    onboard(api, "acme", "bankdhofar")
    auth = api.auth
    assert isinstance(auth, PersonaAuth)
    ahmed = auth.register(Persona("ahmed", "bankdhofar", ("org-admin",)))
    with auth.acting_as(ahmed):
        assert [o["metadata"]["name"] for o in api.get("/api/v1/organizations").json()["items"]] == ["bankdhofar"]
        refused = api.get("/api/v1/environments/acme-dev")
        assert refused.status_code == 403
        assert refused.json()["error"]["problems"][0]["object"] == "Environment/acme-dev"
        assert api.get("/api/v1/environments/bankdhofar-dev").status_code == 200
        assert api.post("/api/v1/organizations", json={"name": "evil", "contact": "e@x.example"}).status_code == 403
    names = [o["metadata"]["name"] for o in api.get("/api/v1/organizations").json()["items"]]
    assert names == ["acme", "bankdhofar"]  # the sovereign-admin sees every Org


def test_policies_show_a_non_admin_only_those_of_their_org(api: httpx.Client, backend: EmbeddedBackend) -> None:
    onboard(api, "acme")
    assert backend.endpoints is not None
    with GiteaClient(backend.endpoints.gitea_url, backend.endpoints.gitea_token) as gitea:
        gitea.commit_files("system", "catalyst-config", "main",
                           {f"policies/{name}": (POLICIES / name).read_text()
                            for name in ("acme-prod-policy.yaml", "gulfbank-prod-policy.yaml")},
                           message="two Orgs' policies", author="sovereign-admin")
    everything = {item["name"] for item in api.get("/api/v1/policies").json()["items"]}
    assert {"acme-prod-policy", "gulfbank-prod-policy"} <= everything  # the sovereign-admin sees all
    auth = api.auth
    assert isinstance(auth, PersonaAuth)
    with auth.acting_as(auth.register(Persona("layla", "acme", ("org-developer",)))):
        response = api.get("/api/v1/policies")
    assert response.status_code == 200
    assert {item["name"] for item in response.json()["items"]} == {"acme-prod-policy"}


def test_anonymous_persona_sends_no_token(api: httpx.Client) -> None:
    auth = api.auth
    assert isinstance(auth, PersonaAuth)
    with auth.acting_as(ANONYMOUS):
        assert api.get("/api/v1/blueprints").status_code == 401
    assert api.get("/api/v1/blueprints").status_code == 200
