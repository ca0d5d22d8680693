"""The Catalyst API of the reference control plane: error shapes, OpenAPI, and all-or-nothing
installs (R-PROV-03), against the embedded backend over HTTP."""

from pathlib import Path

import httpx
import pytest

from catalyst_sim.backends.base import BackendOptions
from catalyst_sim.backends.embedded.sovereign import EmbeddedBackend
from catalyst_sim.clients.gitea import GiteaClient

WORDPRESS = {"domain": "m.acme.example", "adminEmail": "layla@acme.example", "postgres": {"mode": "embedded"}}








def onboard(api: httpx.Client, org: str = "acme", env_type: str = "dev") -> None:
    assert api.post("/api/v1/organizations", json={"name": org, "contact": f"admin@{org}.example"}).status_code == 201
    assert api.post(f"/api/v1/organizations/{org}/environments", json={"envType": env_type}).status_code == 201


def test_unknown_fields_in_a_body_are_named(api: httpx.Client) -> None:
    response = api.post("/api/v1/organizations", json={"name": "acme", "contact": "a@b.example", "tenant": "x"})
    assert response.status_code == 422
    problems = response.json()["error"]["problems"]
    assert [p["field"] for p in problems] == ["tenant"]
    assert problems[0]["object"] == "Organization"


def test_invalid_json_is_a_clear_422(api: httpx.Client) -> None:
    response = api.post("/api/v1/organizations", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "not valid JSON" in response.json()["error"]["message"]


def test_missing_objects_are_404_naming_them(api: httpx.Client) -> None:
    response = api.get("/api/v1/environments/nobody-dev")
    assert response.status_code == 404
    assert "nobody-dev" in response.json()["error"]["message"]
    response = api.post("/api/v1/organizations/nobody/environments", json={"envType": "dev"})
    assert response.status_code == 404


def test_environment_rules(api: httpx.Client) -> None:
    onboard(api)
    duplicate = api.post("/api/v1/organizations/acme/environments", json={"envType": "dev"})
    assert duplicate.status_code == 409 and "R-ENV-04" in duplicate.json()["error"]["message"]
    bad_type = api.post("/api/v1/organizations/acme/environments", json={"envType": "dr"})
    assert bad_type.status_code == 422
    assert bad_type.json()["error"]["problems"][0]["field"] == "spec.envType"
    wrong_name = api.post("/api/v1/organizations/acme/environments", json={"envType": "stg", "name": "acme-staging"})
    assert wrong_name.status_code == 422
    environments = api.get("/api/v1/organizations/acme/environments").json()["items"]
    assert [e["metadata"]["name"] for e in environments] == ["acme-dev"]


def test_dry_run_returns_the_plan_and_creates_nothing(api: httpx.Client, gitea: GiteaClient) -> None:
    onboard(api)
    response = api.post("/api/v1/environments/acme-dev/applications?dryRun=true",
                        json={"name": "marketing-site", "blueprint": "bp-wordpress", "config": WORDPRESS})
    assert response.status_code == 200, response.text
    plan = response.json()["plan"]
    assert [a["name"] for a in plan["applications"]] == ["marketing-site-postgres", "marketing-site"]
    assert {r["name"] for r in gitea.list_org_repos("acme")} == {"shared-blueprints"}


def test_a_plan_failing_half_way_leaves_no_repo_behind(api: httpx.Client, gitea: GiteaClient) -> None:
    """The dependency's repo is created first; the App's own repo then collides with one made
    behind Catalyst's back, and the dependency's repo must be deleted again (R-PROV-03)."""
    onboard(api)
    gitea.create_repo("acme", "marketing-site", private=True)
    response = api.post("/api/v1/environments/acme-dev/applications",
                        json={"name": "marketing-site", "blueprint": "bp-wordpress", "config": WORDPRESS})
    assert response.status_code == 409, response.text
    assert "already exists" in response.json()["error"]["message"]
    assert {r["name"] for r in gitea.list_org_repos("acme")} == {"shared-blueprints", "marketing-site"}
    assert api.get("/api/v1/environments/acme-dev/applications").json()["items"] == []


def test_installed_applications_are_listed_with_their_pins(api: httpx.Client) -> None:
    onboard(api)
    response = api.post("/api/v1/environments/acme-dev/applications",
                        json={"name": "marketing-site", "blueprint": "bp-wordpress", "config": WORDPRESS})
    assert response.status_code == 201, response.text
    items = api.get("/api/v1/environments/acme-dev/applications").json()["items"]
    pins = {a["metadata"]["name"]: a["spec"]["blueprint"] for a in items}
    assert pins["marketing-site"]["name"] == "bp-wordpress"
    assert pins["marketing-site-postgres"]["version"].startswith("1.")
    assert response.json()["repositories"][0]["clone_url"].endswith(".git")


def test_state_survives_a_control_plane_restart(backend: EmbeddedBackend, api: httpx.Client) -> None:
    """Git is the source of truth (R-CRD-02): a fresh index rebuilt from catalyst-config agrees."""
    onboard(api)
    assert backend.plane is not None
    backend.plane.store.forget()
    backend.plane.start()
    names = [o["metadata"]["name"] for o in api.get("/api/v1/organizations").json()["items"]]
    assert names == ["acme"]
    assert api.get("/api/v1/environments/acme-dev").status_code == 200


def test_the_openapi_document_describes_the_routes(api: httpx.Client) -> None:
    document = api.get("/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert "post" in document["paths"]["/api/v1/environments/{env}/applications"]
    assert "InstallBody" in document["components"]["schemas"]


def test_blueprints_are_listed_and_fetched(api: httpx.Client) -> None:
    names = {b["metadata"]["name"] for b in api.get("/api/v1/blueprints").json()["items"]}
    assert {"bp-wordpress", "bp-postgres", "bp-bundle-pharmacy"} <= names
    assert api.get("/api/v1/blueprints/bp-postgres", params={"version": "^1.4"}).json()["spec"]["version"] == "1.5.0"
    assert api.get("/api/v1/blueprints/bp-nope").status_code == 404


def test_stop_releases_every_port(tmp_path: Path) -> None:
    backend = EmbeddedBackend(BackendOptions(run_dir=tmp_path))
    endpoints = backend.start()
    assert endpoints.toxiproxy_url  # the mothership's only way in
    served = [f"{endpoints.catalyst_api}/healthz", f"{endpoints.gitea_url}/api/v1/version",
              f"{endpoints.toxiproxy_url}/version"]
    backend.stop()
    for url in served:
        with pytest.raises(httpx.ConnectError):
            httpx.get(url, timeout=2)


def test_the_realism_ledger_names_every_real_server_with_its_version(backend: EmbeddedBackend) -> None:
    assert backend.endpoints is not None
    real = {c.name: c.version for c in backend.endpoints.components if c.kind == "real"}
    assert {"git", "helm", "nats", "openbao"} <= set(real) and all(real.values()), real
