"""J3 — Onboard an Organization (R-ORG, R-NAME-05, R-NAME-13), through the Catalyst and Gitea APIs."""

from __future__ import annotations

from typing import Any

from pytest_bdd import given, parsers, then, when

from catalyst_sim.clients.gitea import GiteaError
from catalyst_sim.harness.context import ScenarioContext

DEFAULT_CONTACT = "admin@{name}.example"
DEFAULT_PLAN = "standard"


def create_organization(context: ScenarioContext, name: str, contact: str | None = None,
                        plan: str = DEFAULT_PLAN) -> Any:
    body = {"name": name, "contact": contact or DEFAULT_CONTACT.format(name=name), "plan": plan}
    return context.call("POST", "/api/v1/organizations", json=body)


def organizations(context: ScenarioContext) -> dict[str, dict[str, Any]]:
    response = context.api.get("/api/v1/organizations")
    assert response.status_code == 200, response.text
    return {item["metadata"]["name"]: item for item in response.json()["items"]}


@given(parsers.parse('the Organization "{name}" exists'))
def organization_exists(catalyst: ScenarioContext, name: str) -> None:
    response = create_organization(catalyst, name)
    assert response.status_code == 201, response.text


@when(parsers.parse('the sovereign-admin creates the Organization "{name}" with contact "{contact}" and plan "{plan}"'))
def admin_creates_organization_with(catalyst: ScenarioContext, name: str, contact: str, plan: str) -> None:
    create_organization(catalyst, name, contact, plan)


@when(parsers.parse('the sovereign-admin creates the Organization "{name}"'))
def admin_creates_organization(catalyst: ScenarioContext, name: str) -> None:
    create_organization(catalyst, name)


@then(parsers.parse(
    'the Organization "{name}" is listed by the Catalyst API with contact "{contact}" and plan "{plan}"'))
def organization_listed_with(catalyst: ScenarioContext, name: str, contact: str, plan: str) -> None:
    listed = organizations(catalyst)
    assert name in listed, f"{name} not in {sorted(listed)}"
    spec = listed[name]["spec"]
    assert (spec["contact"], spec["plan"]) == (contact, plan), spec


@then(parsers.parse('the Organization "{name}" is still listed by the Catalyst API'))
@then(parsers.parse('the Organization "{name}" is listed by the Catalyst API'))
def organization_listed(catalyst: ScenarioContext, name: str) -> None:
    assert name in organizations(catalyst)


@then(parsers.parse('the Organization "{name}" has no Environments'))
def organization_has_no_environments(catalyst: ScenarioContext, name: str) -> None:
    response = catalyst.api.get(f"/api/v1/organizations/{name}/environments")
    assert response.status_code == 200, response.text
    assert response.json()["items"] == []


@then(parsers.parse("the Organization name is {verdict}"))
def organization_name_verdict(catalyst: ScenarioContext, verdict: str) -> None:
    response = catalyst.last_response
    assert response is not None
    if verdict == "accepted":
        assert response.status_code == 201, response.text
    else:
        assert verdict == "rejected", f"unknown verdict {verdict!r}"
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert any(p["field"] == "metadata.name" for p in error["problems"]), error
        assert error["message"], error


@then(parsers.parse('the Gitea Org "{name}" exists'))
def gitea_org_exists(catalyst: ScenarioContext, name: str) -> None:
    org = catalyst.gitea.get_org(name)
    assert org["username"] == name


@then(parsers.parse('the Gitea repo "{repo}" exists'))
def gitea_repo_exists(catalyst: ScenarioContext, repo: str) -> None:
    owner, name = repo.split("/", 1)
    assert catalyst.gitea.get_repo(owner, name)["full_name"] == repo


@then(parsers.parse('no Gitea repo "{repo}" exists'))
def gitea_repo_absent(catalyst: ScenarioContext, repo: str) -> None:
    owner, name = repo.split("/", 1)
    try:
        catalyst.gitea.get_repo(owner, name)
    except GiteaError as exc:
        assert exc.status == 404, exc
    else:
        raise AssertionError(f"the repo {repo} exists but should not")


@then(parsers.parse('the Organization CR "{name}" is stored in "{repo}"'))
def organization_cr_stored(catalyst: ScenarioContext, name: str, repo: str) -> None:
    import yaml

    owner, repo_name = repo.split("/", 1)
    text = catalyst.gitea.read_file(owner, repo_name, f"organizations/{name}.yaml", ref="main")
    cr = yaml.safe_load(text)
    assert cr["kind"] == "Organization" and cr["metadata"]["name"] == name, cr
