"""The Catalyst kinds (R-SOV, R-ORG, R-ENV, R-APP, R-EP) in catalyst_sim.model.resources."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from catalyst_sim.model import KINDS, problems_from_validation
from catalyst_sim.model.base import CatalystError, Problem
from catalyst_sim.model.resources import (
    Application,
    ChangeWindowRule,
    Environment,
    EnvironmentPlacement,
    EnvironmentPolicy,
    Organization,
    PrRequiredRule,
    ReScoreGateRule,
    SoakRule,
    Sovereign,
    UiDefaults,
    format_go_duration,
    parse_go_duration,
    problems_for_application_placement,
    problems_for_environment_placement,
    problems_for_policy_file,
    problems_for_update,
)


def problems(cls: type, doc: dict[str, Any]) -> list[Problem]:
    with pytest.raises(ValidationError) as err:
        cls.model_validate(doc)
    return problems_from_validation(err.value)


def only(cls: type, doc: dict[str, Any]) -> Problem:
    found = problems(cls, doc)
    assert len(found) == 1, found
    return found[0]


def test_all_kinds_registered() -> None:
    for kind in ("Sovereign", "Organization", "Environment", "Application", "EnvironmentPolicy"):
        assert KINDS[kind].__name__ == kind


@pytest.mark.parametrize("cls", [Sovereign, Organization, Environment, Application, EnvironmentPolicy])
def test_api_version_is_exact(
    cls: type,
    sovereign_doc: dict,
    organization_doc: dict,
    environment_doc: dict,
    application_doc: dict,
    policy_doc: dict,
) -> None:
    doc = {
        Sovereign: sovereign_doc,
        Organization: organization_doc,
        Environment: environment_doc,
        Application: application_doc,
        EnvironmentPolicy: policy_doc,
    }[cls]
    cls.model_validate(doc)
    doc["apiVersion"] = "catalyst.openova.io/v1"
    problem = only(cls, doc)
    assert problem.field == "apiVersion" and "catalyst.openova.io/v1alpha1" in problem.message


# ------------------------------------------------------------------------------------------------
# Sovereign (R-SOV-01..04)


def test_sovereign_valid(sovereign_doc: dict) -> None:
    sov = Sovereign.model_validate(sovereign_doc)
    assert sov.ref() == "Sovereign/omantel"
    assert sov.spec.provider_code == "hz"
    assert sov.spec.timezone == "UTC"  # D-12 default
    assert sov.spec.tlsStrategy == "letsencrypt"
    assert sov.spec.sizing is not None and sov.spec.sizing.controlPlaneNodes == 3
    assert sov.spec.host_clusters("prod") == [
        "hz-fsn-mgt-prod",
        "hz-fsn-rtz-prod",
        "hz-fsn-dmz-prod",
        "hz-hel-mgt-prod",
        "hz-hel-rtz-prod",
    ]
    assert sov.spec.location_code("fsn") == "hfmp"


@pytest.mark.parametrize(
    ("mutate", "field", "fragment"),
    [
        (lambda s: s["metadata"].update(name="ab"), "metadata.name", "R-NAME-06"),
        (lambda s: s["metadata"].update(namespace="x"), "metadata.namespace", "cluster-scoped"),
        (lambda s: s["spec"].update(domain="not a domain"), "spec.domain", "fully-qualified"),
        (lambda s: s["spec"].update(domainMode="dns"), "spec.domainMode", "pool"),
        (lambda s: s["spec"].update(registrar="dynadot"), "spec.registrar", "only with domainMode byo-api"),
        (lambda s: s["spec"].update(domainMode="byo-api"), "spec.registrar", "needs a registrar"),
        (lambda s: s["spec"].update(provider="contabo"), "spec.provider", "hetzner"),
        (lambda s: s["spec"].update(regions=[]), "spec.regions", "at least 1"),
        (
            lambda s: s["spec"]["regions"][1].update(buildingBlocks=["rtz", "dmz"]),
            "spec.regions[1].buildingBlocks",
            "missing mgt",
        ),
        (
            lambda s: s["spec"]["regions"][0].update(buildingBlocks=["mgt", "rtz", "rtz"]),
            "spec.regions[0].buildingBlocks[2]",
            "duplicate",
        ),
        (
            lambda s: s["spec"]["regions"][1].update(region="fra"),
            "spec.regions[1].region",
            "unknown region 'fra' for provider 'hz'",
        ),
        (lambda s: s["spec"]["regions"][1].update(region="fsn"), "spec.regions[1]", "duplicate region"),
        (lambda s: s["spec"].update(keycloakTopology="per-org"), "spec.keycloakTopology", "per-organization"),
        (lambda s: s["spec"].update(timezone="Mars/Olympus"), "spec.timezone", "unknown timezone"),
        (
            lambda s: s["spec"]["sizing"].update(workerCount=7),
            "spec.sizing.workerCount",
            "within autoscaler min 2",
        ),
        (lambda s: s["spec"]["sizing"].update(workerCount=1), "spec.sizing.workerCount", "within autoscaler"),
        (
            lambda s: s["spec"]["sizing"]["autoscaler"].update(min=9),
            "spec.sizing.autoscaler.min",
            "greater than max",
        ),
        (lambda s: s["spec"]["sizing"].update(workerSize=""), "spec.sizing.workerSize", "at least 1"),
        (lambda s: s["spec"].update(colour="blue"), "spec.colour", "unknown field"),
    ],
)
def test_sovereign_rejected(sovereign_doc: dict, mutate: Any, field: str, fragment: str) -> None:
    mutate(sovereign_doc)
    problem = only(Sovereign, sovereign_doc)
    assert problem.field == field
    assert fragment in problem.message


def test_sovereign_byo_api_with_registrar_and_timezone(sovereign_doc: dict) -> None:
    sovereign_doc["spec"].update(domainMode="byo-api", registrar="cloudflare", timezone="Asia/Muscat")
    assert Sovereign.model_validate(sovereign_doc).spec.timezone == "Asia/Muscat"


def test_sovereign_on_a_provider_without_region_table(sovereign_doc: dict) -> None:
    sovereign_doc["spec"]["provider"] = "aws"
    found = problems(Sovereign, sovereign_doc)
    assert {p.field for p in found} == {"spec.regions[0].region", "spec.regions[1].region"}
    assert "extended only by PR" in found[0].message


def test_sovereign_ui_defaults_follow_keycloak_topology(sovereign_doc: dict) -> None:
    sme = Sovereign.model_validate(sovereign_doc).spec.effective_ui_defaults
    assert sme.consoleDepth == "form" and sme.git == "off" and sme.kubectl == "off"
    sovereign_doc["spec"]["keycloakTopology"] = "shared-sovereign"
    corp = Sovereign.model_validate(sovereign_doc).spec.effective_ui_defaults
    assert corp.consoleDepth == "advanced" and corp.iacEditor and corp.promotionFeatures == "always"
    sovereign_doc["spec"]["uiDefaults"] = UiDefaults.for_topology("shared-sovereign").model_dump() | {
        "git": "off"
    }
    assert Sovereign.model_validate(sovereign_doc).spec.effective_ui_defaults.git == "off"


def test_sovereign_sizing_without_autoscaler(sovereign_doc: dict) -> None:
    del sovereign_doc["spec"]["sizing"]["autoscaler"]
    sovereign_doc["spec"]["sizing"]["haEnabled"] = False
    sizing = Sovereign.model_validate(sovereign_doc).spec.sizing
    assert sizing is not None and sizing.controlPlaneNodes == 1


# ------------------------------------------------------------------------------------------------
# Organization (R-ORG-01)


def test_organization_valid(organization_doc: dict) -> None:
    org = Organization.model_validate(organization_doc)
    assert org.metadata.labels == {"tier": "regulated"}
    assert org.spec.plan == "business"


@pytest.mark.parametrize(
    ("mutate", "field", "fragment"),
    [
        (lambda o: o["metadata"].update(name="system"), "metadata.name", "reserved"),
        (lambda o: o["metadata"].update(name="kube-x"), "metadata.name", "reserved"),
        (lambda o: o["metadata"].update(name="Acme"), "metadata.name", "did you mean 'acme'"),
        (
            lambda o: o["metadata"]["labels"].update({"tier": "not valid!"}),
            "metadata.labels.tier",
            "label value",
        ),
        (lambda o: o["spec"].pop("contact"), "spec.contact", "Field required"),
        (lambda o: o["spec"].update(plan=""), "spec.plan", "at least 1"),
        (lambda o: o["spec"].update(domain="acme"), "spec.domain", "fully-qualified"),
    ],
)
def test_organization_rejected(organization_doc: dict, mutate: Any, field: str, fragment: str) -> None:
    mutate(organization_doc)
    problem = only(Organization, organization_doc)
    assert problem.field == field and fragment in problem.message


# ------------------------------------------------------------------------------------------------
# Environment (R-ENV-01, R-NAME-07)


def test_environment_valid(environment_doc: dict) -> None:
    env = Environment.model_validate(environment_doc)
    assert (env.organization, env.env_type, env.branch) == ("acme", "prod", "main")
    assert [hc.name for hc in env.host_clusters("hetzner")] == [
        "hz-fsn-rtz-prod",
        "hz-fsn-dmz-prod",
        "hz-hel-rtz-prod",
    ]
    assert env.vcluster_contexts("hz")[0] == "hz-fsn-rtz-prod-acme"


def test_environment_name_must_match_spec(environment_doc: dict) -> None:
    environment_doc["spec"]["envType"] = "stg"
    problem = only(Environment, environment_doc)
    assert problem.field == "metadata.name"
    assert "'acme-stg'" in problem.message and "R-NAME-07" in problem.message


def test_environment_name_mismatch_reported_with_field_errors(environment_doc: dict) -> None:
    environment_doc["spec"]["envType"] = "dev"
    environment_doc["spec"]["placement"]["regions"][0]["region"] = "mars"
    fields = {p.field for p in problems(Environment, environment_doc)}
    assert fields == {"metadata.name", "spec.placement.regions[0].region"}


@pytest.mark.parametrize(
    ("mutate", "field", "fragment"),
    [
        (lambda e: e["metadata"].update(name="acme-dr"), "metadata.name", "'{org}-{env_type}'"),
        (lambda e: e["spec"].update(envType="dr"), "spec.envType", "'prod'"),
        (lambda e: e["spec"].update(organization="ab"), "spec.organization", "R-NAME-05"),
        (lambda e: e["spec"]["placement"].update(regions=[]), "spec.placement.regions", "at least 1"),
        (
            lambda e: e["spec"]["placement"]["regions"][1].update(region="fsn"),
            "spec.placement.regions[1].region",
            "duplicate region",
        ),
        (
            lambda e: e["spec"]["placement"]["regions"][0].update(buildingBlocks=["edge"]),
            "spec.placement.regions[0].buildingBlocks[0]",
            "'rtz'",
        ),
    ],
)
def test_environment_rejected(environment_doc: dict, mutate: Any, field: str, fragment: str) -> None:
    mutate(environment_doc)
    found = problems(Environment, environment_doc)
    assert any(p.field == field and fragment in p.message for p in found), found


def test_environment_status_names_its_vclusters(environment_doc: dict) -> None:
    environment_doc["status"] = {
        "ready": True,
        "vclusters": [{"hostCluster": "hz-fsn-rtz-prod", "vcluster": "acme", "ready": True}],
    }
    assert Environment.model_validate(environment_doc).status.ready  # type: ignore[union-attr]
    environment_doc["status"]["vclusters"].append({"hostCluster": "hz-hel-rtz-stg", "vcluster": "other"})
    found = problems(Environment, environment_doc)
    assert {p.field for p in found} == {"status.vclusters[1].vcluster", "status.vclusters[1].hostCluster"}
    environment_doc["status"]["vclusters"][1]["hostCluster"] = "hz-hel-rtz-primary"
    assert only(Environment, environment_doc).field == "status.vclusters[1].hostCluster"


# ------------------------------------------------------------------------------------------------
# Application (R-APP-01, D-05, D-02)


def test_application_defaults(application_doc: dict) -> None:
    app = Application.model_validate(application_doc)
    assert app.metadata.namespace == "acme-prod"  # namespaced by its Environment
    assert app.spec.overlay == "small"
    assert app.spec.healthCheck.path == "/healthz"
    assert app.spec.placement.mode == "single-region" and app.spec.placement.regions == []
    assert app.spec.paused is False
    assert (app.organization, app.repo, app.branch) == ("acme", "acme/marketing-site", "main")
    assert app.ref() == "Application/acme-prod/marketing-site"


def test_application_defaults_are_not_shared() -> None:
    spec = {"environment": "acme-dev", "blueprint": {"name": "bp-wordpress", "version": "1.0.0"}}
    a = Application.model_validate({"metadata": {"name": "a"}, "spec": copy.deepcopy(spec)})
    b = Application.model_validate({"metadata": {"name": "b"}, "spec": copy.deepcopy(spec)})
    a.spec.placement.regions.append("fsn")
    assert b.spec.placement.regions == []


@pytest.mark.parametrize(
    ("mutate", "field", "fragment"),
    [
        (lambda a: a["metadata"].update(name="shared-blueprints"), "metadata.name", "reserved"),
        (lambda a: a["metadata"].update(name="Marketing"), "metadata.name", "DNS-1123"),
        (lambda a: a["metadata"].update(namespace="acme-dev"), "metadata.namespace", "expected 'acme-prod'"),
        (lambda a: a["spec"].update(environment="acme"), "spec.environment", "R-NAME-07"),
        (lambda a: a["spec"]["blueprint"].update(name="wordpress"), "spec.blueprint.name", "bp-<folder>"),
        (lambda a: a["spec"]["blueprint"].update(version="^1.3"), "spec.blueprint.version", "SemVer"),
        (lambda a: a["spec"].update(overlay="huge"), "spec.overlay", "'small'"),
        (
            lambda a: a["spec"].update(placement={"mode": "active-active", "regions": ["fsn"]}),
            "spec.placement.regions",
            "at least 2 regions",
        ),
        (
            lambda a: a["spec"].update(placement={"mode": "single-region", "regions": ["fsn", "hel"]}),
            "spec.placement.regions",
            "at most one region",
        ),
        (
            lambda a: a["spec"].update(placement={"mode": "weighted-canary", "regions": ["fsn", "hel"]}),
            "spec.placement.mode",
            "'single-region'",
        ),
        (
            lambda a: a["spec"].update(placement={"mode": "active-active", "regions": ["fsn", "moon"]}),
            "spec.placement.regions[1]",
            "unknown region code",
        ),
        (lambda a: a["spec"].update(bindings={"1db": "pg"}), "spec.bindings.1db", "binding alias"),
        (lambda a: a["spec"].update(bindings={"db": "Shared_PG"}), "spec.bindings.db", "DNS-1123"),
        (lambda a: a["spec"].update(bindings={"self": "marketing-site"}), "spec.bindings.self", "itself"),
        (lambda a: a["spec"].update(healthCheck={"path": "healthz"}), "spec.healthCheck.path", "'/healthz'"),
        (lambda a: a["spec"].update(paused="maybe"), "spec.paused", "boolean"),
        (lambda a: a["spec"].update(config=[1]), "spec.config", "dictionary"),
    ],
)
def test_application_rejected(application_doc: dict, mutate: Any, field: str, fragment: str) -> None:
    mutate(application_doc)
    problem = only(Application, application_doc)
    assert problem.field == field and fragment in problem.message


def test_application_multi_region(application_doc: dict) -> None:
    application_doc["spec"]["placement"] = {"mode": "active-hotstandby", "regions": ["fsn", "hel"]}
    application_doc["spec"]["overlay"] = "large"
    application_doc["spec"]["healthCheck"] = {"path": "/ready"}
    app = Application.model_validate(application_doc)
    assert app.spec.placement.regions == ["fsn", "hel"] and app.spec.healthCheck.path == "/ready"


# ------------------------------------------------------------------------------------------------
# EnvironmentPolicy (R-EP-01, R-EP-04, R-NAME-15)


def test_golden_policy(policy_doc: dict) -> None:
    policy = EnvironmentPolicy.model_validate(policy_doc)
    pr, score, soak, window = policy.spec.rules
    assert isinstance(pr, PrRequiredRule) and pr.approvers == ["team-platform", "team-security"]
    assert pr.minApprovals == 2
    assert isinstance(score, ReScoreGateRule) and score.minScore == 80 and score.blocks
    assert isinstance(soak, SoakRule) and soak.sourceEnvironment == "acme-stg"
    assert soak.duration == timedelta(hours=72)
    assert isinstance(window, ChangeWindowRule) and window.duration == timedelta(hours=2)
    assert policy.environment == ("acme", "prod")
    assert policy.file_path == "system/catalyst-config/policies/acme-prod-policy.yaml"
    assert policy.rules_of(SoakRule) == [soak]


def test_policy_namespace_defaults_to_catalyst_system(policy_doc: dict) -> None:
    del policy_doc["metadata"]["namespace"]
    assert EnvironmentPolicy.model_validate(policy_doc).metadata.namespace == "catalyst-system"
    policy_doc["metadata"]["namespace"] = "acme"
    assert only(EnvironmentPolicy, policy_doc).field == "metadata.namespace"


def test_warning_severity_does_not_block(policy_doc: dict) -> None:
    policy_doc["spec"]["rules"][1]["severity"] = "warning"
    rule = EnvironmentPolicy.model_validate(policy_doc).spec.rules[1]
    assert isinstance(rule, ReScoreGateRule) and not rule.blocks


@pytest.mark.parametrize(
    ("mutate", "field", "fragment"),
    [
        (lambda p: p["metadata"].update(name="acme-prod"), "metadata.name", "'{org}-{env_type}-policy'"),
        (lambda p: p["metadata"].update(name="acme-stg-policy"), "spec.appliesTo.environments", "'acme-stg'"),
        (
            lambda p: p["spec"]["appliesTo"].update(environments=[]),
            "spec.appliesTo.environments",
            "at least 1",
        ),
        (
            lambda p: p["spec"]["appliesTo"].update(environments=["acme-prod", "acme"]),
            "spec.appliesTo.environments[1]",
            "R-NAME-07",
        ),
        (
            lambda p: p["spec"]["appliesTo"].update(environments=["acme-prod", "other-prod"]),
            "spec.appliesTo.environments[1]",
            "another Organization",
        ),
        (
            lambda p: p["spec"]["rules"][1].update(kind="approval-gate"),
            "spec.rules[1].kind",
            "unknown rule kind 'approval-gate'",
        ),
        (lambda p: p["spec"]["rules"][1].pop("kind"), "spec.rules[1].kind", "missing rule kind"),
        (lambda p: p["spec"]["rules"].append("soak"), "spec.rules[4]", "mapping"),
        (
            lambda p: p["spec"]["rules"][0].update(minApprovals=0),
            "spec.rules[0].minApprovals",
            "greater than or equal",
        ),
        (lambda p: p["spec"]["rules"][0].update(approvers=[]), "spec.rules[0].approvers", "at least 1"),
        (
            lambda p: p["spec"]["rules"][0].update(approvers=["Team Platform"]),
            "spec.rules[0].approvers[0]",
            "approver team",
        ),
        (
            lambda p: p["spec"]["rules"][1].update(minScore=101),
            "spec.rules[1].minScore",
            "less than or equal to 100",
        ),
        (
            lambda p: p["spec"]["rules"][1].update(minScore=-1),
            "spec.rules[1].minScore",
            "greater than or equal",
        ),
        (lambda p: p["spec"]["rules"][1].update(severity="fatal"), "spec.rules[1].severity", "'blocking'"),
        (
            lambda p: p["spec"]["rules"][2].update(duration="-72h"),
            "spec.rules[2].duration",
            "must not be negative",
        ),
        (
            lambda p: p["spec"]["rules"][2].update(duration="3d"),
            "spec.rules[2].duration",
            "not a Go duration",
        ),
        (lambda p: p["spec"]["rules"][2].update(duration=72), "spec.rules[2].duration", "Go duration string"),
        (lambda p: p["spec"]["rules"][2].update(duration="0s"), "spec.rules[2].duration", "greater than 0"),
        (
            lambda p: p["spec"]["rules"][2].update(sourceEnvironment="acme-prod"),
            "spec.rules[2].sourceEnvironment",
            "destination",
        ),
        (
            lambda p: p["spec"]["rules"][2].update(sourceEnvironment="other-stg"),
            "spec.rules[2].sourceEnvironment",
            "another Organization",
        ),
        (lambda p: p["spec"]["rules"][3].update(cron="0 14 * * 2,4 *"), "spec.rules[3].cron", "exactly 5"),
        (lambda p: p["spec"]["rules"][3].update(cron="61 14 * * *"), "spec.rules[3].cron", "not a valid"),
        (lambda p: p["spec"]["rules"][3].update(cron="@daily"), "spec.rules[3].cron", "exactly 5"),
        (
            lambda p: p["spec"]["rules"][3].update(duration="2h", extra=True),
            "spec.rules[3].extra",
            "unknown field",
        ),
    ],
)
def test_policy_rejected(policy_doc: dict, mutate: Any, field: str, fragment: str) -> None:
    mutate(policy_doc)
    problem = only(EnvironmentPolicy, policy_doc)
    assert problem.field == field and fragment in problem.message


def test_policy_rule_kind_error_is_reported_with_other_rule_errors(policy_doc: dict) -> None:
    policy_doc["spec"]["rules"][0]["kind"] = "recording-required"
    policy_doc["spec"]["rules"][3]["duration"] = "soon"
    found = problems(EnvironmentPolicy, policy_doc)
    assert [p.field for p in found] == ["spec.rules[0].kind", "spec.rules[3].duration"]
    assert "out of scope" in found[0].message


def test_policy_without_rules_is_valid(policy_doc: dict) -> None:
    policy_doc["spec"]["rules"] = []
    assert EnvironmentPolicy.model_validate(policy_doc).spec.rules == []


# ------------------------------------------------------------------------------------------------
# Go durations and change windows


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("72h", timedelta(hours=72)),
        ("2h", timedelta(hours=2)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("10m", timedelta(minutes=10)),
        ("1.5h", timedelta(minutes=90)),
        ("90s", timedelta(seconds=90)),
        ("500ms", timedelta(milliseconds=500)),
        ("1h0m30s", timedelta(hours=1, seconds=30)),
        ("2us", timedelta(microseconds=2)),
        ("3\u00b5s", timedelta(microseconds=3)),
        ("0", timedelta(0)),
        ("+5m", timedelta(minutes=5)),
        (".5s", timedelta(milliseconds=500)),
        ("1000ns", timedelta(microseconds=1)),
    ],
)
def test_parse_go_duration(text: str, expected: timedelta) -> None:
    assert parse_go_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("-1h", "negative"),
        ("3d", "not a Go duration"),
        ("72", "not a Go duration"),
        ("", "not a Go duration"),
        ("h", "not a Go duration"),
        ("1h-30m", "not a Go duration"),
        ("1 h", "not a Go duration"),
        ("1ns", "finer than one microsecond"),
        ("9999999h", "out of range"),
    ],
)
def test_parse_go_duration_rejects(text: str, fragment: str) -> None:
    with pytest.raises(CatalystError) as err:
        parse_go_duration(text, field="spec.rules[2].duration")
    assert err.value.problems[0].field == "spec.rules[2].duration"
    assert fragment in err.value.problems[0].message


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(hours=72), "72h"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(minutes=10), "10m"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(milliseconds=500), "500ms"),
        (timedelta(microseconds=7), "7us"),
        (timedelta(seconds=1, milliseconds=500), "1.5s"),
        (timedelta(0), "0s"),
        (timedelta(hours=1, seconds=5), "1h5s"),
    ],
)
def test_format_go_duration_round_trips(value: timedelta, text: str) -> None:
    assert format_go_duration(value) == text
    assert parse_go_duration(text) == value


def test_format_go_duration_refuses_negative() -> None:
    with pytest.raises(ValueError):
        format_go_duration(timedelta(seconds=-1))


WINDOW = ChangeWindowRule(kind="change-window", cron="0 14 * * 2,4", duration="2h")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("at", "is_open"),
    [
        (datetime(2026, 11, 24, 14, 0, tzinfo=UTC), True),  # Tuesday 14:00 - start is inclusive
        (datetime(2026, 11, 24, 15, 59, 59, tzinfo=UTC), True),
        (datetime(2026, 11, 24, 16, 0, tzinfo=UTC), False),  # end is exclusive (D-12)
        (datetime(2026, 11, 24, 13, 59, tzinfo=UTC), False),
        (datetime(2026, 11, 25, 14, 30, tzinfo=UTC), False),  # Wednesday
        (datetime(2026, 11, 26, 15, 0, tzinfo=UTC), True),  # Thursday
    ],
)
def test_change_window_in_utc(at: datetime, is_open: bool) -> None:
    assert WINDOW.is_open(at) is is_open


def test_change_window_uses_the_given_timezone() -> None:
    at = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)  # 14:30 in Muscat (UTC+4)
    assert WINDOW.is_open(at, "Asia/Muscat")
    assert not WINDOW.is_open(at, "UTC")
    start, end = WINDOW.open_window(at, "Asia/Muscat")  # type: ignore[misc]
    assert start.hour == 14 and end - start == timedelta(hours=2)
    with pytest.raises(ValueError):
        WINDOW.is_open(datetime(2026, 11, 24, 14, 0))


def test_duration_accepts_timedelta_in_python() -> None:
    rule = SoakRule(kind="soak", sourceEnvironment="acme-stg", duration=timedelta(hours=1))
    assert rule.model_dump(mode="json")["duration"] == "1h"
    with pytest.raises(ValidationError):
        SoakRule(kind="soak", sourceEnvironment="acme-stg", duration=timedelta(hours=-1))


# ------------------------------------------------------------------------------------------------
# Cross-object checks


def test_environment_placement_against_sovereign(sovereign_doc: dict, environment_doc: dict) -> None:
    sov = Sovereign.model_validate(sovereign_doc)
    env = Environment.model_validate(environment_doc)
    assert problems_for_environment_placement(env, sov) == []
    environment_doc["spec"]["placement"]["regions"][1]["buildingBlocks"] = ["dmz"]  # hel has no dmz
    environment_doc["spec"]["placement"]["regions"].append({"region": "nbg", "buildingBlocks": ["rtz"]})
    found = problems_for_environment_placement(Environment.model_validate(environment_doc), sov)
    assert [p.field for p in found] == [
        "spec.placement.regions[1].buildingBlocks[0]",
        "spec.placement.regions[2].region",
    ]
    assert found[0].object == "Environment/acme-prod"


def test_application_placement_against_environment(application_doc: dict, environment_doc: dict) -> None:
    env = Environment.model_validate(environment_doc)
    application_doc["spec"]["placement"] = {"mode": "active-active", "regions": ["fsn", "nbg"]}
    found = problems_for_application_placement(Application.model_validate(application_doc), env)
    assert [p.field for p in found] == ["spec.placement.regions[1]"]
    assert "acme-prod" in found[0].message


def test_policy_file_name(policy_doc: dict) -> None:
    policy = EnvironmentPolicy.model_validate(policy_doc)
    assert problems_for_policy_file(policy, "system/catalyst-config/policies/acme-prod-policy.yaml") == []
    found = problems_for_policy_file(policy, "policies/acme-policy.yaml")
    assert found[0].field == "metadata.name" and "acme-prod-policy.yaml" in found[0].message


def test_immutable_fields(sovereign_doc: dict, environment_doc: dict) -> None:
    old = Sovereign.model_validate(sovereign_doc)
    sovereign_doc["spec"]["keycloakTopology"] = "shared-sovereign"
    found = problems_for_update(old, Sovereign.model_validate(sovereign_doc))
    assert [p.field for p in found] == ["spec.keycloakTopology"]  # R-SOV-02
    sovereign_doc["spec"]["keycloakTopology"] = "per-organization"
    sovereign_doc["spec"]["timezone"] = "Asia/Muscat"
    assert problems_for_update(old, Sovereign.model_validate(sovereign_doc)) == []
    env = Environment.model_validate(environment_doc)
    environment_doc["metadata"]["name"] = "acme-dev"
    environment_doc["spec"]["envType"] = "dev"
    renamed = problems_for_update(env, Environment.model_validate(environment_doc))
    assert renamed[0].field == "metadata.name" and "immutable" in renamed[0].message


def test_validate_assignment_keeps_rules(environment_doc: dict) -> None:
    env = Environment.model_validate(environment_doc)
    with pytest.raises(ValidationError):
        env.spec.envType = "dr"  # type: ignore[assignment]


def test_default_environment_placement(sovereign_doc: dict) -> None:
    placement = EnvironmentPlacement.default_for(Sovereign.model_validate(sovereign_doc))
    assert [(r.region, r.buildingBlocks) for r in placement.regions] == [("fsn", ["rtz"])]
    with pytest.raises(ValidationError):
        EnvironmentPlacement()  # never implicit in a stored CR
