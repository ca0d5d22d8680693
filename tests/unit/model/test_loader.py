"""YAML loading and dumping (catalyst_sim.model.loader): errors name file, line, object and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from catalyst_sim.model import (
    Application,
    CatalystError,
    Environment,
    EnvironmentPolicy,
    Organization,
    Problem,
    Sovereign,
    dump_yaml,
    load_file,
    load_one,
    load_paths,
    load_text,
    parse_object,
    to_document,
    yaml_files,
)

GOLDEN_POLICY = """\
apiVersion: catalyst.openova.io/v1alpha1
kind: EnvironmentPolicy
metadata:
  name: acme-prod-policy
  namespace: catalyst-system
spec:
  appliesTo:
    environments: [acme-prod]
  rules:
    - kind: pr-required
      approvers: [team-platform, team-security]
      minApprovals: 2
    - kind: re-score-gate
      minScore: 80
      severity: blocking
    - kind: soak
      sourceEnvironment: acme-stg
      duration: 72h
    - kind: change-window
      cron: "0 14 * * 2,4"
      duration: 2h
"""

ORG_AND_ENV = """\
apiVersion: catalyst.openova.io/v1alpha1
kind: Organization
metadata:
  name: acme
spec:
  contact: ops@acme.example
  plan: business
---
apiVersion: catalyst.openova.io/v1alpha1
kind: Environment
metadata:
  name: acme-prod
spec:
  organization: acme
  envType: prod
  placement:
    regions:
      - region: fsn
        buildingBlocks: [rtz]
