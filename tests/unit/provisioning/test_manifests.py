"""The initial Application repo (ARCHITECTURE.md §4, R-GIT-01, R-GIT-02, R-APP-03)."""

import yaml

from catalyst_sim.control.provisioning.manifests import (
    APP_REPO_FILES,
    AppManifestInput,
    render_app_repo,
    secret_fields,
)

SCHEMA = {
    "type": "object",
    "properties": {
        "domain": {"type": "string"},
        "adminPassword": {"type": "string", "x-catalyst-ui-hint": "password"},
        "smtp": {"type": "object", "properties": {"password": {"type": "string", "x-catalyst-ui-hint": "password"},
                                                   "host": {"type": "string"}}},
    },
}


def app(**overrides: object) -> AppManifestInput:
    fields: dict = dict(sovereign="omantel", organization="acme", app="marketing-site", blueprint="bp-wordpress",
                        version="1.3.0", config={"domain": "m.example", "adminPassword": "s3cret",
                                                 "smtp": {"password": "hunter2", "host": "mail"}},
                        config_schema=SCHEMA, depends_on=("marketing-site-postgres",),
                        dependencies={"db": "marketing-site-postgres"},
                        overlay_values={"small": {"replicas": 1}})
    fields.update(overrides)
    return AppManifestInput(**fields)


def test_the_repo_has_exactly_the_documented_layout() -> None:
    assert set(render_app_repo(app())) == set(APP_REPO_FILES)


def test_kustomization_pins_the_version_and_carries_depends_on() -> None:
    kustomization = yaml.safe_load(render_app_repo(app())["kustomization.yaml"])
    assert kustomization["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"
    assert kustomization["metadata"]["labels"]["openova.io/blueprint-version"] == "1.3.0"
    assert kustomization["spec"]["dependsOn"] == [{"name": "marketing-site-postgres"}]
    assert kustomization["spec"]["targetNamespace"] == "marketing-site"


def test_no_dependency_means_no_depends_on() -> None:
    kustomization = yaml.safe_load(render_app_repo(app(depends_on=(), dependencies={}))["kustomization.yaml"])
    assert "dependsOn" not in kustomization["spec"]


def test_password_fields_never_reach_values_and_become_external_secret_keys() -> None:
    files = render_app_repo(app())
    text = "".join(files.values())
    assert "s3cret" not in text and "hunter2" not in text
    values = yaml.safe_load(files["values.yaml"])
    assert values["config"] == {"domain": "m.example", "smtp": {"host": "mail"}}
    external = yaml.safe_load(files["secrets/external-secrets.yaml"])
    assert external["kind"] == "ExternalSecret"
    keys = {item["remoteRef"]["property"] for item in external["spec"]["data"]}
    assert keys == {"adminPassword", "smtp.password"}
    assert all(item["remoteRef"]["key"].startswith("org/acme/env/${ENV_TYPE}/") for item in external["spec"]["data"])


def test_dependencies_are_exposed_by_alias() -> None:
    values = yaml.safe_load(render_app_repo(app())["values.yaml"])
    assert values["dependencies"] == {"db": {"application": "marketing-site-postgres",
                                             "connectionSecret": "marketing-site-postgres-connection"}}


def test_overlays_carry_the_env_type_and_the_size_values() -> None:
    files = render_app_repo(app())
    for env_type in ("dev", "stg", "prod"):
        overlay = yaml.safe_load(files[f"overlays/{env_type}/values.yaml"])
        assert overlay == {"environment": {"type": env_type}, "replicas": 1}


def test_codeowners_names_the_org_team() -> None:
    assert "* @acme/owners" in render_app_repo(app())["CODEOWNERS"]


def test_secret_fields_walks_nested_objects() -> None:
    assert secret_fields(SCHEMA) == ["adminPassword", "smtp.password"]
