"""J9 — Promote between Environments (R-PROMO, R-EP, R-SURF-03, D-10..D-12, D-14).

People act through public surfaces only: reviewers approve in Gitea with their own tokens, the
sovereign-admin commits policies and the RE Scorecard commits scores to the ``system`` Org through
the Gitea API, Layla promotes through the Catalyst API (naming herself in ``X-Catalyst-User``) and
pushes with the real git client. Time moves on the virtual clock only; scenarios skip on real time.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
import yaml
from kubernetes import client as k8s
from pytest_bdd import given, parsers, then, when

from catalyst_sim.clients.gitea import GiteaClient
from catalyst_sim.harness.context import GitCommandError, ScenarioContext
from catalyst_sim.harness.steps.environments import parse_duration
from catalyst_sim.harness.steps.git import push_change, set_path
from catalyst_sim.harness.steps.runtime import eventually, vcluster_api
from catalyst_sim.model import naming

FIXTURE_POLICIES = Path(__file__).resolve().parents[3] / "fixtures" / "policies"
SYSTEM_ORG, CONFIG_REPO, BUNDLE_REPO = "system", "catalyst-config", "policy-bundle"
USER_HEADER = "X-Catalyst-User"
PEOPLE = r"(?P<reviewers>[A-Z][a-z]+(?:(?:, | and )[A-Z][a-z]+)*)"
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
SPAN = re.compile(r"(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?")


def login(person: str) -> str:
    return person.strip().lower()


def logins(listing: str) -> list[str]:
    return [login(p) for p in re.split(r",\s*|\s+and\s+", listing) if p.strip()]


def parse_span(text: str) -> timedelta:
    """``72h``, ``71h59m``, ``24h``, ``30m`` (the spans policies and their reasons use)."""
    match = SPAN.fullmatch(text.strip())
    if match is None or not (match["h"] or match["m"]):
        raise ValueError(f"not a span: {text!r} (say e.g. '72h' or '71h59m')")
    return timedelta(hours=int(match["h"] or 0), minutes=int(match["m"] or 0))


def _virtual(context: ScenarioContext, what: str) -> Any:
    advance = getattr(context.backend, "advance", None)
    if not context.backend.clock.virtual or advance is None:
        pytest.skip(f"needs virtual time to {what}; backend {context.backend.name} runs on real time")
    return advance


def settle(context: ScenarioContext) -> None:
    """Let the Sovereign react to what just happened without moving the clock (webhooks delivered,
    gates re-evaluated, merges done): an outcome at *this* instant, e.g. one minute before a window."""
    _virtual(context, "observe an outcome at one instant")(timedelta(0))


# -- people and teams (Gitea API) ------------------------------------------------------------------


def token_of(context: ScenarioContext, person: str) -> str:
    tokens = context.state.get("tokens", {})
    if login(person) not in tokens:
        raise AssertionError(f"{person} has no Gitea account in this scenario (known: {sorted(tokens)})")
    return str(tokens[login(person)])


def as_person(context: ScenarioContext, person: str) -> GiteaClient:
    return GiteaClient(context.endpoints.gitea_url, token_of(context, person))


# Gitea users outlive a scenario (a reset removes Organizations, not users), so the password of each
# user this session created is remembered to mint the next scenario's token.
_PASSWORDS: dict[tuple[str, str], str] = {}


@given(parsers.parse('the Gitea users "{listing}" exist'))
def gitea_users(catalyst: ScenarioContext, listing: str) -> None:
    tokens = catalyst.state.setdefault("tokens", {})
    for name in logins(listing):
        key = (catalyst.endpoints.gitea_url, name)
        if key not in _PASSWORDS:
            password = secrets.token_urlsafe(12)
            catalyst.gitea.create_user(name, f"{name}@people.example", password, full_name=name.title())
            _PASSWORDS[key] = password
        token = catalyst.gitea.create_token(name, _PASSWORDS[key], f"catalyst-sim-{secrets.token_hex(4)}")
        tokens[name] = token["sha1"]


@given(parsers.parse('"{org}" has the team "{team}" with "{listing}"'))
def team_with_members(catalyst: ScenarioContext, org: str, team: str, listing: str) -> None:
    found = catalyst.gitea.find_team(org, team) or catalyst.gitea.create_team(org, team, permission="write")
    for name in logins(listing):
        catalyst.gitea.add_team_member(int(found["id"]), name)


# -- policies and RE scores (Git, the system Org) -----------------------------------------------------


def commit_policy(context: ScenarioContext, file: str, text: str) -> None:
    context.gitea.commit_files(SYSTEM_ORG, CONFIG_REPO, "main", {f"policies/{file}": text},
                               message=f"EnvironmentPolicy {file}", author="sovereign-admin")


@given(parsers.parse('the sovereign-admin commits the policy "{file}" to "system/catalyst-config"'))
@when(parsers.parse('the sovereign-admin commits the policy "{file}" to "system/catalyst-config"'))
def commit_fixture_policy(catalyst: ScenarioContext, file: str) -> None:
    commit_policy(catalyst, file, (FIXTURE_POLICIES / file).read_text())


@given(parsers.parse('the sovereign-admin commits the policy "{file}" to "system/catalyst-config" with:'))
@when(parsers.parse('the sovereign-admin commits the policy "{file}" to "system/catalyst-config" with:'))
def commit_inline_policy(catalyst: ScenarioContext, file: str, docstring: str) -> None:
    commit_policy(catalyst, file, docstring)


def policies(context: ScenarioContext) -> dict[str, dict[str, Any]]:
    response = context.api.get("/api/v1/policies")
    assert response.status_code == 200, response.text
    return {item["name"]: item for item in response.json()["items"]}


@given(parsers.parse('the Catalyst API lists the policy "{name}" as valid'))
@then(parsers.parse('the Catalyst API lists the policy "{name}" as valid'))
def policy_valid(catalyst: ScenarioContext, name: str) -> None:
    listed = policies(catalyst)
    assert name in listed and listed[name]["valid"], listed.get(name, sorted(listed))


@then(parsers.parse('the Catalyst API lists the policy "{name}" as invalid mentioning "{text}"'))
def policy_invalid(catalyst: ScenarioContext, name: str, text: str) -> None:
    status = policies(catalyst)[name]
    assert not status["valid"], status
    assert any(text in problem["message"] for problem in status["problems"]), status["problems"]


@given(parsers.parse('the RE Scorecard reports {score:d} for "{repo}"'))
@when(parsers.parse('the RE Scorecard reports {score:d} for "{repo}"'))
def re_score(catalyst: ScenarioContext, score: int, repo: str) -> None:
    org, app = repo.split("/", 1)
    text = f"# RE Scorecard result for {repo}\nscore: {score}\n"
    catalyst.gitea.commit_files(SYSTEM_ORG, BUNDLE_REPO, "main", {f"re-scores/{org}/{app}.yaml": text},
                                message=f"RE score {score} for {repo}", author="re-scorecard")


# -- changes on Environment branches (git) -----------------------------------------------------------


@given(parsers.parse('{person} has pushed to "{branch}" of "{repo}" a commit setting "{path}" to {value} in '
                     '"{file}"'))
def pushed_change(catalyst: ScenarioContext, person: str, branch: str, repo: str, path: str, value: str,
                  file: str) -> None:
    push_change(catalyst, person, branch, repo, path, value, file)


def kustomization(context: ScenarioContext, environment: str, name: str) -> dict[str, Any]:
    with vcluster_api(context, environment) as api:
        return dict(k8s.CustomObjectsApi(api).get_namespaced_custom_object(
            "kustomize.toolkit.fluxcd.io", "v1", "flux-system", "kustomizations", name))


def runs_revision(context: ScenarioContext, environment: str, app: str, revision: str) -> str | None:
    status = kustomization(context, environment, app).get("status") or {}
    ready = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), {})
    if status.get("lastAppliedRevision") == revision and ready.get("status") == "True":
        return None
    return f"{app} in {environment} applied {status.get('lastAppliedRevision')} (Ready={ready.get('status')}), " \
           f"not {revision}"


@given(parsers.parse('within {duration} "{environment}" runs the head of "{branch}" of "{repo}"'))
@then(parsers.parse('within {duration} "{environment}" runs the head of "{branch}" of "{repo}"'))
def runs_branch_head(catalyst: ScenarioContext, duration: str, environment: str, branch: str, repo: str) -> None:
    owner, app = repo.split("/", 1)
    head = catalyst.gitea.get_branch(owner, app, branch)["commit"]["id"]
    eventually(catalyst, parse_duration(duration),
               lambda: runs_revision(catalyst, environment, app, f"{branch}@sha1:{head}"))


def person_url(context: ScenarioContext, person: str, repo: str) -> str:
    parts = urlsplit(context.endpoints.gitea_url)
    credentials = f"{quote(login(person))}:{quote(token_of(context, person))}"
    return urlunsplit((parts.scheme, f"{credentials}@{parts.netloc}", f"/{repo}.git", "", ""))


@when(parsers.parse('{person} pushes directly to "{branch}" of "{repo}" a commit setting "{path}" to {value} in '
                    '"{file}"'))
def push_directly(catalyst: ScenarioContext, person: str, branch: str, repo: str, path: str, value: str,
                  file: str) -> None:
    """A push with the person's own credentials, straight to an Environment branch (R-PROMO-07)."""
    owner, name = repo.split("/", 1)
    catalyst.state.setdefault("heads", {})[repo] = {
        b["name"]: b["commit"]["id"] for b in catalyst.gitea.list_branches(owner, name)}
    clone = catalyst.clone(repo, branch)
    target = clone / file
    document = yaml.safe_load(target.read_text()) or {}
    set_path(document, path, yaml.safe_load(value))
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    catalyst.git("-c", f"user.name={person}", "-c", f"user.email={login(person)}@people.example", "commit",
                 "--quiet", "-am", f"Set {path} to {value}", cwd=clone)
    try:
        catalyst.git("push", "--quiet", person_url(catalyst, person, repo), f"HEAD:{branch}", cwd=clone)
    except GitCommandError as exc:
        catalyst.state["push_error"] = str(exc)
    else:
        catalyst.state["push_error"] = None


