"""Loading policies: valid ones by destination, broken ones kept with their problems and refused.

The broken files live in tests/data/policies-broken, one defect each, every one named for its own
Organization so each blocks exactly its Environment(s). A broken policy must never be waved through.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from catalyst_sim.backends.embedded.forge import EmbeddedForge
from catalyst_sim.clients.gitea import GiteaClient
from catalyst_sim.clock import VirtualClock
from catalyst_sim.control.config_store import ConfigStore
from catalyst_sim.control.policy import (
    ALL_ENVIRONMENTS,
    BLOCKED_POLICY_INVALID,
    POLICY_VALID,
    PolicySet,
    check_policy_file,
    evaluate_gates,
    load_policy_set,
    load_policy_set_from_dir,
    load_policy_set_from_gitea,
)

from .conftest import BROKEN, ENVIRONMENTS, FIXTURES, TEAMS, acme_prod, utc

BROKEN_ORGS = ("badyaml", "badcron", "badkind", "negsoak", "nosource", "bigquorum", "noteam", "feb30",
               "shortext", "misfiled", "stray")
BROKEN_ENVIRONMENTS = frozenset(f"{o}-{t}" for o in BROKEN_ORGS for t in ("dev", "stg", "uat", "prod")
                                if f"{o}-{t}" != "nosource-stg")
BROKEN_TEAMS = {o: {"team-platform": ["layla", "omar"], "team-security": ["omar", "rana"]} for o in BROKEN_ORGS}
NOW = utc("2026-12-01 14:30")


@pytest.fixture(scope="module")
def broken_set() -> PolicySet:
    return load_policy_set_from_dir(BROKEN, environments=BROKEN_ENVIRONMENTS, teams=BROKEN_TEAMS)


def test_our_fixture_policies_are_all_valid(policies: PolicySet) -> None:
    assert [(s.name, s.valid, s.environments) for s in policies.statuses] == [
        ("acme-prod-policy", True, ("acme-prod",)),
        ("acme-stg-policy", True, ("acme-stg",)),
        ("gulfbank-prod-policy", True, ("gulfbank-prod",)),
        ("muscatpharmacy-prod-policy", True, ("muscatpharmacy-prod",)),
    ]
    assert policies.broken == [] and policies.blocked_environments() == {}
    assert sorted(policies.valid) == ["acme-prod", "acme-stg", "gulfbank-prod", "muscatpharmacy-prod"]
    assert policies.for_environment("acme-dev").state == "no policy"


# file, field, words in the message, Environments the broken file blocks
BROKEN_CASES = [
    ("badyaml-prod-policy.yaml", "", "invalid YAML", ("badyaml-prod",)),
    ("badcron-prod-policy.yaml", "spec.rules[1].cron", "'0 25 * * 2' is not a valid 5-field cron", ("badcron-prod",)),
    ("badkind-prod-policy.yaml", "spec.rules[1].kind", "unknown rule kind 'recording-required'", ("badkind-prod",)),
    ("negsoak-prod-policy.yaml", "spec.rules[0].duration", "'-72h' must not be negative", ("negsoak-prod",)),
    ("nosource-prod-policy.yaml", "spec.rules[1].sourceEnvironment",
     "soak source Environment 'nosource-stg' does not exist", ("nosource-prod",)),
    ("bigquorum-prod-policy.yaml", "spec.rules[0].minApprovals",
     "minApprovals 5 exceeds the approver pool: team-platform, team-security have 3 distinct member(s)",
     ("bigquorum-prod",)),
    ("noteam-prod-policy.yaml", "spec.rules[0].approvers[1]",
     "approver team 'team-ghost' does not exist in Organization 'noteam'", ("noteam-prod",)),
    ("feb30-prod-policy.yaml", "spec.rules[0].cron", "'0 0 30 2 *' never fires", ("feb30-prod",)),
    ("shortext-prod-policy.yml", "", "rename 'shortext-prod-policy.yml' to 'shortext-prod-policy.yaml'",
     ("shortext-prod",)),
    ("misfiled-prod-policy.yaml", "metadata.name", "the file must be named 'misfiled-stg-policy.yaml'",
     ("misfiled-stg", "misfiled-prod")),
    ("stray-prod-policy.yaml", "spec.appliesTo.environments",
     "named after Environment 'stray-prod', which must be listed in appliesTo.environments",
     ("stray-uat", "stray-prod")),
]


@pytest.mark.parametrize(("file", "field", "words", "blocks"), BROKEN_CASES, ids=[c[0] for c in BROKEN_CASES])
def test_each_broken_policy_names_file_field_and_is_refused(broken_set: PolicySet, file: str, field: str,
                                                            words: str, blocks: tuple[str, ...]) -> None:
    (status,) = [s for s in broken_set.statuses if s.file.endswith(f"/{file}")]
    assert not status.valid and status.policy is None
    (problem,) = status.problems
    assert problem.field == field
    assert words in problem.message
    assert problem.source.startswith(str(BROKEN / file))
    assert problem.object == f"EnvironmentPolicy/{status.name}"
    assert status.environments == blocks
    for env in blocks:
        binding = broken_set.for_environment(env)
        assert binding.blocked and binding.state == BLOCKED_POLICY_INVALID
        report = evaluate_gates(binding, acme_prod(NOW, destination=env))
        assert not report.mergeable and not report.policy_valid
        assert report.status == BLOCKED_POLICY_INVALID
        (verdict,) = report.verdicts
        assert (verdict.kind, verdict.passed, verdict.blocking) == (POLICY_VALID, False, True)
        assert verdict.reason.startswith(f"{BLOCKED_POLICY_INVALID}: {problem.source}: {problem.object}")
        assert words in verdict.reason
        assert report.next_change is None  # waiting never fixes a broken policy
        assert report.problems == (problem,)


def test_broken_policies_block_only_their_own_environments(broken_set: PolicySet) -> None:
    assert len(broken_set.broken) == len(BROKEN_CASES) and broken_set.valid == {}
    assert broken_set.for_environment("badcron-stg").state == "no policy"
    assert evaluate_gates(broken_set, acme_prod(NOW, destination="badcron-stg", reviews=[])).mergeable


def test_problems_carry_line_numbers_for_the_api(broken_set: PolicySet) -> None:
    status = broken_set.status("bigquorum-prod-policy")
    assert status is not None
    assert status.problems[0].source.endswith("bigquorum-prod-policy.yaml:13")
    shown = status.as_dict()
    assert shown["valid"] is False and shown["environments"] == ["bigquorum-prod"]
    assert shown["problems"][0]["field"] == "spec.rules[0].minApprovals"


def test_a_broken_policy_blocks_even_with_a_valid_one_beside_it(policies: PolicySet) -> None:
    good = (FIXTURES / "acme-prod-policy.yaml").read_text()
    extra = good.replace("acme-prod-policy", "acme-uat-policy").replace("- acme-prod", "- acme-prod\n      - acme-uat")
    extra = extra.replace('"0 14 * * 2,4"', '"0 14 * * 9"')
    both = load_policy_set({"policies/acme-prod-policy.yaml": good, "policies/acme-uat-policy.yaml": extra},
                           environments=ENVIRONMENTS, teams=TEAMS)
    binding = both.for_environment("acme-prod")
    assert [p.metadata.name for p in binding.policies] == ["acme-prod-policy"]
    assert [s.name for s in binding.broken] == ["acme-uat-policy"]
    assert not evaluate_gates(binding, acme_prod(NOW)).mergeable


def test_unattributable_broken_file_blocks_every_environment() -> None:
    """No Environment can be derived from 'notes.yaml' holding bad YAML: fail closed everywhere."""
    good = (FIXTURES / "acme-prod-policy.yaml").read_text()
    loaded = load_policy_set({"policies/notes.yaml": "rules: [", "policies/acme-prod-policy.yaml": good})
    (broken,) = loaded.broken
    assert broken.environments == () and broken.name == "notes"
    assert loaded.blocked_environments() == {ALL_ENVIRONMENTS: [broken]}
    for env in ("acme-prod", "acme-dev", "gulfbank-prod"):
        assert loaded.for_environment(env).blocked
    assert not evaluate_gates(loaded, acme_prod(NOW)).mergeable


def test_several_problems_are_all_reported_and_summarised_in_the_refusal() -> None:
    text = (BROKEN / "badcron-prod-policy.yaml").read_text().replace("minApprovals: 1", "minApprovals: 0")
    status = check_policy_file("system/catalyst-config/policies/badcron-prod-policy.yaml", text)
    assert [p.field for p in status.problems] == ["spec.rules[0].minApprovals", "spec.rules[1].cron"]
    report = evaluate_gates(status, acme_prod(NOW, destination="badcron-prod"))
    assert report.verdicts[0].reason.endswith("(and 1 more problem(s))")


@pytest.mark.parametrize(("text", "words"), [
    ("", "the policy file is empty"),
    ("apiVersion: catalyst.openova.io/v1alpha1\nkind: Organization\nmetadata: {name: acme}\n"
     "spec: {contact: a@b.c, plan: business}\n", "policies/ holds only EnvironmentPolicy objects"),
])
def test_policy_files_hold_exactly_one_policy(text: str, words: str) -> None:
    status = check_policy_file("policies/acme-prod-policy.yaml", text)
    assert not status.valid and words in status.problems[0].message
    assert status.environments == ("acme-prod",)  # attributed by the file name


def test_two_documents_in_one_file_are_refused() -> None:
    one = (FIXTURES / "acme-prod-policy.yaml").read_text()
    status = check_policy_file("policies/acme-prod-policy.yaml", one + "---\n" + one.replace("acme-prod", "acme-uat")
                               .replace("acme-stg", "acme-dev"))
    assert not status.valid
    assert any("exactly one EnvironmentPolicy; found 2 documents" in p.message for p in status.problems)
    assert status.environments == ("acme-prod", "acme-uat")


def test_without_context_the_state_checks_are_skipped() -> None:
    """Offline lint (no Environments, no teams) accepts what only the Sovereign's state could refute."""
    lint = load_policy_set_from_dir(BROKEN)
    assert lint.status("bigquorum-prod-policy").valid  # type: ignore[union-attr]
    assert lint.status("nosource-prod-policy").valid  # type: ignore[union-attr]
    assert not lint.status("badcron-prod-policy").valid  # type: ignore[union-attr]


