"""Gitea's JSON shapes (its ``services/convert`` package) built from our state and git objects.

Field names follow the swagger in ``tests/data/gitea-swagger-subset.json`` (a subset of
``contracts/gitea-api.v1.swagger.json``); the contract tests check every shape against it. Values
follow Gitea 1.22: times in RFC 3339 with ``Z`` for UTC, URLs derived from ``ROOT_URL`` (our
``app_url``), emails hidden behind ``{login}@noreply.{host}`` for anonymous callers, repository
``permissions`` for the calling user, unsigned commits with ``verified: false``.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from catalyst_sim.backends.embedded.forge.bare import CommitInfo, FileChange, Signature, TreeEntry
from catalyst_sim.backends.embedded.forge.models import (
    TEAM_UNITS,
    AccessMode,
    AccessToken,
    BranchProtection,
    ForgeState,
    Organization,
    PullRequest,
    Repository,
    Review,
    Team,
    User,
    Webhook,
)

GO_ZERO_TIME = "0001-01-01T00:00:00Z"
EPOCH_TIME = "1970-01-01T00:00:00Z"
UNSIGNED = {
    "verified": False,
    "reason": "gpg.error.not_signed_commit",
    "signature": "",
    "signer": None,
    "payload": "",
}


def rfc3339(when: datetime | None) -> str:
    """Go's ``time.Time`` JSON form at second precision: ``Z`` for UTC, else the offset."""
    if when is None:
        return GO_ZERO_TIME
    when = when.replace(microsecond=0)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if when.utcoffset() == UTC.utcoffset(None):
        return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return when.isoformat()


def _path(path: str) -> str:
    return quote(path, safe="/")


def _time_or_null(when: datetime | None) -> str | None:
    """Go's ``*time.Time``: null when unset (a PR's ``merged_at``/``closed_at``)."""
    return rfc3339(when) if when is not None else None


@dataclass
class PullView:
    """A pull request plus what git says about it now — what Gitea's ToAPIPullRequest reads."""

    repo: Repository
    pull: PullRequest
    mode: AccessMode  # the viewer's access (the embedded repositories' ``permissions``)
    base_sha: str | None
    head_sha: str
    head_ref: str  # the head branch while it exists, else refs/pull/{index}/head
    merge_base: str
    mergeable: bool
    draft: bool
    additions: int = 0
    deletions: int = 0
    changed_files: int = 0