@then(parsers.parse('the push is refused with "{text}"'))
def push_refused(catalyst: ScenarioContext, text: str) -> None:
    error = catalyst.state.get("push_error")
    assert error, "the push was accepted"
    assert text in error, error


@then(parsers.parse('within {duration} the branch "{branch}" of "{repo}" is protected: no pushes, {count:d} '
                    'approvals from "{teams}"'))
def branch_protected(catalyst: ScenarioContext, duration: str, branch: str, repo: str, count: int,
                     teams: str) -> None:
    owner, name = repo.split("/", 1)

    def protected() -> str | None:
        rules = {r["rule_name"]: r for r in catalyst.gitea.list_branch_protections(owner, name)}
        rule = rules.get(branch)
        if rule is None:
            return f"{repo}@{branch} is not protected (rules: {sorted(rules)})"
        want = {t.strip().casefold() for t in teams.split(",")}
        have = {t.casefold() for t in rule.get("approvals_whitelist_teams") or []}
        if rule["enable_push"] or rule["required_approvals"] != count or have != want:
            return f"{repo}@{branch} is protected differently: {rule}"
        return None

    eventually(catalyst, parse_duration(duration), protected)


# -- the promotion (Catalyst API) and its reviews (Gitea) ---------------------------------------------


def promote(context: ScenarioContext, person: str, app: str, source: str, destination: str) -> Any:
    response = context.call("POST", f"/api/v1/environments/{source}/applications/{app}/promotions",
                            json={"to": destination}, headers={USER_HEADER: login(person)})
    if response.status_code == 201:
        body = response.json()
        context.state["promotion"] = {"source": source, "app": app, "number": body["pullRequest"]["number"],
                                      "repository": body["pullRequest"]["repository"]}
    return response


