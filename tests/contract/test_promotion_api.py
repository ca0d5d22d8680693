"""The promotion routes of the Catalyst API: who may promote what to where, and the refusals a
client sees (R-PROMO-01, R-EP-02, D-14), against the embedded backend over HTTP. No virtual time
passes here; the journeys in ``features/promotion.feature`` cover the gates over time."""

from pathlib import Path

import httpx
import pytest

from catalyst_sim.backends.embedded.sovereign import EmbeddedBackend
from catalyst_sim.clients.gitea import GiteaClient
from catalyst_sim.harness.personas import ANONYMOUS, Persona, PersonaAuth

POLICIES = Path(__file__).resolve().parents[2] / "fixtures" / "policies"
PROMOTIONS = "/api/v1/environments/acme-stg/applications/orders-db/promotions"
# The harness acts as the person this header names (harness/personas.py); the API sees only her token.
LAYLA = {"X-Catalyst-User": "layla"}
SCORE_ONLY = """apiVersion: catalyst.openova.io/v1alpha1
kind: EnvironmentPolicy
metadata: {name: acme-prod-policy}
spec:
  appliesTo: {environments: [acme-prod]}
  rules:
    - {kind: re-score-gate, minScore: 80, severity: blocking}
"""








def acme(api: httpx.Client, *env_types: str) -> None:
    """acme with the given Environments and orders-db installed: repos and CRs, no virtual time."""
    assert api.post("/api/v1/organizations", json={"name": "acme", "contact": "a@acme.example"}).status_code == 201
    for env_type in env_types:
        assert api.post("/api/v1/organizations/acme/environments", json={"envType": env_type}).status_code == 201
    response = api.post(f"/api/v1/environments/acme-{env_types[0]}/applications",
                        json={"name": "orders-db", "blueprint": "bp-postgres", "version": "^1.4"})
    assert response.status_code == 201, response.text


def change_staging(gitea: GiteaClient) -> None:
    gitea.commit_files("acme", "orders-db", "staging", {"values.yaml": "config:\n  instances: 2\n"},
                       message="Two instances", author="layla")


def test_a_promotion_needs_its_author(api: httpx.Client, gitea: GiteaClient) -> None:
    acme(api, "stg", "prod")
    change_staging(gitea)
    auth = api.auth
    assert isinstance(auth, PersonaAuth)
    with auth.acting_as(ANONYMOUS):
        response = api.post(PROMOTIONS, json={"to": "acme-prod"})
    assert response.status_code == 401
    assert response.json()["error"]["problems"][0]["field"] == "Authorization"
    assert gitea.list_pulls("acme", "orders-db", state="all") == []
    # The author is the token's subject; a header naming someone else changes nothing (R-PROMO-03).
    omar = auth.access_token(Persona("omar", "acme", ("org-developer",)))
    created = api.post(PROMOTIONS, json={"to": "acme-prod"}, headers={"Authorization": f"Bearer {omar}", **LAYLA})
    assert created.status_code == 201 and created.json()["author"] == "omar", created.text


def test_a_promotion_opens_one_pull_request_and_lists_its_gates(api: httpx.Client, gitea: GiteaClient) -> None:
    acme(api, "stg", "prod")
    change_staging(gitea)
    created = api.post(PROMOTIONS, json={"to": "acme-prod"}, headers=LAYLA)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["from"], body["to"], body["author"], body["state"]) == ("acme-stg", "acme-prod", "layla", "open")
    pull = gitea.get_pull("acme", "orders-db", body["pullRequest"]["number"])
    assert (pull["head"]["ref"], pull["base"]["ref"]) == ("staging", "main")
    # No policy for acme-prod: only the implicit rule that changes arrive by pull request.
    assert [v["kind"] for v in body["gates"]["verdicts"]] == ["pr-required"]
    again = api.post(PROMOTIONS, json={"to": "acme-prod"}, headers=LAYLA)
    assert again.status_code == 409 and "already open" in again.json()["error"]["message"]
    listed = api.get(PROMOTIONS).json()["items"]
    assert [p["id"] for p in listed] == [body["id"]]
    into_prod = api.get("/api/v1/environments/acme-prod/applications/orders-db/promotions").json()["items"]
    assert [p["id"] for p in into_prod] == [body["id"]]
    assert api.get(f"{PROMOTIONS}/{body['pullRequest']['number']}").json()["id"] == body["id"]
    assert api.get(f"{PROMOTIONS}/999").status_code == 404


