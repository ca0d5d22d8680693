"""CatalystAuth: every call authenticated by its Bearer token and authorized by {org, environment, role}.

R-ID-02 (401 for a missing, expired, foreign or tampered token), R-PROJ-04 (no Org reads another Org),
R-ID-06 (roles), on the virtual clock.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from catalyst_sim.clock import VirtualClock
from catalyst_sim.control.identity import IdentityTopology

from .conftest import bearer


def token(topology: IdentityTopology, user: str, org: str | None, roles: list[str],
          environments: Any = "*") -> str:
    return topology.login(user, org, roles, environments).access_token


def error(response: Any) -> dict[str, Any]:
    body = response.json()["error"]
    assert body["message"], body
    return body


# -- 401: who is calling cannot be proven -----------------------------------------------------------


def test_a_missing_token_is_401_with_a_bearer_challenge(client: httpx.Client) -> None:
    response = client.get("/api/v1/environments/acme-dev")
    assert response.status_code == 401
    body = error(response)
    assert body["code"] == "Unauthorized" and "no Authorization header" in body["message"]
    assert [p["field"] for p in body["problems"]] == ["Authorization"]
    assert response.headers["www-authenticate"] == 'Bearer realm="catalyst-api"'


def test_a_token_is_valid_until_15_minutes_then_401_expired(client: httpx.Client, topology: IdentityTopology,
                                                            clock: VirtualClock) -> None:
    access = token(topology, "layla", "acme", ["org-developer"])
    clock.advance(timedelta(minutes=14, seconds=59))
    assert client.get("/api/v1/environments/acme-dev", headers=bearer(access)).status_code == 200
    clock.advance(timedelta(seconds=1))
    response = client.get("/api/v1/environments/acme-dev", headers=bearer(access))
    assert response.status_code == 401
    assert "token expired" in error(response)["message"]
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_a_refreshed_token_works_again(client: httpx.Client, topology: IdentityTopology, clock: VirtualClock) -> None:
    pair = topology.login("layla", "acme", ["org-developer"], "*")
    clock.advance(timedelta(days=29))
    assert client.get("/api/v1/environments/acme-dev", headers=bearer(pair.access_token)).status_code == 401
    renewed = topology.issuer_for("acme").refresh(pair.refresh_token)
    assert client.get("/api/v1/environments/acme-dev", headers=bearer(renewed.access_token)).json()["user"] == "layla"


def test_a_refresh_token_is_not_an_access_token(client: httpx.Client, topology: IdentityTopology) -> None:
    pair = topology.login("layla", "acme", ["org-developer"], "*")
    response = client.get("/api/v1/environments/acme-dev", headers=bearer(pair.refresh_token))
    assert response.status_code == 401 and "catalyst-api" in error(response)["message"]


def _attacker_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_a_token_of_an_unknown_issuer_is_401(client: httpx.Client, topology: IdentityTopology) -> None:
    genuine = jwt.decode(token(topology, "layla", "acme", ["org-admin"]), options={"verify_signature": False})
    foreign = {**genuine, "iss": "https://keycloak.other-sovereign.example/realms/acme"}
    forged = jwt.encode(foreign, _attacker_key(), algorithm="RS256", headers={"kid": "k1"})
    response = client.get("/api/v1/environments/acme-dev", headers=bearer(forged))
    assert response.status_code == 401
    assert "unknown issuer 'https://keycloak.other-sovereign.example/realms/acme'" in error(response)["message"]


def test_a_token_signed_by_another_issuer_key_is_401(client: httpx.Client, topology: IdentityTopology) -> None:
    """Claims acme's issuer and copies its key id, but the signature is someone else's."""
    acme = topology.issuer_for("acme")
    genuine = jwt.decode(token(topology, "layla", "acme", ["org-admin"]), options={"verify_signature": False})
    forged = jwt.encode(genuine, _attacker_key(), algorithm="RS256", headers={"kid": acme.kid})
    response = client.get("/api/v1/environments/acme-dev", headers=bearer(forged))
    assert response.status_code == 401
    assert f"does not verify with the key of issuer {acme.url}" in error(response)["message"]


def test_a_token_of_another_org_realm_claiming_acme_is_401(client: httpx.Client, topology: IdentityTopology) -> None:
    """bankdhofar's realm key signs a token that names acme's issuer: acme does not publish that key."""
    bank = topology.issuer_for("bankdhofar")
    genuine = jwt.decode(token(topology, "ahmed", "bankdhofar", ["org-admin"]), options={"verify_signature": False})
    claims = {**genuine, "iss": topology.issuer_for("acme").url, "org": "acme"}
    forged = jwt.encode(claims, bank._private_key, algorithm="RS256", headers={"kid": bank.kid})
    response = client.get("/api/v1/environments/acme-dev", headers=bearer(forged))
    assert response.status_code == 401 and "does not publish" in error(response)["message"]


def test_a_tampered_token_is_401(client: httpx.Client, topology: IdentityTopology) -> None:
    header, payload, signature = token(topology, "omar", "acme", ["org-viewer"], ["acme-dev"]).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["roles"], claims["environments"] = ["org-admin"], "*"  # promote oneself
    raw = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    response = client.post("/api/v1/environments/acme-prod/applications", headers=bearer(f"{header}.{raw}.{signature}"))
    assert response.status_code == 401
    assert "signature does not verify" in error(response)["message"]


@pytest.mark.parametrize("authorization", ["Basic bGF5bGE6cHc=", "Bearer not-a-jwt", "Bearer  a.b"])
def test_malformed_authorization_is_401(client: httpx.Client, authorization: str) -> None:
    response = client.get("/api/v1/blueprints", headers={"Authorization": authorization})
    assert response.status_code == 401 and error(response)["problems"][0]["field"] == "Authorization"


# -- 403: proven, but not allowed -------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/environments/acme-dev", "/api/v1/environments/acme-dev/applications",
                                  "/api/v1/environments/acme-dev/events", "/api/v1/organizations/acme",
                                  "/api/v1/organizations/acme/environments"])
def test_an_org_cannot_read_another_org(client: httpx.Client, topology: IdentityTopology, path: str) -> None:
    ahmed = token(topology, "ahmed", "bankdhofar", ["org-admin"])
    response = client.get(path, headers=bearer(ahmed))
    assert response.status_code == 403, response.text
    body = error(response)
    assert body["code"] == "Forbidden"
    assert "Organization 'bankdhofar' may not access Organization 'acme'" in body["message"]
    assert body["problems"][0]["object"] in ("Environment/acme-dev", "Organization/acme")
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


def test_a_missing_org_of_someone_else_is_403_not_404(client: httpx.Client, topology: IdentityTopology) -> None:
    ahmed = token(topology, "ahmed", "bankdhofar", ["org-admin"])
    assert client.get("/api/v1/environments/nobody-dev", headers=bearer(ahmed)).status_code == 403


def test_the_own_org_is_let_through_with_its_principal(client: httpx.Client, topology: IdentityTopology) -> None:
    ahmed = token(topology, "ahmed", "bankdhofar", ["org-admin"])
    response = client.get("/api/v1/environments/bankdhofar-prod/events", headers=bearer(ahmed))
    assert response.status_code == 200
    assert response.json() == {"user": "ahmed", "org": "bankdhofar", "params": {"env": "bankdhofar-prod"}}


@pytest.mark.parametrize(("roles", "environments", "method", "path", "status", "reason"), [
    (["org-viewer"], "*", "GET", "/api/v1/environments/acme-dev/applications", 200, ""),
    (["org-viewer"], "*", "POST", "/api/v1/environments/acme-dev/applications", 403, "may not write"),
    (["org-developer"], "*", "POST", "/api/v1/environments/acme-dev/applications", 200, ""),
    (["org-developer"], ["acme-dev"], "POST", "/api/v1/environments/acme-prod/applications", 403,
     "no access to Environment 'acme-prod'"),
    (["org-developer"], "*", "POST", "/api/v1/organizations/acme/environments", 403, "may not admin"),
    (["org-admin"], "*", "POST", "/api/v1/organizations/acme/environments", 200, ""),
    (["billing-admin"], "*", "GET", "/api/v1/environments/acme-dev", 403, "may not read"),
    (["billing-admin"], "*", "GET", "/api/v1/organizations/acme", 200, ""),
    (["org-admin"], "*", "POST", "/api/v1/organizations", 403, "only a sovereign-admin"),
    (["org-admin"], "*", "POST", "/api/v1/policies/reload", 403, "only a sovereign-admin"),
    (["org-viewer"], "*", "GET", "/api/v1/blueprints", 200, ""),
])
def test_roles_and_environments_decide(client: httpx.Client, topology: IdentityTopology, roles: list[str],
                                       environments: Any, method: str, path: str, status: int, reason: str) -> None:
    access = token(topology, "someone", "acme", roles, environments)
    response = client.request(method, path, headers=bearer(access))
    assert response.status_code == status, response.text
    if reason:
        assert reason in error(response)["message"]


def test_the_sovereign_admin_crosses_organizations(client: httpx.Client, topology: IdentityTopology) -> None:
    admin = token(topology, "root", None, ["sovereign-admin"])
    for method, path in [("POST", "/api/v1/organizations"), ("GET", "/api/v1/environments/acme-dev"),
                         ("POST", "/api/v1/organizations/bankdhofar/environments")]:
        assert client.request(method, path, headers=bearer(admin)).status_code == 200, path


def test_a_malformed_environment_name_is_422_naming_the_field(client: httpx.Client, topology: IdentityTopology) -> None:
    layla = token(topology, "layla", "acme", ["org-developer"])
    response = client.get("/api/v1/environments/acme/applications", headers=bearer(layla))
    assert response.status_code == 422
    assert error(response)["problems"][0]["field"] == "env"


# -- what stays public -------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), [("GET", "/healthz"), ("GET", "/openapi.json"),
                                              ("POST", "/api/v1/hooks/gitea")])
def test_probes_openapi_and_the_signed_webhook_need_no_token(client: httpx.Client, method: str, path: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 200 and response.json() == {"public": True, "principal": False}


def test_unknown_paths_and_methods_are_left_to_the_router(client: httpx.Client) -> None:
    assert client.get("/api/v1/nothing-here").status_code == 404
    assert client.delete("/api/v1/blueprints").status_code == 405
