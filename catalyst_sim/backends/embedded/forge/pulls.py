"""Pull requests, reviews, merges and branch protection: promotion as the embedded Gitea does it.

Promotion (R-PROMO-01) is a pull request inside the App repo from the lower environment's branch to
the higher one's, merged once the destination branch's protection is satisfied. This module holds
Gitea's rules for that, independent of HTTP like ``service.py``:

* branch protection (Gitea's ProtectedBranch): who may push — enforced for ``git push`` by the bare
  repo's pre-receive hook with the verdicts from :meth:`PullService.push_rules`, and for the
  contents API by :meth:`PullService.check_api_write` — who may merge, whose reviews are official,
  how many approvals a merge needs, whether a change request blocks;
* pull requests with Gitea's numbering, states and JSON; ``refs/pull/{index}/head`` is kept in the
  bare repo as Gitea does, and a push to the head branch synchronizes the PR (reviews go stale,
  approvals are dismissed when the rule says so, a ``pull_request_sync`` webhook fires);
* reviews (approve / request changes / comment, dismissal) with Gitea's refusals;
* the merge itself: a real merge commit made with git's plumbing (``merge-tree --write-tree``,
  ``commit-tree`` with both parents, compare-and-swap ``update-ref``), dated by the forge clock, so a
  clone shows it in ``git log --merges`` exactly as after a Gitea merge; the base branch's ``push``
  webhook goes out through the same path as any other ref update;
* ``pull_request`` and ``pull_request_review_*`` webhooks with Gitea's payloads and headers.

What git says about a PR (heads, mergeability, diff stats) is read whenever the PR is rendered, so it
is never out of date; merge-tree and diff results are cached per commit pair, which cannot change.
Unlike Gitea, nothing here is asynchronous: a push returns after the PR is synchronized, so a merge
right after a push sees the stale approvals (Gitea's background queue makes that a race).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from catalyst_sim.backends.embedded.forge.bare import (
    ZERO_SHA,
    BareRepo,
    FileChange,
    GitError,
    MergeTree,
    RefUpdate,
    RefUpdateConflict,
    Signature,
)
from catalyst_sim.backends.embedded.forge.convert import PullView
from catalyst_sim.backends.embedded.forge.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PreconditionFailed,
    Unprocessable,
)
from catalyst_sim.backends.embedded.forge.models import (
    AccessMode,
    BranchProtection,
    PullRequest,
    Repository,
    Review,
    ReviewState,
    User,
    mode_of,
)

if TYPE_CHECKING:
    from catalyst_sim.backends.embedded.forge.service import ForgeService

# setting.Repository.PullRequest.WorkInProgressPrefixes (default), compared case-insensitively.
WIP_PREFIXES = ("WIP:", "[WIP]")
MERGE_STYLES = ("merge", "rebase", "rebase-merge", "squash", "fast-forward-only", "manually-merged")
SUPPORTED_MERGE_STYLES = ("merge", "squash", "fast-forward-only")
# Gitea's HookEventType.Event(): the X-Gitea-Event header of each event type (X-Gitea-Event-Type
# carries the type itself).
HOOK_EVENT_HEADER = {
    "pull_request_sync": "pull_request",
    "pull_request_review_approved": "pull_request_approved",
    "pull_request_review_rejected": "pull_request_rejected",
    "pull_request_review_comment": "pull_request_comment",
}
REVIEW_HOOK_EVENT = {
    ReviewState.APPROVED: "pull_request_review_approved",
    ReviewState.REQUEST_CHANGES: "pull_request_review_rejected",
    ReviewState.COMMENT: "pull_request_review_comment",
}
_CACHE_LIMIT = 4096
_BOOL_FIELDS = (
    "enable_merge_whitelist",
    "enable_status_check",
    "enable_approvals_whitelist",
    "block_on_rejected_reviews",
    "block_on_official_review_requests",
    "block_on_outdated_branch",
    "dismiss_stale_approvals",
    "ignore_stale_approvals",
    "require_signed_commits",
    "apply_to_admins",
)
# (body field, rule attribute, whitelist kind): "write" users need write access, "read" users read
# access (Gitea's updateUserWhitelist / updateApprovalWhitelist); teams must have access to the repo.
_USER_LISTS = (
    ("push_whitelist_usernames", "push_whitelist_user_ids", AccessMode.WRITE),
    ("merge_whitelist_usernames", "merge_whitelist_user_ids", AccessMode.WRITE),
    ("approvals_whitelist_username", "approvals_whitelist_user_ids", AccessMode.READ),
)
_TEAM_LISTS = (
    ("push_whitelist_teams", "push_whitelist_team_ids"),
    ("merge_whitelist_teams", "merge_whitelist_team_ids"),
    ("approvals_whitelist_teams", "approvals_whitelist_team_ids"),
)


def is_work_in_progress(title: str) -> bool:
    upper = title.upper()
    return any(upper.startswith(prefix.upper()) for prefix in WIP_PREFIXES)


def _as_bool(value: Any) -> bool:
    return bool(value) if not isinstance(value, str) else value.lower() in ("1", "true", "yes", "on")


def _as_list(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Unprocessable(f"[{field}]: json: cannot unmarshal into a list of strings")
    return [str(v) for v in value]


@dataclass
class BranchFlags:
    """What a branch's JSON says about protection for one caller (Gitea's ToBranch)."""

    rule: BranchProtection | None = None
    can_push: bool | None = None
    can_merge: bool | None = None


class PullService:
    """Gitea's pull request, review and branch protection rules over the forge's state and repos."""

    def __init__(self, forge: ForgeService) -> None:
        self.forge = forge
        self.state = forge.state
        self._cache_lock = threading.Lock()
        self._merges: dict[tuple[str, str], MergeTree] = {}
        self._diffs: dict[tuple[str, str], list[FileChange]] = {}

    # -- plumbing ---------------------------------------------------------------------------------
    def _bare(self, repo: Repository) -> BareRepo:
        return self.forge.bare(repo)

    def _merge_tree(self, bare: BareRepo, base: str, head: str) -> MergeTree:
        key = (base, head)
        with self._cache_lock:
            found = self._merges.get(key)
        if found is None:
            found = bare.merge_tree(base, head)
            with self._cache_lock:
                if len(self._merges) > _CACHE_LIMIT:
                    self._merges.clear()
                self._merges[key] = found
        return found

    def _diff(self, bare: BareRepo, base: str, head: str) -> list[FileChange]:
        key = (base, head)
        with self._cache_lock:
            found = self._diffs.get(key)
        if found is None:
            found = bare.diff_files(base, head)
            with self._cache_lock:
                if len(self._diffs) > _CACHE_LIMIT:
                    self._diffs.clear()
                self._diffs[key] = found
        return found

    @staticmethod
    def _signature(user: User, when: datetime) -> Signature:
        return Signature(user.full_name or user.login, user.email, when)

    def _repo_pull(
        self, doer: User | None, owner: str, name: str, index: int, need: AccessMode = AccessMode.READ
    ) -> tuple[Repository, AccessMode, PullRequest]:
        repo, mode = self.forge.repo_for(doer, owner, name, need)
        pull = self.state.get_pull(repo, index)
        if pull is None:
            raise NotFound()
        return repo, mode, pull

    def view(self, repo: Repository, pull: PullRequest, mode: AccessMode) -> PullView:
        """The PR as Gitea renders it now: an open PR follows its head branch; a closed one keeps
        ``refs/pull/{index}/head``; a merged one its merge base and last head."""
        bare = self._bare(repo)
        base_sha = bare.branch_sha(pull.base_branch)
        branch_head = bare.branch_sha(pull.head_branch)
        head_sha = branch_head if (branch_head and not pull.closed) else pull.head_sha
        if pull.merged:
            merge_base = pull.merge_base
        else:
            merge_base = (bare.merge_base(base_sha, head_sha) if base_sha else None) or pull.merge_base
        draft = is_work_in_progress(pull.title)
        if pull.merged:
            mergeable = True
        elif base_sha is None:
            mergeable = False
        else:
            mergeable = self._merge_tree(bare, base_sha, head_sha).clean and not draft
        files = self._diff(bare, merge_base, head_sha) if merge_base else []
        return PullView(
            repo=repo,
            pull=pull,
            mode=mode,
            base_sha=base_sha,
            head_sha=head_sha,
            head_ref=pull.head_branch if branch_head else pull.ref,
            merge_base=merge_base,
            mergeable=mergeable,
            draft=draft,
            additions=sum(f.additions for f in files),
            deletions=sum(f.deletions for f in files),
            changed_files=len(files),
        )

    def _head_now(self, bare: BareRepo, pull: PullRequest) -> str:
        return bare.branch_sha(pull.head_branch) or pull.head_sha

    # -- webhooks ---------------------------------------------------------------------------------
    def _fire(self, repo: Repository, event_type: str, build: Callable[[], dict[str, Any]]) -> None:
        """Deliver one PR event to every repo/org hook subscribed to it; the payload is only built
        when some hook wants it. PR events ignore ``branch_filter`` (Gitea's getPayloadBranch)."""
        hooks = [h for h in self.state.hooks_for_event(repo) if h.wants(event_type)]
        if not hooks:
            return
        try:
            payload = build()
        except (GitError, OSError) as exc:  # the repo may be gone already; never fail the request
            self.forge.log.record("error", "building webhook payload failed", repo=repo.full_name, error=str(exc))
            return
        header = HOOK_EVENT_HEADER.get(event_type, event_type)
        for hook in hooks:
            self.forge.dispatcher.submit(hook, header, payload, repo=repo.full_name, event_type=event_type)

    def _payload(
        self,
        repo: Repository,
        pull: PullRequest,
        action: str,
        sender: User,
        *,
        changes: dict[str, Any] | None = None,
        review: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Gitea's PullRequestPayload, field for field (``changes`` only when set, as omitempty)."""
        shapes = self.forge.shapes
        payload: dict[str, Any] = {"action": action, "number": pull.index}
        if changes is not None:
            payload["changes"] = changes
        anonymous = self.state.access_mode(None, repo)
        payload.update(
            {
                "pull_request": shapes.pull_request(self.view(repo, pull, anonymous)),
                "requested_reviewer": None,
                "repository": shapes.repository(repo, AccessMode.OWNER),
                "sender": shapes.user(sender),
                "commit_id": "",
                "review": review,
            }
        )
        return payload

    def _fire_pull(
        self,
        repo: Repository,
        pull: PullRequest,
        action: str,
        sender: User,
        *,
        event_type: str = "pull_request",
        changes: dict[str, Any] | None = None,
    ) -> None:
        self._fire(repo, event_type, lambda: self._payload(repo, pull, action, sender, changes=changes))

    # -- branch protection ------------------------------------------------------------------------
    def _admin_repo(self, doer: User | None, owner: str, name: str) -> Repository:
        repo, _ = self.forge.repo_for(doer, owner, name, AccessMode.ADMIN)
        return repo

    def list_protections(self, doer: User | None, owner: str, name: str) -> list[BranchProtection]:
        return self.state.protections_of(self._admin_repo(doer, owner, name))

    def get_protection(self, doer: User | None, owner: str, name: str, rule_name: str) -> BranchProtection:
        rule = self.state.protection_named(self._admin_repo(doer, owner, name), rule_name)
        if rule is None:
            raise NotFound()
        return rule

    def _user_ids(self, names: list[str]) -> list[int]:
        ids: list[int] = []
        for login in names:
            user = self.state.get_user(login)
            if user is None:
                raise Unprocessable(f"user does not exist [uid: 0, name: {login}]")
            if user.id not in ids:
                ids.append(user.id)
        return ids

    def _team_ids(self, repo: Repository, names: list[str]) -> list[int]:
        org = self.state.orgs_by_id.get(repo.owner_id) if repo.owner_is_org else None
        if org is None:
            return []  # Gitea only resolves teams for an organization's repository
        ids: list[int] = []
        for team_name in names:
            team = org.teams.get(team_name.lower())
            if team is None:
                raise Unprocessable(f"team does not exist [org_id {org.id}, team_id 0, name: {team_name}]")
            if team.id not in ids:
                ids.append(team.id)
        return ids

    def _keep_users(self, repo: Repository, ids: list[int], need: AccessMode) -> list[int]:
        """Gitea silently drops whitelisted users without the needed access to the repository."""
        kept = []
        for user_id in ids:
            user = self.state.users_by_id.get(user_id)
            if user is not None and self.state.access_mode(user, repo) >= need:
                kept.append(user_id)
        return kept

    def _keep_teams(self, repo: Repository, ids: list[int]) -> list[int]:
        """Gitea's updateTeamWhitelist keeps only teams with (at least read) access to the repo."""
        kept = []
        for team_id in ids:
            found = self.state.get_team(team_id)
            if found is None:
                continue
            team = found[1]
            if team.covers(repo.id) and max(mode_of(team.permission), team.access_mode) >= AccessMode.READ:
                kept.append(team_id)
        return kept

    def _resolve_whitelists(self, repo: Repository, body: dict[str, Any]) -> dict[str, list[int]]:
        """Names in ``body`` to ids (422 for an unknown user or team), only for the lists sent."""
        resolved: dict[str, list[int]] = {}
        for field, attr, _ in _USER_LISTS:
            if body.get(field) is not None:
                resolved[attr] = self._user_ids(_as_list(body.get(field), field))
        for field, attr in _TEAM_LISTS:
            if body.get(field) is not None:
                resolved[attr] = self._team_ids(repo, _as_list(body.get(field), field))
        return resolved

    def _apply_whitelists(self, repo: Repository, rule: BranchProtection, resolved: dict[str, list[int]]) -> None:
        for _, attr, need in _USER_LISTS:
            if attr in resolved:
                setattr(rule, attr, self._keep_users(repo, resolved[attr], need))
        for _, attr in _TEAM_LISTS:
            if attr in resolved:
                setattr(rule, attr, self._keep_teams(repo, resolved[attr]))

    def create_protection(self, doer: User, owner: str, name: str, body: dict[str, Any]) -> BranchProtection:
        """Gitea's CreateBranchProtection: ``rule_name`` (or the deprecated ``branch_name``), once."""
        repo = self._admin_repo(doer, owner, name)
        rule_name = str(body.get("rule_name") or body.get("branch_name") or "")
        if not rule_name:
            raise BadRequest("both rule_name and branch_name are empty")
        resolved = self._resolve_whitelists(repo, body)
        with self.state.lock:
            if self.state.protection_named(repo, rule_name) is not None:
                raise Forbidden("Branch protection already exist")
            rule = self.state.add_protection(repo, rule_name, now=self.forge.now())
            rule.enable_push = _as_bool(body.get("enable_push"))
            rule.enable_push_whitelist = rule.enable_push and _as_bool(body.get("enable_push_whitelist"))
            rule.push_whitelist_deploy_keys = rule.enable_push_whitelist and _as_bool(
                body.get("push_whitelist_deploy_keys")
            )
            for field in _BOOL_FIELDS:
                setattr(rule, field, _as_bool(body.get(field)))
            rule.required_approvals = max(0, int(body.get("required_approvals") or 0))
            rule.status_check_contexts = _as_list(body.get("status_check_contexts"), "status_check_contexts")
            rule.protected_file_patterns = str(body.get("protected_file_patterns") or "")
            rule.unprotected_file_patterns = str(body.get("unprotected_file_patterns") or "")
            self._apply_whitelists(repo, rule, resolved)
        self.forge.log.record(
            "repo", "branch protection created", repo=repo.full_name, rule=rule_name, by=doer.login
        )
        return rule

    def edit_protection(
        self, doer: User, owner: str, name: str, rule_name: str, body: dict[str, Any]
    ) -> BranchProtection:
        """Gitea's EditBranchProtection: only the fields sent change; ``enable_push_whitelist`` only
        counts together with ``enable_push``."""
        repo = self._admin_repo(doer, owner, name)
        rule = self.state.protection_named(repo, rule_name)
        if rule is None:
            raise NotFound()
        resolved = self._resolve_whitelists(repo, body)
        with self.state.lock:
            if body.get("enable_push") is not None:
                if not _as_bool(body["enable_push"]):
                    rule.enable_push = rule.enable_push_whitelist = rule.push_whitelist_deploy_keys = False
                else:
                    rule.enable_push = True
                    if body.get("enable_push_whitelist") is not None:
                        if not _as_bool(body["enable_push_whitelist"]):
                            rule.enable_push_whitelist = rule.push_whitelist_deploy_keys = False
                        else:
                            rule.enable_push_whitelist = True
                            if body.get("push_whitelist_deploy_keys") is not None:
                                rule.push_whitelist_deploy_keys = _as_bool(body["push_whitelist_deploy_keys"])
            for field in _BOOL_FIELDS:
                if body.get(field) is not None:
                    setattr(rule, field, _as_bool(body[field]))
            approvals = body.get("required_approvals")
            if approvals is not None and int(approvals) >= 0:
                rule.required_approvals = int(approvals)
            if body.get("status_check_contexts") is not None:
                rule.status_check_contexts = _as_list(body["status_check_contexts"], "status_check_contexts")
            for field in ("protected_file_patterns", "unprotected_file_patterns"):
                if body.get(field) is not None:
                    setattr(rule, field, str(body[field]))
            self._apply_whitelists(repo, rule, resolved)
            rule.updated = self.forge.now()
        self.forge.log.record("repo", "branch protection edited", repo=repo.full_name, rule=rule_name, by=doer.login)
        return rule

    def delete_protection(self, doer: User, owner: str, name: str, rule_name: str) -> None:
        repo = self._admin_repo(doer, owner, name)
        rule = self.state.protection_named(repo, rule_name)
        if rule is None:
            raise NotFound()
        self.state.delete_protection(rule)
        self.forge.log.record("repo", "branch protection deleted", repo=repo.full_name, rule=rule_name)

    def branch_flags(self, repo: Repository, doer: User | None, branch: str) -> BranchFlags:
        rule = self.state.protection_for(repo, branch)
        if rule is None:
            return BranchFlags()
        if doer is None:
            return BranchFlags(rule, False, False)
        return BranchFlags(
            rule, self.state.can_push_protected(rule, doer, repo), self.state.can_merge_protected(rule, doer, repo)
        )

    def push_rules(self, repo: Repository, user: User | None, refs: Iterable[str]) -> list[tuple[str, str]]:
        """("<ref>", "allow"|"deny") for each protected branch a ``git push`` updates: the verdicts the
        pre-receive hook applies (after its own deletion and force-push checks)."""
        verdicts = []
        for ref in refs:
            if not ref.startswith("refs/heads/"):
                continue
            rule = self.state.protection_for(repo, ref[len("refs/heads/") :])
            if rule is not None:
                verdicts.append((ref, "allow" if self.state.can_push_protected(rule, user, repo) else "deny"))
        return verdicts

    def check_api_write(self, repo: Repository, doer: User, branch: str) -> None:
        """Gitea's VerifyBranchProtection for the contents API: 403 unless the doer may push there."""
        rule = self.state.protection_for(repo, branch)
        if rule is not None and not self.state.can_push_protected(rule, doer, repo):
            raise Forbidden(f"user cannot commit to repo [user: {doer.login.lower()}]")

    def check_branch_delete(self, repo: Repository, branch: str) -> None:
        if self.state.protection_for(repo, branch) is not None:
            raise Forbidden("branch protected")

    # -- pull requests ----------------------------------------------------------------------------
    def _parse_head(self, repo: Repository, head: str) -> str:
        """``branch``, ``owner:branch`` or ``owner/repo:branch``; only the same repository (no forks)."""
        if ":" not in head:
            return head
        target, _, branch = head.partition(":")
        owner, _, repo_name = target.partition("/")
        if owner.lower() != repo.owner_name.lower() or (repo_name and repo_name.lower() != repo.name.lower()):
            raise NotFound()
        return branch

    def _open_duplicate(self, repo: Repository, head: str, base: str, skip: int = 0) -> PullRequest | None:
        return next(
            (
                p
                for p in self.state.pulls_of(repo)
                if not p.closed and p.head_branch == head and p.base_branch == base and p.id != skip
            ),
            None,
        )

    @staticmethod
    def _already_exists(repo: Repository, pull: PullRequest) -> Conflict:
        return Conflict(
            f"pull request already exists for these targets [id: {pull.id}, issue_id: {pull.index}, "
            f"head_repo_id: {repo.id}, base_repo_id: {repo.id}, head_branch: {pull.head_branch}, "
            f"base_branch: {pull.base_branch}]"
        )

    def create_pull(self, doer: User, owner: str, name: str, body: dict[str, Any]) -> PullView:
        """Gitea's CreatePullRequest: any reader may open one between two branches of the repo."""
        repo, mode = self.forge.repo_for(doer, owner, name)
        for field in ("head", "base", "title"):
            if not str(body.get(field) or "").strip():
                raise Unprocessable(f"[{field.capitalize()}]: Required")
        head, base = str(body["head"]), str(body["base"])
        if head == base:
            raise Unprocessable("Invalid PullRequest: There are no changes between the head and the base")
        head_branch = self._parse_head(repo, head)
        bare = self._bare(repo)
        now = self.forge.now()
        with repo.lock:
            base_sha = bare.branch_sha(base)
            if base_sha is None:
                raise NotFound("BaseNotExist")
            head_sha = bare.branch_sha(head_branch)
            if head_sha is None:
                raise NotFound()
            existing = self._open_duplicate(repo, head_branch, base)
            if existing is not None:
                raise self._already_exists(repo, existing)
            pull = self.state.add_pull(
                repo,
                poster_id=doer.id,
                title=str(body["title"]),
                body=str(body.get("body") or ""),
                head_branch=head_branch,
                base_branch=base,
                head_sha=head_sha,
                merge_base=bare.merge_base(base_sha, head_sha) or base_sha,
                created=now,
                updated=now,
            )
            bare.set_ref(pull.ref, head_sha, f"pull #{pull.index}: opened")
        self.forge.log.record(
            "repo",
            "pull request opened",
            repo=repo.full_name,
            number=pull.index,
            head=head_branch,
            base=base,
            head_sha=head_sha,
            by=doer.login,
        )
        self._fire_pull(repo, pull, "opened", doer)
        return self.view(repo, pull, mode)

    def list_pulls(
        self, doer: User | None, owner: str, name: str, *, state: str = "", poster: str = "", sort: str = ""
    ) -> list[PullView]:
        """Gitea's ListPullRequests: ``state`` open/closed filters (anything else is all PRs, which is
        also what Gitea answers without the parameter), newest first unless ``sort`` says otherwise."""
        repo, mode = self.forge.repo_for(doer, owner, name)
        pulls = self.state.pulls_of(repo)
        if state in ("open", "closed"):
            pulls = [p for p in pulls if p.state == state]
        if poster:
            author = self.state.get_user(poster)
            if author is None:
                raise BadRequest(f"user does not exist [uid: 0, name: {poster}]")
            pulls = [p for p in pulls if p.poster_id == author.id]
        if sort == "oldest":
            pulls.sort(key=lambda p: (p.created, p.id))
        elif sort == "recentupdate":
            pulls.sort(key=lambda p: (p.updated, p.id), reverse=True)
        elif sort == "leastupdate":
            pulls.sort(key=lambda p: (p.updated, p.id))
        else:
            pulls.sort(key=lambda p: (p.created, p.id), reverse=True)
        return [self.view(repo, p, mode) for p in pulls]

    def get_pull(self, doer: User | None, owner: str, name: str, index: int) -> PullView:
        repo, mode, pull = self._repo_pull(doer, owner, name, index)
        return self.view(repo, pull, mode)

    def edit_pull(self, doer: User, owner: str, name: str, index: int, body: dict[str, Any]) -> PullView:
        """Gitea's EditPullRequest (title, body, state): the poster or a writer; 412 once merged."""
        repo, mode, pull = self._repo_pull(doer, owner, name, index)
        if pull.poster_id != doer.id and mode < AccessMode.WRITE:
            raise Forbidden("user should have a permission to write to a repo")
        events: list[tuple[str, dict[str, Any] | None]] = []
        bare = self._bare(repo)
        now = self.forge.now()
        with repo.lock:
            title = str(body.get("title") or "")
            if title and title != pull.title:
                events.append(("edited", {"title": {"from": pull.title}}))
                pull.title = title
            if body.get("body") is not None and str(body["body"]) != pull.body:
                events.append(("edited", {"body": {"from": pull.body}}))
                pull.body = str(body["body"])
            if body.get("state") is not None:
                wanted = str(body["state"])
                if pull.merged:
                    raise PreconditionFailed("cannot change state of this pull request, it was already merged")
                if wanted not in ("open", "closed"):
                    raise PreconditionFailed(f"unknown state: {wanted}")
                if wanted == "closed" and not pull.closed:
                    pull.head_sha = self._head_now(bare, pull)
                    bare.set_ref(pull.ref, pull.head_sha, f"pull #{pull.index}: closed")
                    pull.closed, pull.closed_at = True, now
                    events.append(("closed", None))
                elif wanted == "open" and pull.closed:
                    duplicate = self._open_duplicate(repo, pull.head_branch, pull.base_branch, skip=pull.id)
                    if duplicate is not None:
                        raise self._already_exists(repo, duplicate)
                    pull.closed, pull.closed_at = False, None
                    branch_head = bare.branch_sha(pull.head_branch)
                    if branch_head and branch_head != pull.head_sha:
                        pull.head_sha = branch_head
                        bare.set_ref(pull.ref, branch_head, f"pull #{pull.index}: reopened")
                    events.append(("reopened", None))
            if events:
                pull.updated = now
        for action, changes in events:
            self.forge.log.record("repo", f"pull request {action}", repo=repo.full_name, number=pull.index)
            self._fire_pull(repo, pull, action, doer, changes=changes)
        return self.view(repo, pull, mode)

    def is_merged(self, doer: User | None, owner: str, name: str, index: int) -> bool:
        _, _, pull = self._repo_pull(doer, owner, name, index)
        return pull.merged

    def files(self, doer: User | None, owner: str, name: str, index: int) -> tuple[Repository, str, list[FileChange]]:
        """(repo, head commit, changed files): the diff from the merge base to the head, as Gitea's
        GetPullRequestFiles compares it."""
        repo, mode, pull = self._repo_pull(doer, owner, name, index)
        view = self.view(repo, pull, mode)
        if not view.merge_base:
            return repo, view.head_sha, []
        return repo, view.head_sha, self._diff(self._bare(repo), view.merge_base, view.head_sha)

    def commits(self, doer: User | None, owner: str, name: str, index: int) -> tuple[Repository, list[Any]]:
        """The PR's commits, newest first: ``base..head`` while open, ``merge_base..head`` once merged."""
        repo, mode, pull = self._repo_pull(doer, owner, name, index)
        view = self.view(repo, pull, mode)
        bare = self._bare(repo)
        exclude = view.merge_base if pull.merged else (view.base_sha or view.merge_base)
        not_revs = [exclude] if exclude else []
        return repo, bare.log(view.head_sha, not_revs=not_revs, with_files=True)

    # -- merging ----------------------------------------------------------------------------------
    def approvals(self, pull: PullRequest, rule: BranchProtection) -> int:
        """Gitea's GetGrantedApprovalsCount: official, not dismissed (and not stale if the rule says)."""
        return sum(
            1
            for r in self.state.reviews_of(pull)
            if r.state is ReviewState.APPROVED
            and r.official
            and not r.dismissed
            and not (rule.ignore_stale_approvals and r.stale)
        )

    def _rejected(self, pull: PullRequest) -> bool:
        return any(
            r.state is ReviewState.REQUEST_CHANGES and r.official and not r.dismissed
            for r in self.state.reviews_of(pull)
        )

    def protection_blocker(
        self, repo: Repository, pull: PullRequest, rule: BranchProtection, base_sha: str, head_sha: str
    ) -> str | None:
        """Gitea's CheckPullBranchProtections, in its order; the reason, or None when it passes.

        Required status checks can never pass here: the embedded forge has no commit status API.
        """
        if rule.enable_status_check and rule.status_check_contexts:
            return "Not all required status checks successful"
        if rule.required_approvals and self.approvals(pull, rule) < rule.required_approvals:
            return "Does not have enough approvals"
        if rule.block_on_rejected_reviews and self._rejected(pull):
            return "There are requested changes"
        if rule.block_on_outdated_branch and not self._bare(repo).is_ancestor(base_sha, head_sha):
            return "The head branch is behind the base branch"
        return None

    def _merge_message(self, pull: PullRequest, style: str, body: dict[str, Any]) -> str:
        """Gitea's GetDefaultMergeMessage (or MergeTitleField), then MergeMessageField after a blank line."""
        title = str(body.get("MergeTitleField") or "").strip()
        if not title:
            if style == "squash":
                title = f"{pull.title} (#{pull.index})"
            else:
                title = (
                    f"Merge pull request '{pull.title}' (#{pull.index}) from {pull.head_branch} "
                    f"into {pull.base_branch}"
                )
        extra = str(body.get("MergeMessageField") or "").strip()
        return f"{title}\n\n{extra}" if extra else title

    def _make_merge(
        self,
        bare: BareRepo,
        pull: PullRequest,
        style: str,
        base_sha: str,
        head_sha: str,
        doer: User,
        message: str,
    ) -> str:
        """The new base commit for ``style``; raises Conflict (409) like Gitea's ErrMergeConflicts."""
        if bare.is_ancestor(head_sha, base_sha):
            return base_sha  # everything is merged already: nothing to commit
        if style == "fast-forward-only":
            if not bare.is_ancestor(base_sha, head_sha):
                raise Conflict("Merge Conflict Error: the base branch has diverged, fast-forward is not possible")
            return head_sha
        merged = self._merge_tree(bare, base_sha, head_sha)
        if merged.unrelated:
            raise Conflict("Merge UnrelatedHistories Error: refusing to merge unrelated histories")
        if merged.conflicts or merged.tree is None:
            raise Conflict(f"Merge Conflict Error: conflicting files: {', '.join(merged.conflicts)}")
        now = self.forge.now()
        committer = self._signature(doer, now)
        if style == "squash":
            poster = self.state.users_by_id.get(pull.poster_id) or doer
            commit = bare.commit_tree(merged.tree, [base_sha], message, self._signature(poster, now), committer)
        else:
            commit = bare.commit_tree(merged.tree, [base_sha, head_sha], message, committer, committer)
        return commit.sha

    def merge(self, doer: User, owner: str, name: str, index: int, body: dict[str, Any]) -> PullRequest:
        """Gitea's MergePullRequest: CheckPullMergeable's refusals (405, or 404 for a closed PR),
        branch protection, then a real merge pushed to the base branch with compare-and-swap."""
        repo, mode, pull = self._repo_pull(doer, owner, name, index)
        style = str(body.get("Do") or "")
        if not style:
            raise Unprocessable("[Do]: Required")
        if style not in MERGE_STYLES:
            raise Unprocessable(f"[Do]: In, must be one of {', '.join(MERGE_STYLES)}")
        bare = self._bare(repo)
        with repo.lock:
            if pull.merged:
                raise MethodNotAllowed("PR already merged")
            if pull.closed:
                raise NotFound()
            rule = self.state.protection_for(repo, pull.base_branch)
            allowed = (
                self.state.can_merge_protected(rule, doer, repo) if rule is not None else mode >= AccessMode.WRITE
            )
            if not allowed:
                raise MethodNotAllowed("User not allowed to merge PR")
            if style not in SUPPORTED_MERGE_STYLES:
                raise MethodNotAllowed(f"{style} is not allowed an allowed merge style for this repository")
            if is_work_in_progress(pull.title):
                raise MethodNotAllowed("Work in progress PRs cannot be merged")
            base_sha = bare.branch_sha(pull.base_branch)
            if base_sha is None:
                raise Conflict(f"branch does not exist [name: {pull.base_branch}]")
            head_sha = self._head_now(bare, pull)
            if rule is not None:
                reason = self.protection_blocker(repo, pull, rule, base_sha, head_sha)
                force = _as_bool(body.get("force_merge")) and mode >= AccessMode.ADMIN and not rule.apply_to_admins
                if reason is not None and not force:
                    raise MethodNotAllowed(f"not allowed to merge [reason: {reason}]")
            expected = str(body.get("head_commit_id") or "")
            if expected and expected != head_sha:
                raise Conflict("head out of date")
            message = self._merge_message(pull, style, body)
            new_sha = self._make_merge(bare, pull, style, base_sha, head_sha, doer, message)
            update = None
            if new_sha != base_sha:
                update = RefUpdate(f"refs/heads/{pull.base_branch}", base_sha, new_sha)
                try:
                    bare.update_ref(update.ref, update.new, update.old, f"merge: pull #{pull.index} by {doer.login}")
                except RefUpdateConflict as exc:
                    raise Conflict("merge push out of date") from exc
            now = self.forge.now()
            with self.state.lock:
                pull.merge_base = bare.merge_base(base_sha, head_sha) or base_sha
                pull.head_sha = head_sha
                pull.merged, pull.merged_at, pull.merged_by_id = True, now, doer.id
                pull.merge_commit_sha = new_sha
                pull.closed, pull.closed_at, pull.updated = True, now, now
            bare.set_ref(pull.ref, head_sha, f"pull #{pull.index}: merged")
            repo.updated = now
        self.forge.log.record(
            "push",
            "pull request merged",
            repo=repo.full_name,
            number=pull.index,
            style=style,
            base=pull.base_branch,
            before=base_sha,
            after=new_sha,
            by=doer.login,
        )
        if update is not None:
            self.forge.fire_ref_updates(repo, doer, [update])
        self._fire_pull(repo, pull, "closed", doer)
        if _as_bool(body.get("delete_branch_after_merge")):
            self._delete_head_after_merge(repo, pull, doer)
        return pull

    def _delete_head_after_merge(self, repo: Repository, pull: PullRequest, doer: User) -> None:
        """Gitea deletes the head branch only when the doer could (not default, not protected, write
        access) and no other open PR still uses it; otherwise the merge still succeeded."""
        if pull.head_branch == repo.default_branch or self.state.protection_for(repo, pull.head_branch):
            return
        if self.state.access_mode(doer, repo) < AccessMode.WRITE:
            return
        if any(p.head_branch == pull.head_branch and not p.closed for p in self.state.pulls_of(repo)):
            return
        bare = self._bare(repo)
        with repo.lock:
            sha = bare.branch_sha(pull.head_branch)
            if sha is None:
                return
            try:
                bare.delete_ref(f"refs/heads/{pull.head_branch}", sha)
            except RefUpdateConflict:
                return
        self.forge.log.record("repo", "branch deleted after merge", repo=repo.full_name, branch=pull.head_branch)
        self.forge.fire_ref_updates(repo, doer, [RefUpdate(f"refs/heads/{pull.head_branch}", sha, ZERO_SHA)])

    # -- reviews ----------------------------------------------------------------------------------
    def _content_changed(self, bare: BareRepo, old: str, new: str, base_sha: str | None) -> bool:
        """Gitea's checkIfPRContentChanged (``git diff new old merge-base``): some file differs in the
        new head from BOTH the old head and the merge base; merging the base in changes nothing."""
        if old == new:
            return False
        try:
            merge_base = bare.merge_base(base_sha, new) if base_sha else None
            if merge_base is None:
                return True
            return bool(bare.changed_paths(old, new) & bare.changed_paths(merge_base, new))
        except GitError:
            return True

    def _review(self, pull: PullRequest, review_id: int) -> Review:
        review = self.state.reviews.get(review_id)
        if review is None or review.pull_id != pull.id:
            raise NotFound()
        return review

    def list_reviews(
        self, doer: User | None, owner: str, name: str, index: int
    ) -> tuple[Repository, PullRequest, list[Review]]:
        repo, _, pull = self._repo_pull(doer, owner, name, index)
        return repo, pull, self.state.reviews_of(pull)

    def get_review(
        self, doer: User | None, owner: str, name: str, index: int, review_id: int
    ) -> tuple[Repository, PullRequest, Review]:
        repo, _, pull = self._repo_pull(doer, owner, name, index)
        return repo, pull, self._review(pull, review_id)

    def create_review(
        self, doer: User, owner: str, name: str, index: int, body: dict[str, Any]
    ) -> tuple[Repository, PullRequest, Review]:
        """Gitea's CreatePullReview + SubmitReview: the author may not approve or reject their own
        PR (422); change requests and comments need a body; ``official`` and ``stale`` are decided now."""
        repo, _, pull = self._repo_pull(doer, owner, name, index)
        event = str(body.get("event") or "")
        text = str(body.get("body") or "")
        has_comments = bool(body.get("comments"))
        if event == ReviewState.APPROVED:
            state = ReviewState.APPROVED
            if pull.poster_id == doer.id:
                raise Unprocessable("approve your own pull is not allowed")
        elif event == ReviewState.REQUEST_CHANGES:
            state = ReviewState.REQUEST_CHANGES
            if pull.poster_id == doer.id:
                raise Unprocessable("reject your own pull is not allowed")
        elif event == ReviewState.COMMENT:
            state = ReviewState.COMMENT
        else:
            raise Unprocessable(f"review event {event or 'PENDING'} is not supported by the embedded forge")
        if state is not ReviewState.APPROVED and not text.strip() and not has_comments:
            raise Unprocessable(f"review event {event} requires a body")
        bare = self._bare(repo)
        now = self.forge.now()
        with repo.lock:
            if pull.closed:
                raise Unprocessable("can't submit review for a closed or merged PR")
            head = self._head_now(bare, pull)
            commit_id = str(body.get("commit_id") or "") or head
            official = stale = False
            if state is not ReviewState.COMMENT:
                stale = commit_id != head and self._content_changed(
                    bare, commit_id, head, bare.branch_sha(pull.base_branch)
                )
                official = self.state.is_official_reviewer(
                    self.state.protection_for(repo, pull.base_branch), doer, repo
                )
            with self.state.lock:
                if official:  # only the reviewer's latest approve/reject counts
                    for earlier in self.state.reviews_of(pull):
                        if earlier.reviewer_id == doer.id:
                            earlier.official = False
                review = self.state.add_review(
                    pull,
                    reviewer_id=doer.id,
                    state=state,
                    body=text,
                    commit_id=commit_id,
                    official=official,
                    stale=stale,
                    created=now,
                    updated=now,
                )
                pull.updated = now
        self.forge.log.record(
            "repo",
            "pull review submitted",
            repo=repo.full_name,
            number=pull.index,
            state=str(state),
            official=official,
            stale=stale,
            by=doer.login,
        )
        event_type = REVIEW_HOOK_EVENT[state]
        self._fire(
            repo,
            event_type,
            lambda: self._payload(
                repo, pull, "reviewed", doer, review={"type": event_type, "content": review.body}
            ),
        )
        return repo, pull, review

    def delete_review(self, doer: User, owner: str, name: str, index: int, review_id: int) -> None:
        _, _, pull = self._repo_pull(doer, owner, name, index)
        review = self._review(pull, review_id)
        if not doer.is_admin and doer.id != review.reviewer_id:
            raise Forbidden("only admin and user itself can delete a review")
        self.state.delete_review(review)
        self.forge.log.record("repo", "pull review deleted", number=pull.index, review=review_id, by=doer.login)

    def dismiss_review(
        self,
        doer: User,
        owner: str,
        name: str,
        index: int,
        review_id: int,
        *,
        dismiss: bool,
        message: str = "",
        priors: bool = False,
    ) -> tuple[Repository, PullRequest, Review]:
        """Gitea's dismissReview: repo admins only, approvals and change requests only, open PRs only;
        ``priors`` dismisses the reviewer's earlier reviews too."""
        repo, mode, pull = self._repo_pull(doer, owner, name, index)
        if mode < AccessMode.ADMIN:
            raise Forbidden("Must be repo admin")
        review = self._review(pull, review_id)
        if review.state not in (ReviewState.APPROVED, ReviewState.REQUEST_CHANGES):
            raise Forbidden("not allowed to dismiss this review type")
        if pull.closed:
            raise Forbidden("can't dismiss a review associated to a closed or merged PR")
        now = self.forge.now()
        with self.state.lock:
            review.dismissed = dismiss
            review.updated = now
            if priors:
                for earlier in self.state.reviews_of(pull):
                    if earlier.reviewer_id == review.reviewer_id and not earlier.dismissed:
                        earlier.dismissed, earlier.updated = True, now
        self.forge.log.record(
            "repo",
            "pull review dismissed" if dismiss else "pull review undismissed",
            repo=repo.full_name,
            number=pull.index,
            review=review.id,
            reason=message,
            by=doer.login,
        )
        return repo, pull, review

    # -- ref updates -> synchronized pull requests ------------------------------------------------
    def after_ref_updates(self, repo: Repository, pusher: User, updates: Iterable[RefUpdate]) -> None:
        """Gitea's AddTestPullRequestTask for a push: every open PR whose head branch moved gets the new
        head in ``refs/pull/{index}/head``, its reviews marked stale if its content changed (approvals
        dismissed when the rule has ``dismiss_stale_approvals``), and a ``synchronized`` webhook."""
        synced: list[PullRequest] = []
        for update in updates:
            if not update.ref.startswith("refs/heads/") or update.new == ZERO_SHA:
                continue
            branch = update.ref[len("refs/heads/") :]
            for pull in self.state.pulls_of(repo):
                if pull.closed or pull.head_branch != branch or pull.head_sha == update.new:
                    continue
                self._synchronize(repo, pull, update.new)
                synced.append(pull)
        for pull in synced:
            self._fire_pull(repo, pull, "synchronized", pusher, event_type="pull_request_sync")

    def _synchronize(self, repo: Repository, pull: PullRequest, new: str) -> None:
        bare = self._bare(repo)
        now = self.forge.now()
        with repo.lock:
            old = pull.head_sha
            changed = self._content_changed(bare, old, new, bare.branch_sha(pull.base_branch))
            rule = self.state.protection_for(repo, pull.base_branch)
            dismissed = []
            with self.state.lock:
                reviews = self.state.reviews_of(pull)
                if changed:
                    for review in reviews:
                        review.stale = True
                        if (
                            rule is not None
                            and rule.dismiss_stale_approvals
                            and review.state is ReviewState.APPROVED
                            and not review.dismissed
                        ):
                            review.dismissed, review.updated = True, now
                            dismissed.append(review.id)
                for review in reviews:
                    if review.commit_id == new:
                        review.stale = False
                pull.head_sha, pull.updated = new, now
            bare.set_ref(pull.ref, new, f"pull #{pull.index}: synchronized")
        self.forge.log.record(
            "repo",
            "pull request synchronized",
            repo=repo.full_name,
            number=pull.index,
            before=old,
            after=new,
            content_changed=changed,
            dismissed_reviews=dismissed,
        )