@when(parsers.parse('{person} promotes "{app}" from "{source}" to "{destination}"'))
def person_promotes(catalyst: ScenarioContext, person: str, app: str, source: str, destination: str) -> None:
    promote(catalyst, person, app, source, destination)


@given(parsers.parse('{person} has promoted "{app}" from "{source}" to "{destination}"'))
def person_has_promoted(catalyst: ScenarioContext, person: str, app: str, source: str, destination: str) -> None:
    response = promote(catalyst, person, app, source, destination)
    assert response.status_code == 201, response.text


@when(parsers.parse('{person} opens a pull request in Gitea from "{head}" to "{base}" of "{repo}"'))
def open_pull_in_gitea(catalyst: ScenarioContext, person: str, head: str, base: str, repo: str) -> None:
    """The Git surface: a promotion opened in Gitea, not through Catalyst (R-SURF-03)."""
    owner, name = repo.split("/", 1)
    with as_person(catalyst, person) as gitea:
        pull = gitea.create_pull(owner, name, head=head, base=base, title=f"Promote {name} to {base}")
    source = naming.environment_name(owner, naming.env_type_for_branch(head))
    catalyst.state["promotion"] = {"source": source, "app": name, "number": pull["number"], "repository": repo}


@then(parsers.parse("the Catalyst API shows the promotion opened via {surface} by {person}"))
def opened_via(catalyst: ScenarioContext, surface: str, person: str) -> None:
    settle(catalyst)
    promotion = current(catalyst)
    assert (promotion["openedVia"], promotion["author"]) == (surface.lower(), login(person)), promotion