class Shapes:
    """Builds response objects; needs the state to map commit emails to users."""

    def __init__(self, state: ForgeState, app_url: str = "http://127.0.0.1/") -> None:
        self.state = state
        self.app_url = app_url

    # -- urls -------------------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return f"{self.app_url}api/v1/"

    @property
    def swagger_url(self) -> str:
        return f"{self.app_url}api/swagger"

    @property
    def host(self) -> str:
        return urlsplit(self.app_url).hostname or "localhost"

    def repo_html(self, repo: Repository) -> str:
        return f"{self.app_url}{quote(repo.owner_name)}/{quote(repo.name)}"

    def repo_api(self, repo: Repository) -> str:
        return f"{self.api_url}repos/{quote(repo.owner_name)}/{quote(repo.name)}"

    def clone_url(self, repo: Repository) -> str:
        return f"{self.repo_html(repo)}.git"

    def avatar(self, key: str) -> str:
        return f"{self.app_url}avatars/{hashlib.md5(key.encode(), usedforsecurity=False).hexdigest()}"

    # -- users and orgs ---------------------------------------------------------------------------
    def user(self, user: User, doer: User | None = None) -> dict[str, Any]:
        signed = doer is not None
        authed = signed and (doer.is_admin or doer.id == user.id)  # type: ignore[union-attr]
        return {
            "id": user.id,
            "login": user.login,
            "login_name": "",
            "source_id": 0,
            "full_name": user.full_name,
            "email": user.email if signed else f"{user.login.lower()}@noreply.{self.host}",
            "avatar_url": self.avatar(user.email.lower()),
            "html_url": f"{self.app_url}{quote(user.login)}",
            "language": "",
            "is_admin": user.is_admin if authed else False,
            "last_login": rfc3339(user.last_login) if authed else EPOCH_TIME,
            "created": rfc3339(user.created),
            "restricted": user.restricted,
            "active": user.active if authed else False,
            "prohibit_login": user.prohibit_login if authed else False,
            "location": user.location,
            "website": user.website,
            "description": user.description,
            "visibility": str(user.visibility),
            "followers_count": 0,
            "following_count": 0,
            "starred_repos_count": 0,
            "username": user.login,
        }

    def org_as_user(self, org: Organization) -> dict[str, Any]:
        """An org where Gitea renders a User (a repository's ``owner``): orgs are user rows there."""
        return {
            "id": org.id,
            "login": org.name,
            "login_name": "",
            "source_id": 0,
            "full_name": org.full_name,
            "email": org.email,
            "avatar_url": self.avatar(f"org-{org.id}"),
            "html_url": f"{self.app_url}{quote(org.name)}",
            "language": "",
            "is_admin": False,
            "last_login": EPOCH_TIME,
            "created": rfc3339(org.created),
            "restricted": False,
            "active": False,
            "prohibit_login": False,
            "location": org.location,
            "website": org.website,
            "description": org.description,
            "visibility": str(org.visibility),
            "followers_count": 0,
            "following_count": 0,
            "starred_repos_count": 0,
            "username": org.name,
        }

    def organization(self, org: Organization) -> dict[str, Any]:
        return {
            "id": org.id,
            "name": org.name,
            "full_name": org.full_name,
            "email": org.email,
            "avatar_url": self.avatar(f"org-{org.id}"),
            "description": org.description,
            "website": org.website,
            "location": org.location,
            "visibility": str(org.visibility),
            "repo_admin_change_team_access": org.repo_admin_change_team_access,
            "username": org.name,
        }

    def access_token(self, token: AccessToken, *, reveal: bool) -> dict[str, Any]:
        return {
            "id": token.id,
            "name": token.name,
            "sha1": token.token if reveal else "",
            "token_last_eight": token.last_eight,
            "scopes": list(token.scopes),
        }

    # -- repositories -----------------------------------------------------------------------------
    def repository(self, repo: Repository, mode: AccessMode, doer: User | None = None) -> dict[str, Any]:
        owner = self.state.owner_of(repo)
        owner_json = self.org_as_user(owner) if isinstance(owner, Organization) else self.user(owner, doer)
        html = self.repo_html(repo)
        return {
            "id": repo.id,
            "owner": owner_json,
            "name": repo.name,
            "full_name": repo.full_name,
            "description": repo.description,
            "empty": repo.empty,
            "private": repo.private,
            "fork": False,
            "template": repo.template,
            "parent": None,
            "mirror": False,
            "size": 0,
            "language": "",
            "languages_url": f"{self.repo_api(repo)}/languages",
            "html_url": html,
            "url": self.repo_api(repo),
            "link": "",
            "ssh_url": f"git@{self.host}:{repo.full_name}.git",
            "clone_url": self.clone_url(repo),
            "original_url": "",
            "website": repo.website,
            "stars_count": 0,
            "forks_count": 0,
            "watchers_count": 0,
            "open_issues_count": 0,
            "open_pr_counter": sum(1 for p in self.state.pulls_of(repo) if not p.closed),
            "release_counter": 0,
            "default_branch": repo.default_branch,
            "archived": repo.archived,
            "created_at": rfc3339(repo.created),
            "updated_at": rfc3339(repo.updated),
            "archived_at": EPOCH_TIME,
            "permissions": {
                "admin": mode >= AccessMode.ADMIN,
                "push": mode >= AccessMode.WRITE,
                "pull": mode >= AccessMode.READ,
            },
            "has_issues": True,
            "internal_tracker": {
                "enable_time_tracker": True,
                "allow_only_contributors_to_track_time": True,
                "enable_issue_dependencies": True,
            },
            "has_wiki": True,
            "has_pull_requests": True,
            "has_projects": True,
            "has_releases": True,
            "has_packages": True,
            "has_actions": False,
            "ignore_whitespace_conflicts": False,
            "allow_merge_commits": True,
            "allow_rebase": True,
            "allow_rebase_explicit": True,
            "allow_squash_merge": True,
            "allow_fast_forward_only_merge": True,
            "allow_rebase_update": True,
            "default_delete_branch_after_merge": False,
            "default_merge_style": "merge",
            "default_allow_maintainer_edit": False,
            "avatar_url": "",
            "internal": False,
            "mirror_interval": "",
            "object_format_name": "sha1",
            "mirror_updated": GO_ZERO_TIME,
            "repo_transfer": None,
            "topics": None,
        }

    # -- commits ----------------------------------------------------------------------------------
    def _login_for(self, email: str) -> str:
        user = self.state.user_by_email(email)
        return user.login if user else ""

    def payload_user(self, signature: Signature) -> dict[str, Any]:
        return {
            "name": signature.name,
            "email": signature.email,
            "username": self._login_for(signature.email),
        }

    def payload_commit(
        self, repo: Repository, commit: CommitInfo, *, with_files: bool = False, verification: bool = True
    ) -> dict[str, Any]:
        """Gitea's PayloadCommit: a branch's head (verification set) or a pushed commit (file lists)."""
        added, removed, modified = commit.files_by_status() if with_files else (None, None, None)
        return {
            "id": commit.sha,
            "message": commit.message,
            "url": f"{self.repo_html(repo)}/commit/{commit.sha}",
            "author": self.payload_user(commit.author),
            "committer": self.payload_user(commit.committer),
            "verification": dict(UNSIGNED) if verification else None,
            "timestamp": rfc3339(commit.author.when),
            "added": added,
            "removed": removed,
            "modified": modified,
        }

    def branch(
        self,
        repo: Repository,
        name: str,
        commit: CommitInfo,
        mode: AccessMode,
        *,
        rule: BranchProtection | None = None,
        can_push: bool | None = None,
        can_merge: bool | None = None,
    ) -> dict[str, Any]:
        """Gitea's ToBranch: protection fields from the governing rule; the rule name only for admins."""
        writer = mode >= AccessMode.WRITE
        return {
            "name": name,
            "commit": self.payload_commit(repo, commit),
            "protected": rule is not None,
            "required_approvals": rule.required_approvals if rule else 0,
            "enable_status_check": rule.enable_status_check if rule else False,
            "status_check_contexts": list(rule.status_check_contexts) if rule else [],
            "user_can_push": writer if can_push is None else can_push,
            "user_can_merge": writer if can_merge is None else can_merge,
            "effective_branch_protection_name": rule.rule_name if rule and mode >= AccessMode.ADMIN else "",
        }

    def commit_meta(
        self, repo: Repository, sha: str, when: datetime | None, kind: str = "commits"
    ) -> dict[str, Any]:
        return {"url": f"{self.repo_api(repo)}/git/{kind}/{sha}", "sha": sha, "created": rfc3339(when)}

    @staticmethod
    def commit_user(signature: Signature) -> dict[str, Any]:
        return {"name": signature.name, "email": signature.email, "date": rfc3339(signature.when)}

    def commit(
        self,
        repo: Repository,
        commit: CommitInfo,
        *,
        doer: User | None = None,
        stat: bool = True,
        files: bool = True,
        verification: bool = True,
    ) -> dict[str, Any]:
        """Gitea's Commit (``GET .../commits``, ``GET .../git/commits/{sha}``)."""
        author = self.state.user_by_email(commit.author.email)
        committer = self.state.user_by_email(commit.committer.email)
        url = f"{self.repo_api(repo)}/git/commits/{commit.sha}"
        result: dict[str, Any] = {
            "url": url,
            "sha": commit.sha,
            "created": rfc3339(commit.committer.when),
            "html_url": f"{self.repo_html(repo)}/commit/{commit.sha}",
            "commit": {
                "url": url,
                "author": self.commit_user(commit.author),
                "committer": self.commit_user(commit.committer),
                "message": commit.message,
                "tree": self.commit_meta(repo, commit.tree, commit.committer.when, "trees"),
                "verification": dict(UNSIGNED) if verification else None,
            },
            "author": self.user(author, doer) if author else None,
            "committer": self.user(committer, doer) if committer else None,
            "parents": [self.commit_meta(repo, p, None) for p in commit.parents],
        }
        if files:
            result["files"] = [{"filename": f.path, "status": f.status} for f in commit.files or []]
        if stat:
            additions = sum(f.additions for f in commit.files or [])
            deletions = sum(f.deletions for f in commit.files or [])
            result["stats"] = {"total": additions + deletions, "additions": additions, "deletions": deletions}
        return result

    def file_commit(self, repo: Repository, commit: CommitInfo) -> dict[str, Any]:
        """Gitea's FileCommitResponse (the ``commit`` of a contents change)."""
        return {
            "url": f"{self.repo_api(repo)}/git/commits/{commit.sha}",
            "sha": commit.sha,
            "created": rfc3339(commit.committer.when),
            "html_url": f"{self.repo_html(repo)}/commit/{commit.sha}",
            "author": self.commit_user(commit.author),
            "committer": self.commit_user(commit.committer),
            "parents": [self.commit_meta(repo, p, None) for p in commit.parents],
            "message": commit.message,
            "tree": self.commit_meta(repo, commit.tree, commit.committer.when, "trees"),
        }

    # -- contents ---------------------------------------------------------------------------------
    def contents(
        self,
        repo: Repository,
        entry: TreeEntry,
        *,
        ref: str,
        ref_type: str,
        last_commit: CommitInfo | None,
        content: bytes | None,
        for_list: bool,
    ) -> dict[str, Any]:
        """Gitea's ContentsResponse; ``content`` is only filled for a single file, never in a list."""
        self_url = f"{self.repo_api(repo)}/contents/{_path(entry.path)}?ref={quote(ref, safe='')}"
        html_url = f"{self.repo_html(repo)}/src/{ref_type}/{_path(ref)}/{_path(entry.path)}"
        git_url = f"{self.repo_api(repo)}/git/{entry.type}s/{entry.sha}"
        if entry.is_dir:
            kind = "dir"
        elif entry.is_symlink:
            kind = "symlink"
        elif entry.is_submodule:
            kind = "submodule"
        else:
            kind = "file"
        result: dict[str, Any] = {
            "name": entry.name,
            "path": entry.path,
            "sha": entry.sha,
            "last_commit_sha": last_commit.sha if last_commit else None,
            "last_commit_when": rfc3339(last_commit.committer.when) if last_commit else None,
            "type": kind,
            "size": entry.size,
            "encoding": None,
            "content": None,
            "target": None,
            "url": self_url,
            "html_url": html_url,
            "git_url": git_url,
            "download_url": None,
            "submodule_git_url": None,
            "_links": {"self": self_url, "git": git_url, "html": html_url},
        }
        if kind == "file" and content is not None and not for_list:
            result["encoding"] = "base64"
            result["content"] = base64.b64encode(content).decode()
        if kind == "symlink" and content is not None:
            result["target"] = content.decode(errors="replace")
        if kind in ("file", "symlink"):
            result["download_url"] = f"{self.repo_html(repo)}/raw/{ref_type}/{_path(ref)}/{_path(entry.path)}"
        if kind == "submodule":
            result["html_url"] = result["git_url"] = None
            result["_links"] = {"self": self_url, "git": None, "html": None}
        return result

    # -- hooks ------------------------------------------------------------------------------------
    @staticmethod
    def hook(hook: Webhook) -> dict[str, Any]:
        return {
            "id": hook.id,
            "type": hook.type,
            "branch_filter": hook.branch_filter,
            "config": {"url": hook.url, "content_type": hook.content_type, "http_method": "post"},
            "events": list(hook.events),
            "authorization_header": hook.authorization_header,
            "active": hook.active,
            "updated_at": rfc3339(hook.updated),
            "created_at": rfc3339(hook.created),
        }

    # -- teams ------------------------------------------------------------------------------------
    def team(self, team: Team, org: Organization | None = None) -> dict[str, Any]:
        """Gitea's Team; ``organization`` only where Gitea loads it (get/create/edit, not lists)."""
        units = team.unit_modes()
        return {
            "id": team.id,
            "name": team.name,
            "description": team.description,
            "organization": self.organization(org) if org is not None else None,
            "includes_all_repositories": team.includes_all_repositories,
            "permission": team.permission,
            "units": [u for u in TEAM_UNITS if u in units],
            "units_map": units,
            "can_create_org_repo": team.can_create_org_repo,
        }

    # -- pull requests ----------------------------------------------------------------------------
    def pull_html(self, repo: Repository, pull: PullRequest) -> str:
        return f"{self.repo_html(repo)}/pulls/{pull.index}"

    def _user_or_null(self, user_id: int | None, doer: User | None) -> dict[str, Any] | None:
        with self.state.lock:
            user = self.state.users_by_id.get(user_id) if user_id is not None else None
        return self.user(user, doer) if user is not None else None

    def pull_request(self, view: PullView, doer: User | None = None) -> dict[str, Any]:
        """Gitea's PullRequest (services/convert/pull.go): ``url`` is the HTML URL there too."""
        repo, pull = view.repo, view.pull
        html = self.pull_html(repo, pull)
        repo_json = self.repository(repo, view.mode, doer)
        return {
            "id": pull.id,
            "url": html,
            "number": pull.index,
            "user": self._user_or_null(pull.poster_id, doer),
            "title": pull.title,
            "body": pull.body,
            "labels": [],
            "milestone": None,
            "assignee": None,
            "assignees": None,
            "requested_reviewers": [],
            "requested_reviewers_teams": [],
            "state": pull.state,
            "draft": view.draft,
            "is_locked": False,
            "comments": 0,
            "review_comments": 0,
            "additions": view.additions,
            "deletions": view.deletions,
            "changed_files": view.changed_files,
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "mergeable": view.mergeable,
            "merged": pull.merged,
            "merged_at": _time_or_null(pull.merged_at) if pull.merged else None,
            "merge_commit_sha": pull.merge_commit_sha if pull.merged else None,
            "merged_by": self._user_or_null(pull.merged_by_id, doer) if pull.merged else None,
            "allow_maintainer_edit": False,
            "base": {
                "label": pull.base_branch,
                "ref": pull.base_branch,
                "sha": view.base_sha or "",
                "repo_id": repo.id,
                "repo": repo_json,
            },
            "head": {
                "label": pull.head_branch,
                "ref": view.head_ref,
                "sha": view.head_sha,
                "repo_id": repo.id,
                "repo": repo_json,
            },
            "merge_base": view.merge_base,
            "due_date": None,
            "created_at": rfc3339(pull.created),
            "updated_at": rfc3339(pull.updated),
            "closed_at": _time_or_null(pull.closed_at) if pull.closed else None,
            "pin_order": 0,
            "flow": 0,
        }

    def review(self, repo: Repository, pull: PullRequest, review: Review, doer: User | None = None) -> dict[str, Any]:
        """Gitea's PullReview; ``html_url`` points at the review's comment anchor."""
        html = self.pull_html(repo, pull)
        return {
            "id": review.id,
            "user": self._user_or_null(review.reviewer_id, doer),
            "team": None,
            "state": str(review.state),
            "body": review.body,
            "commit_id": review.commit_id,
            "stale": review.stale,
            "official": review.official,
            "dismissed": review.dismissed,
            "comments_count": 0,
            "submitted_at": rfc3339(review.created),
            "updated_at": rfc3339(review.updated),
            "html_url": f"{html}#issuecomment-{review.id}",
            "pull_request_url": html,
        }

    def changed_file(self, repo: Repository, change: FileChange, commit: str) -> dict[str, Any]:
        """Gitea's ToChangedFile: a modification is "changed", a mode-only change "unchanged"."""
        status = {"added": "added", "deleted": "deleted", "renamed": "renamed", "copied": "copied"}.get(
            change.status, "changed" if change.additions or change.deletions else "unchanged"
        )
        return {
            "filename": change.path,
            "previous_filename": change.previous_path if status == "renamed" else "",
            "status": status,
            "additions": change.additions,
            "deletions": change.deletions,
            "changes": change.additions + change.deletions,
            "html_url": f"{self.repo_html(repo)}/src/commit/{commit}/{_path(change.path)}",
            "contents_url": f"{self.repo_api(repo)}/contents/{_path(change.path)}?ref={commit}",
            "raw_url": f"{self.repo_html(repo)}/raw/commit/{commit}/{_path(change.path)}",
        }

    # -- branch protection ------------------------------------------------------------------------
    def _user_names(self, ids: list[int]) -> list[str]:
        with self.state.lock:
            return [self.state.users_by_id[i].login for i in ids if i in self.state.users_by_id]

    def _team_names(self, ids: list[int]) -> list[str]:
        names = []
        for team_id in ids:
            found = self.state.get_team(team_id)
            if found is not None:
                names.append(found[1].name)
        return names

    def branch_protection(self, rule: BranchProtection) -> dict[str, Any]:
        """Gitea's ToBranchProtection: whitelists by name; ``branch_name`` only for a plain rule."""
        return {
            "branch_name": rule.rule_name if rule.is_plain else "",
            "rule_name": rule.rule_name,
            "enable_push": rule.enable_push,
            "enable_push_whitelist": rule.enable_push_whitelist,
            "push_whitelist_usernames": self._user_names(rule.push_whitelist_user_ids),
            "push_whitelist_teams": self._team_names(rule.push_whitelist_team_ids),
            "push_whitelist_deploy_keys": rule.push_whitelist_deploy_keys,
            "enable_merge_whitelist": rule.enable_merge_whitelist,
            "merge_whitelist_usernames": self._user_names(rule.merge_whitelist_user_ids),
            "merge_whitelist_teams": self._team_names(rule.merge_whitelist_team_ids),
            "enable_status_check": rule.enable_status_check,
            "status_check_contexts": list(rule.status_check_contexts),
            "required_approvals": rule.required_approvals,
            "enable_approvals_whitelist": rule.enable_approvals_whitelist,
            "approvals_whitelist_username": self._user_names(rule.approvals_whitelist_user_ids),
            "approvals_whitelist_teams": self._team_names(rule.approvals_whitelist_team_ids),
            "block_on_rejected_reviews": rule.block_on_rejected_reviews,
            "block_on_official_review_requests": rule.block_on_official_review_requests,
            "block_on_outdated_branch": rule.block_on_outdated_branch,
            "dismiss_stale_approvals": rule.dismiss_stale_approvals,
            "ignore_stale_approvals": rule.ignore_stale_approvals,
            "require_signed_commits": rule.require_signed_commits,
            "protected_file_patterns": rule.protected_file_patterns,
            "unprotected_file_patterns": rule.unprotected_file_patterns,
            "apply_to_admins": rule.apply_to_admins,
            "created_at": rfc3339(rule.created),
            "updated_at": rfc3339(rule.updated),
        }
