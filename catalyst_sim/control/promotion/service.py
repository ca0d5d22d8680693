"""The promotion service: open a promotion pull request, evaluate its gates, merge it (R-PROMO-01..08).

Synchronous and stateless except for a small registry of promotions; everything else is read from
Gitea when it is needed, so a verdict is never computed from stale inputs:

* the pull request and its reviews (``GET /repos/{o}/{r}/pulls/{n}[/reviews]``);
* the policies, from ``system/catalyst-config/policies/`` with the known Environments and the Org's
  Gitea teams (a broken policy refuses, R-EP-02);
* the RE score, from ``system/policy-bundle/re-scores/{org}/{app}.yaml`` (R-PROMO-04, D-10);
* the soak history, from the GitOps engine's events (:class:`SoakLedger`, D-11);
* *now*, from the Sovereign's Clock; the timezone from the Sovereign (D-12).

The pull request is opened and merged by the control plane's own Gitea user: Catalyst has no
identity service yet, so the API caller names themself in ``X-Catalyst-User`` and that name is the
promotion's author for the gates (their own approval never counts, R-PROMO-03) and in the pull
request body and merge commit (the audit trail, R-GIT-07). Pull requests people open in Gitea
between two Environment branches are promotions too (one policy whatever the surface, R-SURF-03):
the service adopts them with the Gitea poster as author. The registry only caches what Gitea holds:
after a restart, open promotion pull requests are found again (:meth:`PromotionService.recover`),
their author read back from the ``Promoted-by:`` trailer.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Collection, Mapping
from typing import Any, Literal

from catalyst_sim.clients.gitea import GiteaClient, GiteaError
from catalyst_sim.clock import Clock
from catalyst_sim.control.config_store import SYSTEM_ORG
from catalyst_sim.control.policy import (
    PolicySet,
    PromotionFacts,
    evaluate_gates,
    load_policy_set_from_gitea,
    reviews_from_gitea,
)
from catalyst_sim.control.promotion.inputs import (
    RE_SCORE_REPO,
    ReScore,
    SoakLedger,
    TeamDirectory,
    parse_re_score,
    re_score_path,
)
from catalyst_sim.control.promotion.model import Evaluation, Key, Promotion
from catalyst_sim.control.promotion.protection import apply_protection, desired_protection
from catalyst_sim.control.promotion.routing import is_promotion_pair, promotion_branches
from catalyst_sim.model.base import CatalystError, ConflictError, NotFoundError, Problem
from catalyst_sim.model.resources import Environment, Sovereign

log = logging.getLogger(__name__)

USER_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
PROMOTED_BY = re.compile(r"^Promoted-by: ([A-Za-z0-9][A-Za-z0-9._-]{0,39})$", re.MULTILINE)
RECENT_COMMITS = 50  # how far back "nothing to promote" looks for the head commit in the base branch


class PromotionService:
    def __init__(self, *, gitea: GiteaClient, clock: Clock, sovereign: Sovereign,
                 environments: Callable[[], list[Environment]], applications: Callable[[str], list[str]],
                 ledger: SoakLedger) -> None:
        self.gitea = gitea
        self.clock = clock
        self.sovereign = sovereign
        self.environments = environments
        self.applications = applications
        self.ledger = ledger
        self._promotions: dict[Key, Promotion] = {}
        self._lock = threading.RLock()
        self._merger: str | None = None

    # -- inputs read from Gitea ---------------------------------------------------------------------
    def merger(self) -> str:
        """The control plane's Gitea login: the only one allowed to merge into protected branches."""
        if self._merger is None:
            self._merger = str(self.gitea.current_user()["login"])
        return self._merger

    def _teams_of(self, organization: str) -> Mapping[str, Collection[str]] | None:
        try:
            teams = self.gitea.list_teams(organization)
        except GiteaError as exc:
            if exc.status == 404:
                return None
            raise
        return {team["name"]: [m["login"] for m in self.gitea.list_team_members(team["id"])] for team in teams}

    def team_directory(self) -> TeamDirectory:
        organizations = sorted({e.spec.organization for e in self.environments()})
        return TeamDirectory(organizations, self._teams_of)

    def policies(self, teams: TeamDirectory | None = None) -> PolicySet:
        """Every policy of the Sovereign, checked against the Environments and teams that exist now."""
        return load_policy_set_from_gitea(self.gitea, environments={e.metadata.name for e in self.environments()},
                                          teams=teams or self.team_directory())

    def re_score(self, organization: str, app: str) -> ReScore:
        path = re_score_path(organization, app)
        source = f"{SYSTEM_ORG}/{RE_SCORE_REPO}/{path}"
        try:
            text: str | None = self.gitea.read_file(SYSTEM_ORG, RE_SCORE_REPO, path, ref="main")
        except GiteaError as exc:
            if exc.status != 404:
                raise
            text = None
        return parse_re_score(text, source)

    # -- reads ----------------------------------------------------------------------------------------
    def promotions(self, *, organization: str | None = None, app: str | None = None,
                   environment: str | None = None, open_only: bool = False) -> list[Promotion]:
        with self._lock:
            found = list(self._promotions.values())
        return sorted((p for p in found
                       if (organization is None or p.organization == organization)
                       and (app is None or p.application == app)
                       and (environment is None or environment in (p.source, p.destination))
                       and (not open_only or p.is_open)), key=lambda p: p.key)

    def find(self, key: Key) -> Promotion | None:
        with self._lock:
            return self._promotions.get(key)

    def pending_approval(self, environment: str, app: str) -> bool:
        """A promotion PR into this Environment's branch is open (R-PROMO-08, R-CARD-02)."""
        return any(p.destination == environment for p in self.promotions(app=app, open_only=True))

    # -- opening ---------------------------------------------------------------------------------------
    def open(self, source: str, app: str, destination: str, *, author: str | None) -> tuple[Promotion, Evaluation]:
        """Open the promotion PR ``source`` -> ``destination`` for ``app`` (R-PROMO-01)."""
        if not author or not USER_PATTERN.fullmatch(author):
            raise CatalystError.single(
                "a promotion needs its author: send the caller's login in the X-Catalyst-User header (until "
                "Catalyst's identity service exists)", field="X-Catalyst-User", code="Unauthorized")
        environments = {e.metadata.name: e for e in self.environments()}
        for name in (source, destination):
            if name not in environments:
                raise NotFoundError(f"Environment {name!r} does not exist", object=f"Environment/{name}")
        organization = environments[source].spec.organization
        head, base = promotion_branches(source, destination, {e.spec.envType for e in environments.values()
                                                              if e.spec.organization == organization})
        if app not in self.applications(organization):
            raise NotFoundError(f"Application {app!r} does not exist in Organization {organization!r}",
                                object=f"Application/{app}")
        teams = self.team_directory()
        binding = self.policies(teams).for_environment(destination)
        if binding.blocked:
            raise CatalystError([Problem(f"promotions into {destination} are refused while its EnvironmentPolicy "
                                         "is invalid (blocked: policy invalid); fix the policy in "
                                         "system/catalyst-config/policies/", object=f"Environment/{destination}"),
                                 *binding.problems], code="Conflict")
        for existing in self.promotions(organization=organization, app=app, open_only=True):
            if (existing.head_branch, existing.base_branch) == (head, base):
                raise ConflictError(f"promotion {existing.repository}#{existing.number} from {source} to "
                                    f"{destination} is already open", object=f"Application/{app}", field="to")
        self._require_changes(organization, app, head, base)
        pull = self.gitea.create_pull(
            organization, app, head=head, base=base, title=f"Promote {app} from {source} to {destination}",
            body=(f"Promotion of {organization}/{app} from {source} ({head}) to {destination} ({base}), "
                  f"gated by the EnvironmentPolicy of {destination} (R-PROMO-01, R-EP-02).\n\n"
                  f"Promoted-by: {author}\nOpened-via: catalyst-api\n"))
        promotion = Promotion(organization=organization, application=app, number=int(pull["number"]),
                              source=source, destination=destination, head_branch=head, base_branch=base,
                              author=author, opened_at=self.clock.now(), url=str(pull.get("html_url") or ""))
        with self._lock:
            self._promotions[promotion.key] = promotion
        return promotion, self.evaluate(promotion, pull, teams)

    def _require_changes(self, organization: str, app: str, head: str, base: str) -> None:
        head_sha = self.gitea.get_branch(organization, app, head)["commit"]["id"]
        merged = {c.get("sha") for c in self.gitea.list_commits(organization, app, sha=base, limit=RECENT_COMMITS)}
        if head_sha in merged:
            raise CatalystError.single(f"nothing to promote: {base} already contains {head} ({head_sha[:7]})",
                                       field="to", object=f"Application/{app}")

    def adopt(self, organization: str, app: str, pull: Mapping[str, Any]) -> Promotion | None:
        """Register a pull request between two Environment branches as a promotion: one opened in
        Gitea (its poster is the author), or one this service opened before a restart (the author is
        in its ``Promoted-by:`` trailer)."""
        key = (organization, app, int(pull["number"]))
        poster = str((pull.get("user") or {}).get("login") or "")
        head, base = str(pull["head"]["ref"]), str(pull["base"]["ref"])
        via: Literal["catalyst-api", "gitea"] = "gitea"
        if poster.casefold() == self.merger().casefold():
            trailer = PROMOTED_BY.search(str(pull.get("body") or ""))
            if trailer is None:
                return None  # the control plane's account used by hand: not a promotion anyone asked for
            poster, via = trailer.group(1), "catalyst-api"
        if pull.get("state") != "open":
            return None
        environments = [e for e in self.environments() if e.spec.organization == organization]
        if app not in self.applications(organization) or not is_promotion_pair(
                head, base, {e.spec.envType for e in environments}):
            return None
        by_branch = {e.branch: e.metadata.name for e in environments}
        with self._lock:
            if key in self._promotions:
                return self._promotions[key]
            promotion = Promotion(organization=organization, application=app, number=key[2],
                                  source=by_branch.get(head, head), destination=by_branch[base], head_branch=head,
                                  base_branch=base, author=poster, opened_at=self.clock.now(),
                                  url=str(pull.get("html_url") or ""), via=via)
            self._promotions[key] = promotion
        return promotion

    def recover(self) -> list[Key]:
        """After a restart: every open promotion pull request of every App repo, registered again."""
        found: list[Key] = []
        for organization in sorted({e.spec.organization for e in self.environments()}):
            for app in self.applications(organization):
                try:
                    pulls = self.gitea.list_pulls(organization, app, state="open")
                except GiteaError as exc:
                    if exc.status == 404:
                        continue  # the repo is gone: nothing to recover
                    raise
                for pull in pulls:
                    promotion = self.adopt(organization, app, pull)
                    if promotion is not None:
                        found.append(promotion.key)
        return found

    # -- evaluating and merging -------------------------------------------------------------------------
    def evaluate(self, promotion: Promotion, pull: Mapping[str, Any] | None = None,
                 teams: TeamDirectory | None = None) -> Evaluation:
        """The gates of the destination's policy for this promotion, now (R-PROMO-02..06)."""
        org, app, number = promotion.key
        pull = pull or self.gitea.get_pull(org, app, number)
        teams = teams or self.team_directory()
        policies = self.policies(teams)
        head_sha = str(pull["head"]["sha"])
        score = self.re_score(org, app)
        first_ready = self.ledger.first_ready(org, app)
        facts = PromotionFacts(
            destination=promotion.destination, head_sha=head_sha, now=self.clock.now(), author=promotion.author,
            reviews=reviews_from_gitea(self.gitea.list_reviews(org, app, number)),
            teams=teams.get(org) or {}, re_score=score.score, first_ready=first_ready,
            timezone=self.sovereign.spec.timezone)
        evaluation = Evaluation(
            report=evaluate_gates(policies, facts), head_sha=head_sha, re_score=score,
            ready_since={env: at.isoformat() for env, commits in first_ready.items()
                         for sha, at in commits.items() if sha == head_sha})
        with self._lock:
            if promotion.is_open:
                promotion.last = evaluation
        return evaluation

    def view(self, promotion: Promotion) -> dict[str, Any]:
        """The API view: open promotions are evaluated afresh, closed ones keep their last verdicts."""
        return promotion.as_dict(self.evaluate(promotion) if promotion.is_open else None)

    def reconcile(self, key: Key) -> Promotion | None:
        """Bring one promotion up to date: notice a merge or close in Gitea, else evaluate the gates
        and merge when every blocking gate passes (R-PROMO-02). None when there is nothing to follow."""
        promotion = self.find(key)
        if promotion is None or not promotion.is_open:
            return None
        org, app, number = key
        pull = self.gitea.get_pull(org, app, number)
        if pull.get("merged") or pull.get("state") != "open":
            self._closed(promotion, pull)
            return promotion
        evaluation = self.evaluate(promotion, pull)
        if evaluation.report.mergeable:
            self._merge(promotion, evaluation)
        return promotion

    def _merge(self, promotion: Promotion, evaluation: Evaluation) -> None:
        org, app, number = promotion.key
        verdicts = "\n".join(f"- {v.kind}: {v.reason}" for v in evaluation.report.verdicts)
        try:
            self.gitea.merge_pull(
                org, app, number, style="merge", head_commit_id=evaluation.head_sha,
                title=f"Promote {app} from {promotion.source} to {promotion.destination} (#{number})",
                message=f"Every blocking gate of {promotion.destination} passed:\n{verdicts}\n\n"
                        f"Promoted-by: {promotion.author}")
        except GiteaError as exc:
            # Gitea's own protection disagreeing (405) or the head moving (409) is shown, and the next
            # evaluation (webhook, timer or resync) tries again.
            with self._lock:
                promotion.merge_error = f"Gitea refused the merge ({exc.status}): {exc}"
            log.info("merge of %s#%s refused: %s", promotion.repository, number, exc)
            return
        self._closed(promotion, self.gitea.get_pull(org, app, number), evaluation)

    def _closed(self, promotion: Promotion, pull: Mapping[str, Any], evaluation: Evaluation | None = None) -> None:
        with self._lock:
            promotion.state = "merged" if pull.get("merged") else "closed"
            promotion.merge_commit = pull.get("merge_commit_sha") or None
            promotion.merged_at = pull.get("merged_at") or None
            promotion.merge_error = None
            if evaluation is not None:
                promotion.last = evaluation

    # -- branch protection -------------------------------------------------------------------------------
    def protect(self, organization: str | None = None) -> None:
        """Apply the policies to the Environment branches of every App repo (R-PROMO-07)."""
        teams = self.team_directory()
        policies = self.policies(teams)
        merger = self.merger()
        environments = [e for e in self.environments()
                        if organization is None or e.spec.organization == organization]
        for org in sorted({e.spec.organization for e in environments}):
            apps = self.applications(org)
            for environment in (e for e in environments if e.spec.organization == org):
                desired = desired_protection(policies.for_environment(environment.metadata.name),
                                             environment.branch, merger)
                for app in apps:
                    done = apply_protection(self.gitea, org, app, environment.branch, desired, merger=merger)
                    if done != "unchanged":
                        log.info("branch protection of %s/%s@%s %s", org, app, environment.branch, done)

    def reset(self) -> None:
        with self._lock:
            self._promotions.clear()
        self.ledger.clear()