def current(context: ScenarioContext) -> dict[str, Any]:
    """The promotion of this scenario as the Catalyst API shows it now (gates evaluated afresh)."""
    ref = context.state.get("promotion")
    assert ref, "no promotion was opened in this scenario"
    response = context.call("GET", f"/api/v1/environments/{ref['source']}/applications/{ref['app']}/promotions/"
                                   f"{ref['number']}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def pull_request(context: ScenarioContext) -> dict[str, Any]:
    ref = context.state["promotion"]
    owner, repo = ref["repository"].split("/", 1)
    return dict(context.gitea.get_pull(owner, repo, ref["number"]))


@then(parsers.parse('the promotion is a pull request from "{head}" to "{base}" in "{repo}" by {person}'))
def promotion_is_pull_request(catalyst: ScenarioContext, head: str, base: str, repo: str, person: str) -> None:
    assert catalyst.last_response is not None and catalyst.last_response.status_code == 201, \
        catalyst.last_response.text if catalyst.last_response is not None else "no request"
    promotion = current(catalyst)
    assert promotion["author"] == login(person) and promotion["state"] == "open", promotion
    pull = pull_request(catalyst)
    assert pull["state"] == "open" and not pull["merged"], pull
    assert (pull["head"]["ref"], pull["base"]["ref"], pull["base"]["repo"]["full_name"]) == (head, base, repo), pull
    assert f"Promoted-by: {login(person)}" in pull["body"], pull["body"]


@given(parsers.re(rf"{PEOPLE} approves? the promotion$"))
@when(parsers.re(rf"{PEOPLE} approves? the promotion$"))
def approve(catalyst: ScenarioContext, reviewers: str) -> None:
    ref = catalyst.state["promotion"]
    owner, repo = ref["repository"].split("/", 1)
    for name in logins(reviewers):
        with as_person(catalyst, name) as gitea:
            gitea.approve_pull(owner, repo, ref["number"], "Looks good to me")


@when(parsers.parse("{person} requests changes on the promotion"))
def request_changes(catalyst: ScenarioContext, person: str) -> None:
    ref = catalyst.state["promotion"]
    owner, repo = ref["repository"].split("/", 1)
    with as_person(catalyst, person) as gitea:
        gitea.request_changes(owner, repo, ref["number"], "Not before the DB migration is reviewed")


@when(parsers.parse("the org-admin dismisses {person}'s review"))
def dismiss_review(catalyst: ScenarioContext, person: str) -> None:
    ref = catalyst.state["promotion"]
    owner, repo = ref["repository"].split("/", 1)
    reviews = [r for r in catalyst.gitea.list_reviews(owner, repo, ref["number"])
               if r["user"]["login"] == login(person) and r["state"] in ("APPROVED", "REQUEST_CHANGES")]
    assert reviews, f"{person} has no review to dismiss"
    catalyst.gitea.dismiss_review(owner, repo, ref["number"], int(reviews[-1]["id"]), "Migration reviewed offline")


def verdict(promotion: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [v for v in promotion["gates"]["verdicts"] if v["kind"] == kind]
    assert found, f"no {kind} verdict: {promotion['gates']}"
    return dict(found[0])


@then(parsers.parse('the "{kind}" gate says "{text}"'))
def gate_says(catalyst: ScenarioContext, kind: str, text: str) -> None:
    settle(catalyst)
    found = verdict(current(catalyst), kind)
    assert text in found["reason"], found


@then(parsers.parse('the "{kind}" gate {outcome} because "{text}"'))
def gate_outcome(catalyst: ScenarioContext, kind: str, outcome: str, text: str) -> None:
    settle(catalyst)
    found = verdict(current(catalyst), kind)
    assert outcome in ("blocks", "passes", "warns"), f"unknown gate outcome {outcome!r}"
    expected = {"blocks": (False, True), "passes": (True, None), "warns": (False, False)}[outcome]
    assert found["passed"] is expected[0] and (expected[1] is None or found["blocking"] is expected[1]), found
    assert text in found["reason"], found


@then(parsers.parse('the promotion is blocked only by "{listing}"'))
def blocked_only_by(catalyst: ScenarioContext, listing: str) -> None:
    settle(catalyst)
    promotion = current(catalyst)
    blockers = {v["kind"] for v in promotion["gates"]["verdicts"] if v["blocking"] and not v["passed"]}
    assert blockers == {k.strip() for k in listing.split(",")}, promotion["gates"]
    assert promotion["state"] == "open" and not pull_request(catalyst)["merged"], promotion


@then(parsers.re(r"the promotion is (?P<outcome>open|merged)$"))
def promotion_outcome(catalyst: ScenarioContext, outcome: str) -> None:
    """At this very instant (nothing but the Sovereign's reaction happens before the check)."""
    settle(catalyst)
    promotion, pull = current(catalyst), pull_request(catalyst)
    if outcome == "merged":
        assert promotion["state"] == "merged" and pull["merged"], (promotion["gates"], pull["state"])
        assert promotion["pullRequest"]["mergeCommitSha"] == pull["merge_commit_sha"], promotion
    else:
        assert promotion["state"] == "open" and pull["state"] == "open" and not pull["merged"], promotion


@then(parsers.parse("within {duration} the promotion is merged"))
def merged_within(catalyst: ScenarioContext, duration: str) -> None:
    def merged() -> str | None:
        promotion = current(catalyst)
        return None if promotion["state"] == "merged" and pull_request(catalyst)["merged"] else \
            f"the promotion is {promotion['state']}: {promotion['gates']['status']}"

    eventually(catalyst, parse_duration(duration), merged)


@then(parsers.parse('no pull request is open in "{repo}"'))
def no_open_pull(catalyst: ScenarioContext, repo: str) -> None:
    owner, name = repo.split("/", 1)
    assert catalyst.gitea.list_pulls(owner, name, state="open") == []


@then(parsers.parse('within {duration} the "{environment}" vcluster runs the merge commit of the promotion'))
def runs_merge_commit(catalyst: ScenarioContext, duration: str, environment: str) -> None:
    promotion = current(catalyst)
    sha = promotion["pullRequest"]["mergeCommitSha"]
    assert sha, promotion
    branch = promotion["pullRequest"]["base"]
    eventually(catalyst, parse_duration(duration),
               lambda: runs_revision(catalyst, environment, promotion["application"], f"{branch}@sha1:{sha}"))


@then(parsers.parse('within {duration} the StatefulSet "{name}" in the "{environment}" vcluster has {replicas:d} '
                    'replicas'))
def statefulset_replicas_within(catalyst: ScenarioContext, duration: str, name: str, environment: str,
                                replicas: int) -> None:
    eventually(catalyst, parse_duration(duration), lambda: _statefulset(catalyst, environment, name, replicas))


@then(parsers.parse('the StatefulSet "{name}" in the "{environment}" vcluster has {replicas:d} replicas'))
def statefulset_replicas(catalyst: ScenarioContext, name: str, environment: str, replicas: int) -> None:
    problem = _statefulset(catalyst, environment, name, replicas)
    assert problem is None, problem


def _statefulset(context: ScenarioContext, environment: str, name: str, replicas: int) -> str | None:
    with vcluster_api(context, environment) as api:
        found = int(k8s.AppsV1Api(api).read_namespaced_stateful_set(name, name).spec.replicas)
    return None if found == replicas else f"{name} in {environment} has {found} replicas"


# -- time -----------------------------------------------------------------------------------------------


def next_instant(now: datetime, day: str, hour: int, minute: int) -> datetime:
    """The first instant at or after ``now`` that is ``day`` ``hour:minute`` UTC."""
    target = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    target += timedelta(days=(DAYS.index(day) - target.weekday()) % 7)
    return target if target >= now else target + timedelta(days=7)


IT_IS = rf"it is (?P<day>{'|'.join(DAYS)}) (?P<hour>\d\d):(?P<minute>\d\d) UTC$"


@given(parsers.re(IT_IS))
@when(parsers.re(IT_IS))
def it_is(catalyst: ScenarioContext, day: str, hour: str, minute: str) -> None:
    """The next such instant (now, if it is one). The virtual clock runs on across a session, so a
    Background that starts with "it is Monday 09:00 UTC" gives every scenario the same week ahead."""
    advance = _virtual(catalyst, f"wait for {day} {hour}:{minute} UTC")
    now = catalyst.backend.clock.now()
    advance(next_instant(now, day, int(hour), int(minute)) - now)


@given(parsers.parse('the candidate has soaked {span} in "{environment}"'))
@when(parsers.parse('the candidate has soaked {span} in "{environment}"'))
def candidate_soaked(catalyst: ScenarioContext, span: str, environment: str) -> None:
    """Move the clock to exactly ``span`` after the promotion's head commit first became Ready in
    ``environment``, as the Catalyst API reports it (D-11)."""
    advance = _virtual(catalyst, f"soak {span}")
    promotion = current(catalyst)
    since = promotion["candidate"]["readySince"].get(environment)
    assert since, f"the candidate {promotion['candidate']['commit']} has not been Ready in {environment}"
    target = datetime.fromisoformat(since) + parse_span(span)
    now = catalyst.backend.clock.now()
    assert target >= now, f"the candidate has soaked longer than {span} already (since {since}, now {now})"
    advance(target - now)


@then(parsers.parse('the Gitea pull request of the promotion was merged by the control plane with "{text}"'))
def merged_with_message(catalyst: ScenarioContext, text: str) -> None:
    pull = pull_request(catalyst)
    ref = catalyst.state["promotion"]
    owner, repo = ref["repository"].split("/", 1)
    commit = catalyst.gitea.get_commit(owner, repo, pull["merge_commit_sha"])
    message = commit.get("message") or commit.get("commit", {}).get("message", "")
    assert text in message, message