---
"""


def error_of(text: str, source: str = "fixtures/x.yaml") -> CatalystError:
    with pytest.raises(CatalystError) as err:
        load_text(text, source)
    return err.value


def one_problem(text: str, source: str = "fixtures/x.yaml") -> Problem:
    problems = error_of(text, source).problems
    assert len(problems) == 1, problems
    return problems[0]


# ------------------------------------------------------------------------------------------------
# Loading


def test_multi_document_load_in_order() -> None:
    org, env = load_text(ORG_AND_ENV, "fixtures/acme.yaml")
    assert isinstance(org, Organization) and isinstance(env, Environment)
    assert env.spec.placement.regions[0].buildingBlocks == ["rtz"]


def test_golden_policy_loads_typed() -> None:
    policy = load_one(GOLDEN_POLICY, "policies/acme-prod-policy.yaml", expect=EnvironmentPolicy)
    assert policy.spec.rules[2].duration.total_seconds() == 72 * 3600  # type: ignore[union-attr]


def test_load_file_and_paths(tmp_path: Path) -> None:
    (tmp_path / "orgs").mkdir()
    (tmp_path / "orgs" / "acme.yaml").write_text(ORG_AND_ENV)
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "acme-prod-policy.yaml").write_text(GOLDEN_POLICY)
    (tmp_path / "README.md").write_text("not yaml")
    assert [p.name for p in yaml_files(tmp_path)] == ["acme.yaml", "acme-prod-policy.yaml"]
    assert [o.kind for o in load_file(tmp_path / "orgs" / "acme.yaml")] == ["Organization", "Environment"]
    assert [o.kind for o in load_paths(tmp_path)] == ["Organization", "Environment", "EnvironmentPolicy"]


def test_comments_only_and_empty_documents_load_nothing() -> None:
    assert load_text("# nothing here\n") == []
    assert load_text("---\n---\n") == []


def test_load_one_checks_count_and_kind() -> None:
    with pytest.raises(CatalystError, match="exactly one object, found 2"):
        load_one(ORG_AND_ENV)
    with pytest.raises(CatalystError, match="expected a Sovereign, found EnvironmentPolicy/acme-prod-policy"):
        load_one(GOLDEN_POLICY, expect=Sovereign)


def test_parse_object_for_api_bodies() -> None:
    body = yaml.safe_load(GOLDEN_POLICY)
    assert parse_object(body, expect=EnvironmentPolicy).name == "acme-prod-policy"
    body["spec"]["rules"][0]["minApprovals"] = "two"
    with pytest.raises(CatalystError) as err:
        parse_object(body, source="POST /v1/policies")
    problem = err.value.problems[0]
    assert (problem.source, problem.object, problem.field) == (
        "POST /v1/policies",
        "EnvironmentPolicy/acme-prod-policy",
        "spec.rules[0].minApprovals",
    )


# ------------------------------------------------------------------------------------------------
# Errors name file, line, object and field


def test_invalid_yaml_names_file_line_and_column() -> None:
    problem = one_problem(
        "apiVersion: catalyst.openova.io/v1alpha1\nkind: Organization\nmetadata: {name: acme\n",
        "fixtures/broken.yaml",
    )
    assert problem.source.startswith("fixtures/broken.yaml:")
    line, column = problem.source.split(":")[1:]
    assert int(line) == 4 and int(column) >= 1
    assert problem.message.startswith("invalid YAML")
    assert "fixtures/broken.yaml:4:" in str(problem)


def test_documents_before_a_syntax_error_are_still_checked() -> None:
    text = ORG_AND_ENV.replace("plan: business", "plan: business\n  colour: blue") + "kind: [unclosed\n"
    problems = error_of(text, "f.yaml").problems
    assert [(p.field, p.source) for p in problems] == [("spec.colour", "f.yaml:8"), ("", "f.yaml:23:1")]
    assert problems[1].object == "document 3"


def test_tab_indentation_error_has_a_line() -> None:
    problem = one_problem("kind: Organization\nmetadata:\n\tname: acme\n", "tabs.yaml")
    assert problem.source.startswith("tabs.yaml:3:")


def test_document_must_be_a_mapping() -> None:
    problem = one_problem("- just\n- a list\n", "list.yaml")
    assert problem.source == "list.yaml:1" and problem.object == "document 1"
    assert "must be a mapping" in problem.message and "list" in problem.message


@pytest.mark.parametrize(
    ("header", "field", "fragment"),
    [
        ("apiVersion: catalyst.openova.io/v1alpha1\n", "kind", "missing kind; expected one of"),
        ("apiVersion: catalyst.openova.io/v1alpha1\nkind: Gadget\n", "kind", "unknown kind 'Gadget'"),
        ("apiVersion: catalyst.openova.io/v1alpha1\nkind: 3\n", "kind", "must be a string"),
        ("kind: Organization\n", "apiVersion", "missing apiVersion"),
        ("apiVersion: v1\nkind: Organization\n", "apiVersion", "not in the catalyst.openova.io group"),
        (
            "apiVersion: catalyst.openova.io/v1\nkind: Organization\n",
            "apiVersion",
            "not supported for Organization",
        ),
    ],
)
def test_header_problems(header: str, field: str, fragment: str) -> None:
    text = header + "metadata:\n  name: acme\nspec:\n  contact: a\n  plan: b\n"
    problem = one_problem(text, "h.yaml")
    assert problem.field == field and fragment in problem.message
    assert problem.source.startswith("h.yaml:")


def test_known_kinds_are_listed() -> None:
    message = one_problem("apiVersion: catalyst.openova.io/v1alpha1\nkind: Tenant\n").message
    for kind in ("Application", "Environment", "EnvironmentPolicy", "Organization", "Sovereign"):
        assert kind in message


def test_field_errors_carry_their_own_line() -> None:
    text = GOLDEN_POLICY.replace("minScore: 80", "minScore: 800").replace("duration: 72h", "duration: 3d")
    problems = error_of(text, "policies/acme-prod-policy.yaml").problems
    assert [(p.source, p.object, p.field) for p in problems] == [
        ("policies/acme-prod-policy.yaml:14", "EnvironmentPolicy/acme-prod-policy", "spec.rules[1].minScore"),
        ("policies/acme-prod-policy.yaml:18", "EnvironmentPolicy/acme-prod-policy", "spec.rules[2].duration"),
    ]


def test_unknown_field_names_the_key_line() -> None:
    text = ORG_AND_ENV.replace("  envType: prod\n", "  envType: prod\n  envtype: prod\n")
    problem = one_problem(text, "f.yaml")
    assert (problem.field, problem.message, problem.source) == ("spec.envtype", "unknown field", "f.yaml:16")


def test_type_errors() -> None:
    text = ORG_AND_ENV.replace("buildingBlocks: [rtz]", "buildingBlocks: rtz")
    problem = one_problem(text)
    assert problem.field == "spec.placement.regions[0].buildingBlocks" and "list" in problem.message


def test_unknown_rule_kind_names_the_kind_field() -> None:
    problem = one_problem(GOLDEN_POLICY.replace("kind: soak", "kind: soaking"))
    assert problem.field == "spec.rules[2].kind" and problem.source == "fixtures/x.yaml:16"


def test_duplicate_keys_are_errors() -> None:
    text = ORG_AND_ENV.replace("  plan: business\n", "  plan: business\n  plan: free\n")
    problem = one_problem(text, "dup.yaml")
    assert problem.field == "spec.plan" and problem.source == "dup.yaml:8"
    assert "first defined on line 7" in problem.message


def test_duplicate_objects_are_errors() -> None:
    problem = one_problem(ORG_AND_ENV + ORG_AND_ENV.split("---")[0], "dup.yaml")
    assert problem.object == "Organization/acme" and "defined twice; first at dup.yaml:1" in problem.message
    assert problem.source == "dup.yaml:21"


def test_same_application_name_in_two_environments_is_fine() -> None:
    app = (
        "apiVersion: catalyst.openova.io/v1alpha1\nkind: Application\nmetadata:\n  name: blog\nspec:\n"
        "  environment: {env}\n  blueprint: {{name: bp-wordpress, version: 1.0.0}}\n"
    )
    dev, prod = load_text(app.format(env="acme-dev") + "---\n" + app.format(env="acme-prod"))
    assert isinstance(dev, Application) and (dev.metadata.namespace, prod.metadata.namespace) == (
        "acme-dev",
        "acme-prod",
    )
    problem = one_problem(app.format(env="acme-dev") + "---\n" + app.format(env="acme-dev"))
    assert problem.object == "Application/acme-dev/blog"


def test_all_problems_across_documents_are_collected() -> None:
    text = "\n---\n".join(
        [
            "apiVersion: catalyst.openova.io/v1alpha1\nkind: Organization\nmetadata: {name: Acme}\n"
            "spec: {contact: a, plan: b}",
            "apiVersion: catalyst.openova.io/v1alpha1\nkind: Environment\nmetadata: {name: acme-prod}\n"
            "spec: {organization: acme, envType: dr,\n"
            "       placement: {regions: [{region: mars, buildingBlocks: [rtz]}]}}",
            "just a string",
        ]
    )
    err = error_of(text, "many.yaml")
    assert [(p.object, p.field) for p in err.problems] == [
        ("Organization/Acme", "metadata.name"),
        ("Environment/acme-prod", "spec.envType"),
        ("Environment/acme-prod", "spec.placement.regions[0].region"),
        ("document 3", ""),
    ]
    assert str(err).count("many.yaml:") == 4


def test_load_paths_collects_problems_of_every_file(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("kind: Nope\n")
    (tmp_path / "b.yml").write_text("[unclosed\n")
    with pytest.raises(CatalystError) as err:
        load_paths(tmp_path, tmp_path / "missing.yaml")
    sources = [p.source for p in err.value.problems]
    assert any(s.startswith(str(tmp_path / "missing.yaml")) for s in sources)
    assert any(s.startswith(f"{tmp_path / 'a.yaml'}:1") for s in sources)
    assert any(s.startswith(f"{tmp_path / 'b.yml'}:2") for s in sources)


def test_policy_file_name_must_match_object_name(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    path = tmp_path / "policies" / "acme-policy.yaml"
    path.write_text(GOLDEN_POLICY)
    with pytest.raises(CatalystError) as err:
        load_file(path)
    problem = err.value.problems[0]
    assert problem.field == "metadata.name" and problem.source == f"{path}:4"
    assert "'acme-prod-policy.yaml'" in problem.message
    assert load_text(GOLDEN_POLICY, "somewhere/else.yaml")  # only files under policies/ are checked


def test_unreadable_file_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(CatalystError) as err:
        load_file(tmp_path / "absent.yaml")
    assert err.value.problems[0].source == str(tmp_path / "absent.yaml")


# ------------------------------------------------------------------------------------------------
# Dumping


def test_dump_round_trips_golden_policy() -> None:
    policy = load_one(GOLDEN_POLICY)
    text = dump_yaml(policy)
    assert load_one(text) == policy
    assert dump_yaml(load_one(text)) == text  # stable
    assert list(yaml.safe_load(text)) == ["apiVersion", "kind", "metadata", "spec"]
    assert "duration: 72h" in text and "severity: blocking" in text


@pytest.mark.parametrize(
    "kind", ["Sovereign", "Organization", "Environment", "Application", "EnvironmentPolicy"]
)
def test_dump_round_trips_every_kind(
    kind: str,
    sovereign_doc: dict,
    organization_doc: dict,
    environment_doc: dict,
    application_doc: dict,
    policy_doc: dict,
) -> None:
    doc: dict[str, Any] = {
        "Sovereign": sovereign_doc,
        "Organization": organization_doc,
        "Environment": environment_doc,
        "Application": application_doc,
        "EnvironmentPolicy": policy_doc,
    }[kind]
    obj = parse_object(doc)
    again = load_one(dump_yaml(obj))
    assert again == obj and type(again) is type(obj)


def test_dump_of_python_built_object_is_minimal() -> None:
    org = Organization(metadata={"name": "acme"}, spec={"contact": "ops@acme.example", "plan": "free"})
    assert dump_yaml(org) == (
        "apiVersion: catalyst.openova.io/v1alpha1\nkind: Organization\nmetadata:\n  name: acme\n"
        "spec:\n  contact: ops@acme.example\n  plan: free\n"
    )
    app = Application(
        metadata={"name": "blog"},
        spec={"environment": "acme-dev", "blueprint": {"name": "bp-wordpress", "version": "1.0.0"}},
    )
    doc = to_document(app)
    assert doc["metadata"] == {"name": "blog", "namespace": "acme-dev"}
    assert "overlay" not in doc["spec"] and "paused" not in doc["spec"]  # defaults stay implicit
    assert load_one(dump_yaml(app)) == app


def test_dump_keeps_explicit_values_and_drops_none() -> None:
    doc = to_document(load_one(GOLDEN_POLICY))
    assert doc["spec"]["rules"][1]["severity"] == "blocking"  # explicit in the file, kept
    env = load_one(ORG_AND_ENV.split("---\n")[1])
    assert "status" not in to_document(env)


def test_dump_multiple_objects_and_multiline_strings() -> None:
    org, env = load_text(ORG_AND_ENV)
    org.spec.contact = "Ops team\nops@acme.example"
    text = dump_yaml([org, env])
    assert text.startswith("---\n") and text.count("---\n") == 2
    assert "contact: |-\n" in text
    assert [o.name for o in load_text(text)] == ["acme", "acme-prod"]


def test_dump_writes_values_changed_after_construction() -> None:
    app = Application(
        metadata={"name": "blog"},
        spec={"environment": "acme-dev", "blueprint": {"name": "bp-wordpress", "version": "1.0.0"}},
    )
    app.spec.placement.regions.append("fsn")  # in-place change of a defaulted block
    app.spec.overlay = "large"
    spec = to_document(app)["spec"]
    assert spec["placement"] == {"regions": ["fsn"]} and spec["overlay"] == "large"
    assert "healthCheck" not in spec