# --------------------------------------------------------------------------------------------------
# From system/catalyst-config through the Gitea API (R-NAME-15), on the embedded forge


@pytest.fixture(scope="module")
def gitea(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GiteaClient]:
    with (EmbeddedForge(tmp_path_factory.mktemp("forge"), VirtualClock(), name="forge-policy-loading") as forge,
          GiteaClient(forge.url, forge.token) as client):
        yield client


def test_loads_from_system_catalyst_config_over_the_gitea_api(gitea: GiteaClient) -> None:
    store = ConfigStore(gitea)
    store.ensure_layout()
    assert load_policy_set_from_gitea(gitea, environments=ENVIRONMENTS, teams=TEAMS).statuses == ()  # no dir yet
    files = {f"policies/{p.name}": p.read_text() for p in sorted(FIXTURES.glob("*.yaml"))}
    files["policies/acme-uat-policy.yaml"] = (BROKEN / "badcron-prod-policy.yaml").read_text() \
        .replace("badcron-prod", "acme-uat")
    files["policies/README.md"] = "Sovereign-admin only.\n"
    gitea.commit_files("system", "catalyst-config", "main", files, message="policies")

    loaded = load_policy_set_from_gitea(gitea, environments=ENVIRONMENTS, teams=TEAMS)
    assert [s.file for s in loaded.statuses] == [f"system/catalyst-config/{p}" for p in sorted(files)
                                                 if p.endswith(".yaml")]
    assert sorted(loaded.valid) == ["acme-prod", "acme-stg", "gulfbank-prod", "muscatpharmacy-prod"]
    (broken,) = loaded.broken
    assert broken.problems[0].source == "system/catalyst-config/policies/acme-uat-policy.yaml:15"
    assert broken.problems[0].field == "spec.rules[1].cron"
    assert evaluate_gates(loaded, acme_prod(NOW)).mergeable
    refused = evaluate_gates(loaded, acme_prod(NOW, destination="acme-uat"))
    assert refused.status == BLOCKED_POLICY_INVALID


def test_a_file_name_that_contradicts_the_object_is_refused_over_gitea_too(gitea: GiteaClient) -> None:
    text = (FIXTURES / "acme-stg-policy.yaml").read_text()
    gitea.commit_files("system", "catalyst-config", "main", {"policies/acme-dev-policy.yaml": text},
                       message="misfiled")
    loaded = load_policy_set_from_gitea(gitea, environments=ENVIRONMENTS, teams=TEAMS)
    status = loaded.status("acme-stg-policy")
    misfiled = [s for s in loaded.statuses if s.file.endswith("acme-dev-policy.yaml")]
    assert status is not None and status.valid  # the real acme-stg-policy.yaml
    (bad,) = misfiled
    assert bad.problems[0].field == "metadata.name"
    assert bad.environments == ("acme-stg", "acme-dev")
    assert loaded.for_environment("acme-stg").blocked and loaded.for_environment("acme-dev").blocked
