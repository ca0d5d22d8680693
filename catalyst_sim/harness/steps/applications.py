"""J5 — Install an Application from a Blueprint (R-PROV, R-CAT, R-GIT-01), observed through the
Catalyst API, the Gitea API and ``git clone``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pytest_bdd import given, parsers, then, when

from catalyst_sim.harness.context import ScenarioContext

Q = r'"(?P<{}>[^"]+)"'  # a quoted step argument that cannot swallow the rest of the sentence

APP_REPO_LAYOUT = (
    "kustomization.yaml",
    "values.yaml",
    "overlays/dev/values.yaml",
    "overlays/stg/values.yaml",
    "overlays/prod/values.yaml",
    "secrets",
    "CODEOWNERS",
)


def config_from_table(datatable: list[list[str]] | None) -> dict[str, Any]:
    """A two-column table (field, value) into a nested config; dotted fields nest, values are YAML."""
    config: dict[str, Any] = {}
    rows = list(datatable or [])
    if rows and [cell.strip().lower() for cell in rows[0]] == ["field", "value"]:
        rows = rows[1:]
    for field, raw in rows:
        node = config
        *parents, leaf = field.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(raw) if raw.strip() else ""
    return config


def names(listing: str) -> list[str]:
    return [item.strip() for item in listing.split(",") if item.strip()]


def install(context: ScenarioContext, app: str, blueprint: str, environment: str, *,
            config: dict[str, Any] | None = None, version: str | None = None,
            bindings: dict[str, str] | None = None) -> Any:
    body: dict[str, Any] = {"name": app, "blueprint": blueprint, "config": config or {}}
    if version is not None:
        body["version"] = version
    if bindings:
        body["bindings"] = bindings
    response = context.call("POST", f"/api/v1/environments/{environment}/applications", json=body)
    if response.status_code == 201:
        context.state["plan"] = response.json()["plan"]
    return response


@given(parsers.parse('the Environment "{environment}" exists'))
def environment_exists(catalyst: ScenarioContext, environment: str) -> None:
    org, _, env_type = environment.rpartition("-")
    response = catalyst.call("POST", f"/api/v1/organizations/{org}/environments", json={"envType": env_type})
    assert response.status_code == 201, response.text


@given(parsers.re(rf'the Application {Q.format("app")} is installed from {Q.format("blueprint")} in '
                  rf'{Q.format("environment")}$'))
def application_installed(catalyst: ScenarioContext, app: str, blueprint: str, environment: str) -> None:
    response = install(catalyst, app, blueprint, environment)
    assert response.status_code == 201, response.text


@given(parsers.re(rf'the Application {Q.format("app")} is installed from {Q.format("blueprint")} version '
                  rf'{Q.format("version")} in {Q.format("environment")}$'))
def application_installed_at(catalyst: ScenarioContext, app: str, blueprint: str, version: str,
                             environment: str) -> None:
    response = install(catalyst, app, blueprint, environment, version=version)
    assert response.status_code == 201, response.text


@then(parsers.parse('the Gitea Org "{org}" holds only the repos "{listing}"'))
def org_holds_only(catalyst: ScenarioContext, org: str, listing: str) -> None:
    repos = {repo["name"] for repo in catalyst.gitea.list_org_repos(org)}
    assert repos == set(names(listing)), f"{org} holds {sorted(repos)}"


@when(parsers.parse("Layla lists the Blueprints of the catalog"))
def list_blueprints(catalyst: ScenarioContext) -> None:
    catalyst.call("GET", "/api/v1/blueprints")


@then(parsers.parse('the catalog lists "{listing}"'))
def catalog_lists(catalyst: ScenarioContext, listing: str) -> None:
    assert catalyst.last_response is not None and catalyst.last_response.status_code == 200
    listed = {item["metadata"]["name"] for item in catalyst.last_response.json()["items"]}
    missing = set(names(listing)) - listed
    assert not missing, f"missing from the catalog: {sorted(missing)}; listed: {sorted(listed)}"


@when(parsers.re(rf'(?P<person>\w+) installs {Q.format("app")} from {Q.format("blueprint")} in '
                 rf'{Q.format("environment")} binding {Q.format("alias")} to {Q.format("existing")} with config:'))
def install_with_binding(catalyst: ScenarioContext, person: str, app: str, blueprint: str, environment: str,
                         alias: str, existing: str, datatable: list[list[str]]) -> None:
    install(catalyst, app, blueprint, environment, config=config_from_table(datatable), bindings={alias: existing})


@given(parsers.re(rf'the Application {Q.format("app")} is installed from {Q.format("blueprint")} in '
                  rf'{Q.format("environment")} with config:'))
def application_installed_with(catalyst: ScenarioContext, app: str, blueprint: str, environment: str,
                               datatable: list[list[str]]) -> None:
    response = install(catalyst, app, blueprint, environment, config=config_from_table(datatable))
    assert response.status_code == 201, response.text


@when(parsers.re(rf'(?P<person>\w+) installs {Q.format("app")} from {Q.format("blueprint")} in '
                 rf'{Q.format("environment")} with config:'))
def install_with_config(catalyst: ScenarioContext, person: str, app: str, blueprint: str, environment: str,
                        datatable: list[list[str]]) -> None:
    install(catalyst, app, blueprint, environment, config=config_from_table(datatable))


@when(parsers.re(rf'(?P<person>\w+) installs {Q.format("app")} from {Q.format("blueprint")} version '
                 rf'{Q.format("version")} in {Q.format("environment")}$'))
def install_version(catalyst: ScenarioContext, person: str, app: str, blueprint: str, version: str,
                    environment: str) -> None:
    install(catalyst, app, blueprint, environment, version=version)


@then(parsers.parse('the install plan creates the Applications "{listing}"'))
def plan_creates(catalyst: ScenarioContext, listing: str) -> None:
    plan = catalyst.state["plan"]
    created = [app["name"] for app in plan["applications"] if app["new"]]
    assert sorted(created) == sorted(names(listing)), plan
    catalyst.state["created"] = created


@then(parsers.parse('the install plan binds "{alias}" to the existing Application "{existing}"'))
def plan_binds(catalyst: ScenarioContext, alias: str, existing: str) -> None:
    plan = catalyst.state["plan"]
    bound = {(b["alias"], b["application"]) for b in plan["bindings"]}
    assert (alias, existing) in bound, plan["bindings"]


def _assert_branches(context: ScenarioContext, repo: str, listing: str) -> None:
    owner, name = repo.split("/", 1)
    branches = {branch["name"] for branch in context.gitea.list_branches(owner, name)}
    assert branches == set(names(listing)), f"{repo} has branches {sorted(branches)}"


@then(parsers.parse('the Gitea repo "{repo}" has the branches "{listing}"'))
def repo_has_branches(catalyst: ScenarioContext, repo: str, listing: str) -> None:
    _assert_branches(catalyst, repo, listing)


@then(parsers.parse('each of those Gitea repos under "{org}" has the branches "{listing}"'))
def each_repo_has_branches(catalyst: ScenarioContext, org: str, listing: str) -> None:
    for app in catalyst.state["created"]:
        _assert_branches(catalyst, f"{org}/{app}", listing)


@then(parsers.parse('every branch of "{repo}" holds the Application manifests'))
def every_branch_holds_manifests(catalyst: ScenarioContext, repo: str) -> None:
    owner, name = repo.split("/", 1)
    for branch in ("develop", "staging", "main"):
        for path in APP_REPO_LAYOUT:
            entry = catalyst.gitea.get_contents(owner, name, path, ref=branch)
            assert entry, f"{repo}@{branch} lacks {path}"


def _assert_layout(clone: Path, repo: str) -> None:
    missing = [path for path in APP_REPO_LAYOUT if not (clone / path).exists()]
    assert not missing, f"{repo} clone lacks {missing}"
    kustomization = yaml.safe_load((clone / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization", kustomization
    assert kustomization["metadata"]["labels"]["openova.io/blueprint-version"], "no version pin (R-APP-03)"


@then(parsers.parse('a git clone of "{repo}" on branch "{branch}" holds the Application manifests'))
def clone_holds_manifests(catalyst: ScenarioContext, repo: str, branch: str) -> None:
    _assert_layout(catalyst.clone(repo, branch), repo)


@then(parsers.parse('the kustomization of "{repo}" depends on "{dependency}"'))
def kustomization_depends_on(catalyst: ScenarioContext, repo: str, dependency: str) -> None:
    owner, name = repo.split("/", 1)
    for branch in ("develop", "staging", "main"):
        kustomization = yaml.safe_load(catalyst.gitea.read_file(owner, name, "kustomization.yaml", ref=branch))
        depends = [item["name"] for item in kustomization["spec"].get("dependsOn", [])]
        assert dependency in depends, f"{repo}@{branch} dependsOn {depends}"


@then(parsers.parse('the secrets of "{repo}" are ExternalSecret references under "{prefix}"'))
def secrets_are_references(catalyst: ScenarioContext, repo: str, prefix: str) -> None:
    clone = catalyst.clone(repo, "main")
    documents = [doc for path in sorted((clone / "secrets").rglob("*.yaml"))
                 for doc in yaml.safe_load_all(path.read_text()) if doc]
    assert documents, f"{repo} has no secrets/ manifests"
    for doc in documents:
        assert doc["kind"] == "ExternalSecret", f"secrets/ holds a {doc['kind']} (R-GIT-02)"
        for item in doc["spec"]["data"]:
            assert item["remoteRef"]["key"].startswith(prefix), item
    for values in clone.rglob("values.yaml"):
        assert "password" not in values.read_text().lower(), f"{values} mentions a password"


@then(parsers.parse('the error lists the config fields "{listing}"'))
def error_lists_config_fields(catalyst: ScenarioContext, listing: str) -> None:
    assert catalyst.last_response is not None
    problems = catalyst.last_response.json()["error"]["problems"]
    fields = {p["field"] for p in problems}
    missing = set(names(listing)) - fields
    assert not missing, f"the error does not name {sorted(missing)}; it names {sorted(fields)}"