@pytest.mark.parametrize(("env_types", "to", "status", "mention"), [
    (("stg", "uat", "prod"), "acme-prod", 422, "promotes to acme-uat"),
    (("stg", "prod"), "acme-dev", 404, "acme-dev"),
    (("stg", "prod"), "other-prod", 404, "other-prod"),
])
def test_promotions_go_to_the_next_environment_only(api: httpx.Client, gitea: GiteaClient, env_types: tuple[str, ...],
                                                    to: str, status: int, mention: str) -> None:
    acme(api, *env_types)
    change_staging(gitea)
    response = api.post(PROMOTIONS, json={"to": to}, headers=LAYLA)
    assert response.status_code == status, response.text
    assert mention in response.json()["error"]["message"]


def test_nothing_to_promote_is_refused(api: httpx.Client) -> None:
    acme(api, "stg", "prod")
    response = api.post(PROMOTIONS, json={"to": "acme-prod"}, headers=LAYLA)
    assert response.status_code == 422 and "nothing to promote" in response.json()["error"]["message"]


def test_an_unknown_application_is_404(api: httpx.Client) -> None:
    acme(api, "stg", "prod")
    response = api.post("/api/v1/environments/acme-stg/applications/ghost/promotions", json={"to": "acme-prod"},
                        headers=LAYLA)
    assert response.status_code == 404 and "ghost" in response.json()["error"]["message"]
    assert api.get("/api/v1/environments/acme-stg/applications/ghost/promotions").status_code == 404


def test_policies_are_listed_with_their_problems(api: httpx.Client, gitea: GiteaClient) -> None:
    acme(api, "stg", "prod")
    gitea.commit_files("system", "catalyst-config", "main", {
        "policies/acme-prod-policy.yaml": (POLICIES / "acme-prod-policy.yaml").read_text()}, message="golden")
    listed = {p["name"]: p for p in api.get("/api/v1/policies").json()["items"]}
    # No team-platform or team-security exists in acme: the golden policy cannot be satisfied.
    assert listed["acme-prod-policy"]["valid"] is False
    assert any("team-platform" in p["message"] for p in listed["acme-prod-policy"]["problems"])
    change_staging(gitea)
    refused = api.post(PROMOTIONS, json={"to": "acme-prod"}, headers=LAYLA)
    assert refused.status_code == 409
    assert "policy invalid" in refused.json()["error"]["message"]
    assert gitea.list_pulls("acme", "orders-db", state="all") == []


def test_open_promotions_survive_a_control_plane_restart(backend: EmbeddedBackend, api: httpx.Client,
                                                         gitea: GiteaClient) -> None:
    """The pull request is the promotion (R-PROMO-01): a restarted promotion-controller finds it again,
    with its author from the pull request's Promoted-by trailer."""
    acme(api, "stg", "prod")
    gitea.commit_files("system", "catalyst-config", "main", {"policies/acme-prod-policy.yaml": SCORE_ONLY},
                       message="RE score gate for acme-prod")
    change_staging(gitea)
    number = api.post(PROMOTIONS, json={"to": "acme-prod"}, headers=LAYLA).json()["pullRequest"]["number"]
    backend.settle()  # no RE score recorded: the promotion stays open
    assert backend.api is not None and backend.plane is not None
    backend.api.run_coroutine(backend.plane.promotions.reset())  # forgets every promotion, then recovers
    backend.settle()
    found = api.get(f"{PROMOTIONS}/{number}")
    assert found.status_code == 200, found.text
    assert (found.json()["author"], found.json()["openedVia"], found.json()["state"]) == ("layla", "catalyst-api",
                                                                                      "open")
