"""What the embedded Gitea does, independent of HTTP: the moto-style "backend" of the forge.

The handlers in ``api.py`` and ``smart_http.py`` authenticate, parse and render; everything else —
permission checks with Gitea's status codes, teams, the repository lifecycle on disk, Gitea's rules
for contents changes (422 for an existing file or a stale ``sha``, 404 for a missing one, 403 on a
protected branch), branch creation and deletion, and turning ref updates into
``push``/``create``/``delete`` webhooks and synchronized pull requests — is here or in ``pulls.py``
(:class:`~catalyst_sim.backends.embedded.forge.pulls.PullService`, reached as ``service.pulls``), so
the same rules apply whether a ref moved through the API, a merge or ``git push``.

Ref-changing work holds the repository's lock; the webhook payloads are built only when some hook
wants the event and are handed to the dispatcher, which delivers them off the request path.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from catalyst_sim.backends.embedded.forge.bare import (
    ZERO_SHA,
    BareRepo,
    BranchHead,
    CommitInfo,
    GitError,
    RefUpdate,
    RefUpdateConflict,
    Signature,
    TreeEntry,
    TreeWrite,
    git_env,
)
from catalyst_sim.backends.embedded.forge.convert import Shapes
from catalyst_sim.backends.embedded.forge.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Internal,
    NotFound,
    Unauthorized,
    Unprocessable,
)
from catalyst_sim.backends.embedded.forge.eventlog import ForgeLog
from catalyst_sim.backends.embedded.forge.models import (
    HOOK_TYPES,
    TEAM_UNITS,
    AccessMode,
    AccessToken,
    ForgeState,
    Organization,
    Repository,
    Team,
    User,
    Webhook,
    expand_hook_events,
    glob_regex,
    min_unit_mode,
    mode_of,
)
from catalyst_sim.backends.embedded.forge.pulls import PullService
from catalyst_sim.backends.embedded.forge.webhooks import WebhookDispatcher
from catalyst_sim.clock import Clock


@dataclass(frozen=True)
class Settings:
    """The few ``app.ini`` values whose defaults shape API answers."""

    default_branch: str = "main"
    default_paging_num: int = 30  # [api] DEFAULT_PAGING_NUM
    max_response_items: int = 50  # [api] MAX_RESPONSE_ITEMS
    commits_range_size: int = 50  # [git] COMMITS_RANGE_SIZE
    feed_max_commit_num: int = 5  # [ui] FEED_MAX_COMMIT_NUM: commits per push payload
    new_ref_commit_limit: int = 10  # CommitsBeforeLimit(10) for a pushed new branch
    version: str = "1.22.0+catalyst-sim"  # semver with build metadata: Gitea SDKs parse it


@dataclass(frozen=True)
class Identity:
    name: str
    email: str


@dataclass
class FileOperation:
    """One entry of ChangeFilesOptions.files (content already base64-decoded)."""

    operation: str  # create | update | delete
    path: str
    content: bytes | None = None
    sha: str | None = None
    from_path: str | None = None


@dataclass
class ChangeRequest:
    files: list[FileOperation]
    message: str = ""
    branch: str = ""
    new_branch: str = ""
    author: Identity | None = None
    committer: Identity | None = None
    author_date: datetime | None = None
    committer_date: datetime | None = None
    signoff: bool = False


@dataclass
class ChangeResult:
    commit: CommitInfo
    branch: str
    files: list[tuple[FileOperation, TreeEntry | None, bytes | None]]


@dataclass
class ContentsResult:
    ref: str
    ref_type: str
    commit: str
    is_dir: bool
    items: list[tuple[TreeEntry, CommitInfo | None, bytes | None]] = field(default_factory=list)


_REF_FORMAT_CACHE: dict[str, bool] = {}


def valid_branch_name(name: str) -> bool:
    """``git check-ref-format --branch`` decides, as Gitea's GitRefName binding does."""
    if name in _REF_FORMAT_CACHE:
        return _REF_FORMAT_CACHE[name]
    if not name or name.startswith("-") or name == "HEAD":
        return False
    ok = (
        subprocess.run(
            ["git", "check-ref-format", f"refs/heads/{name}"],
            env=git_env(),
            capture_output=True,
            timeout=30,
            check=False,
        ).returncode
        == 0
    )
    _REF_FORMAT_CACHE[name] = ok
    return ok


def clean_tree_path(path: str) -> str:
    """Gitea's tree-path cleaning: relative, no ``..`` and no ``.git`` component (else 422)."""
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if any(p == ".." or p.lower() == ".git" for p in parts):
        raise Unprocessable(f"path contains a malformed path component [path: {path}]")
    return "/".join(parts)


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Gitea's branch_filter is a gobwas glob without separators: ``*`` also crosses ``/``."""
    return glob_regex(pattern)


def branch_filter_matches(branch_filter: str, branch: str) -> bool:
    if branch_filter in ("", "*"):
        return True
    return glob_to_regex(branch_filter).match(branch) is not None


def _short_ref(ref: str) -> tuple[str, str]:
    for prefix, kind in (("refs/heads/", "branch"), ("refs/tags/", "tag")):
        if ref.startswith(prefix):
            return ref[len(prefix) :], kind
    return ref, "other"


class ForgeService:
    def __init__(
        self,
        state: ForgeState,
        root: Path,
        clock: Clock,
        log: ForgeLog,
        dispatcher: WebhookDispatcher,
        settings: Settings | None = None,
    ) -> None:
        self.state = state
        self.root = root
        self.clock = clock
        self.log = log
        self.dispatcher = dispatcher
        self.settings = settings or Settings()
        self.shapes = Shapes(state)
        self.pulls = PullService(self)

    @property
    def app_url(self) -> str:
        return self.shapes.app_url

    @app_url.setter
    def app_url(self, value: str) -> None:
        self.shapes.app_url = value.rstrip("/") + "/"

    def now(self) -> datetime:
        return self.clock.now()

    @property
    def version(self) -> str:
        return self.settings.version

    def bare(self, repo: Repository) -> BareRepo:
        return BareRepo(repo.path)

    def _init_template(self) -> Path:
        """The ``git init`` template every new repository starts from (no Org name starts with a dot)."""
        template = self.root / ".git-template"
        if not (template / "hooks" / "pre-receive").exists():  # first use, or the root was wiped
            BareRepo.write_template(template)
        return template

    # -- users and tokens -------------------------------------------------------------------------
    def create_user(
        self,
        doer: User | None,
        *,
        username: str,
        email: str,
        password: str,
        full_name: str = "",
        must_change_password: bool | None = None,
        restricted: bool = False,
        visibility: str = "public",
        admin: bool = False,
    ) -> User:
        if doer is None:
            raise Unauthorized("token is required")
        if not doer.is_admin:
            raise Forbidden("user should be the site admin")
        if not username or not email:
            raise Unprocessable("[Username Email]: Required")
        if not password:
            raise BadRequest("PasswordIsRequired")
        if len(password) < 8:
            raise BadRequest("password is too short")
        user = self.state.create_user(
            username,
            email,
            password,
            now=self.now(),
            is_admin=admin,
            full_name=full_name,
            # Gitea defaults must_change_password to true when the field is omitted.
            must_change_password=True if must_change_password is None else must_change_password,
            restricted=restricted,
            visibility=visibility or "public",
        )
        self.log.record("api", "user created", login=user.login, admin=admin)
        return user

    def create_token(self, doer: User, username: str, name: str, scopes: Iterable[str]) -> AccessToken:
        target = self.state.get_user(username)
        if target is None:
            raise NotFound(errors=[f"user does not exist [uid: 0, name: {username}]"])
        if not doer.is_admin and doer.id != target.id:
            raise Forbidden("doer should be the site admin or be same as the contextUser")
        token = self.state.create_token(target, name, scopes, now=self.now())
        self.log.record("api", "token created", login=target.login, name=name, scopes=list(token.scopes))
        return token

    # -- organizations ----------------------------------------------------------------------------
    def create_org(self, doer: User, **fields: Any) -> Organization:
        if doer.restricted:
            raise Forbidden("Create organization not allowed")
        org = self.state.create_org(doer, now=self.now(), **fields)
        self.log.record("repo", "org created", org=org.name, owner=doer.login)
        return org

    def visible_org(self, doer: User | None, name: str) -> Organization:
        org = self.state.get_org(name)
        if org is None or not self.state.org_visible(doer, org):
            raise NotFound(errors=[f"user redirect does not exist [name: {name.lower()}]"])
        return org

    def list_orgs(self, doer: User | None) -> list[Organization]:
        with self.state.lock:
            orgs = sorted(self.state.orgs.values(), key=lambda o: o.id)
        return [o for o in orgs if self.state.org_visible(doer, o)]

    def delete_org(self, doer: User | None, name: str) -> None:
        org = self.visible_org(doer, name)
        self.state.require_org_owner(doer, org)
        self.state.delete_org(org)
        self.log.record("repo", "org deleted", org=org.name)

    # -- teams ------------------------------------------------------------------------------------
    @staticmethod
    def _units_of(body: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
        raw_map = body.get("units_map")
        units_map = (
            {str(u): str(m) for u, m in raw_map.items() if str(u) in TEAM_UNITS} if isinstance(raw_map, dict) else {}
        )
        return units_map, [str(u) for u in body.get("units") or [] if str(u) in TEAM_UNITS]

    def _team_units(self, body: dict[str, Any], permission: str) -> tuple[str, dict[str, str] | None]:
        """Gitea's CreateTeam unit rules: below admin a team needs ``units_map`` (its coarse permission
        becomes the weakest unit's) or ``units`` (each at the permission) — without either Gitea answers
        500 "units permission should not be empty"; an admin team gets every unit."""
        units_map, units = self._units_of(body)
        if mode_of(permission) < AccessMode.ADMIN and units_map:
            permission = min_unit_mode(units_map)
        if mode_of(permission) >= AccessMode.ADMIN:
            return permission, None
        if units_map:
            return permission, units_map
        if units:
            return permission, {u: permission for u in units}
        raise Internal("units permission should not be empty")

    @staticmethod
    def _team_name(body: dict[str, Any]) -> str:
        name = str(body.get("name") or "")
        if not name:
            raise Unprocessable("[Name]: Required")
        if len(name) > 255 or not re.fullmatch(r"[-.\w]+", name):
            raise Unprocessable(
                "[Name]: Name should contain only alphanumeric, dash ('-'), underscore ('_') and dot ('.') characters."
            )
        return name

    @staticmethod
    def _team_permission(body: dict[str, Any]) -> str:
        permission = str(body.get("permission") or "")
        if permission and permission not in ("read", "write", "admin"):
            raise Unprocessable("[Permission]: In, must be one of read, write, admin")
        return permission or "none"

    def list_teams(self, doer: User, org_name: str) -> tuple[Organization, list[Team]]:
        """Gitea's ListTeams: org members (and site admins) only."""
        org = self.visible_org(doer, org_name)
        if not doer.is_admin and doer.id not in org.members():
            raise Forbidden("Must be an organization member")
        with self.state.lock:
            return org, sorted(org.teams.values(), key=lambda t: t.name.lower())

    def create_team(self, doer: User, org_name: str, body: dict[str, Any]) -> tuple[Organization, Team]:
        org = self.visible_org(doer, org_name)
        self.state.require_org_owner(doer, org)
        name = self._team_name(body)
        permission, units_map = self._team_units(body, self._team_permission(body))
        team = self.state.add_team(
            org,
            name,
            permission,
            includes_all_repositories=bool(body.get("includes_all_repositories")),
            description=str(body.get("description") or ""),
            can_create_org_repo=bool(body.get("can_create_org_repo")),
            units_map=units_map,
        )
        self.log.record("repo", "team created", org=org.name, team=team.name, permission=permission, by=doer.login)
        return org, team

    def team_for(self, doer: User, team_id: int, *, owner: bool = False) -> tuple[Organization, Team]:
        """Gitea's orgAssignment + reqTeamMembership (+ reqOrgOwnership for writes): site admins and org
        owners see every team, members their own (403 for another team), outsiders nothing (404)."""
        found = self.state.get_team(team_id)
        if found is None:
            raise NotFound()
        org, team = found
        if doer.is_admin or org.is_owner(doer.id):
            return org, team
        if doer.id not in team.members:
            if doer.id in org.members():
                raise Forbidden("Must be a team member")
            raise NotFound()
        if owner:
            raise Forbidden("Must be an organization owner")
        return org, team

    def edit_team(self, doer: User, team_id: int, body: dict[str, Any]) -> tuple[Organization, Team]:
        """Gitea's EditTeam: the Owners team keeps its name and permission."""
        org, team = self.team_for(doer, team_id, owner=True)
        with self.state.lock:
            if body.get("name") and not team.is_owner_team:
                try:
                    self.state.rename_team(org, team, self._team_name(body))
                except Unprocessable as exc:  # UpdateTeam's ErrTeamAlreadyExist surfaces as a 500
                    raise Internal(exc.message) from exc
            if body.get("description") is not None:
                team.description = str(body["description"])
            if body.get("can_create_org_repo") is not None:
                team.can_create_org_repo = team.is_owner_team or bool(body["can_create_org_repo"])
            if not team.is_owner_team:
                units_map, units = self._units_of(body)
                if body.get("permission"):
                    permission = self._team_permission(body)
                    if mode_of(permission) < AccessMode.ADMIN and units_map:
                        permission = min_unit_mode(units_map)
                    team.permission = permission
                    if body.get("includes_all_repositories") is not None:
                        team.includes_all_repositories = bool(body["includes_all_repositories"])
                if mode_of(team.permission) >= AccessMode.ADMIN:
                    team.units_map = None
                elif units_map:
                    team.units_map = units_map
                elif units:
                    team.units_map = {u: team.permission for u in units}
        self.log.record("repo", "team edited", org=org.name, team=team.name, by=doer.login)
        return org, team

    def delete_team(self, doer: User, team_id: int) -> None:
        org, team = self.team_for(doer, team_id, owner=True)
        if team.is_owner_team:
            raise Unprocessable("the Owners team cannot be deleted")
        self.state.delete_team(org, team)
        self.log.record("repo", "team deleted", org=org.name, team=team.name, by=doer.login)

    def team_members(self, doer: User, team_id: int) -> list[User]:
        _, team = self.team_for(doer, team_id)
        with self.state.lock:
            members = [self.state.users_by_id[i] for i in team.members if i in self.state.users_by_id]
        return sorted(members, key=lambda u: u.login.lower())

    def _member_target(self, username: str) -> User:
        user = self.state.get_user(username)
        if user is None:
            raise NotFound(errors=[f"user redirect does not exist [name: {username.lower()}]"])
        return user

    def team_member(self, doer: User, team_id: int, username: str) -> User:
        _, team = self.team_for(doer, team_id)
        user = self._member_target(username)
        if user.id not in team.members:
            raise NotFound()
        return user

    def add_team_member(self, doer: User, team_id: int, username: str) -> None:
        org, team = self.team_for(doer, team_id, owner=True)
        user = self._member_target(username)
        with self.state.lock:
            team.members.add(user.id)
        self.log.record("repo", "team member added", org=org.name, team=team.name, user=user.login, by=doer.login)

    def remove_team_member(self, doer: User, team_id: int, username: str) -> None:
        org, team = self.team_for(doer, team_id, owner=True)
        user = self._member_target(username)
        with self.state.lock:
            if team.is_owner_team and team.members == {user.id}:
                raise Internal(f"user is the last member of owner team [uid: {user.id}]")
            team.members.discard(user.id)
        self.log.record("repo", "team member removed", org=org.name, team=team.name, user=user.login, by=doer.login)

    # -- repositories -----------------------------------------------------------------------------
    def repo_for(
        self, doer: User | None, owner: str, name: str, need: AccessMode = AccessMode.READ
    ) -> tuple[Repository, AccessMode]:
        """Find a repo the way Gitea's repoAssignment + reqRepo* middlewares do."""
        repo = self.state.get_repo(owner, name)
        mode = self.state.access_mode(doer, repo) if repo else AccessMode.NONE
        if repo is None or mode < AccessMode.READ:
            raise NotFound()
        if mode < need:
            if doer is None:
                raise Unauthorized("token is required")
            if need >= AccessMode.OWNER:
                raise Forbidden("user should be the owner of the repo")
            if need >= AccessMode.ADMIN:
                raise Forbidden("user should be an owner or a collaborator with admin write of a repository")
            raise Forbidden("user should have a permission to write to a repo")
        return repo, mode

    def create_org_repo(
        self,
        doer: User,
        org_name: str,
        *,
        name: str,
        description: str = "",
        private: bool = False,
        auto_init: bool = False,
        default_branch: str = "",
        template: bool = False,
        readme: str = "",
        object_format_name: str = "",
    ) -> Repository:
        org = self.visible_org(doer, org_name)
        if not self.state.can_create_in_org(doer, org):
            raise Forbidden(f"Given user is not allowed to create repository in organization {org.name}.")
        if object_format_name not in ("", "sha1"):
            raise Unprocessable(f"unsupported object format: {object_format_name}")
        branch = default_branch or self.settings.default_branch
        if not valid_branch_name(branch):
            raise Unprocessable(f"[DefaultBranch]: invalid branch name {branch!r}")
        path = self.root / org.name.lower() / f"{name.lower()}.git"
        repo = self.state.create_repo(
            org,
            name,
            path,
            now=self.now(),
            default_branch=branch,
            description=description,
            private=private,
            template=template,
        )
        try:
            if path.exists():  # a leftover of a deleted repo that failed to clean up
                shutil.rmtree(path)
            bare = BareRepo.init(path, branch, template=self._init_template())
            if auto_init:
                signature = self._doer_signature(doer, self.now())
                content = f"# {name}\n\n{description}\n".encode()
                sha = bare.make_commit(
                    None, [TreeWrite("README.md", content)], [], "Initial commit", signature, signature
                ).sha
                bare.update_ref(f"refs/heads/{branch}", sha, ZERO_SHA, "initial commit")
                repo.empty = False
        except Exception:
            self.state.delete_repo(repo)
            shutil.rmtree(path, ignore_errors=True)
            raise
        self.log.record(
            "repo",
            "repo created",
            repo=repo.full_name,
            private=private,
            auto_init=auto_init,
            default_branch=branch,
            path=str(path),
        )
        return repo

    def delete_repo(self, doer: User | None, owner: str, name: str) -> None:
        repo, _ = self.repo_for(doer, owner, name, AccessMode.OWNER)
        with repo.lock:
            self.state.delete_repo(repo)
            shutil.rmtree(repo.path, ignore_errors=True)
        self.log.record("repo", "repo deleted", repo=repo.full_name)

    def list_org_repos(self, doer: User | None, org_name: str) -> list[tuple[Repository, AccessMode]]:
        org = self.visible_org(doer, org_name)
        result = []
        for repo in self.state.repos_of_org(org):
            mode = self.state.access_mode(doer, repo)
            if mode >= AccessMode.READ:
                result.append((repo, mode))
        return result

    # -- branches ---------------------------------------------------------------------------------
    def list_branches(
        self, doer: User | None, owner: str, name: str
    ) -> tuple[Repository, AccessMode, list[BranchHead]]:
        repo, mode = self.repo_for(doer, owner, name)
        return repo, mode, self.bare(repo).branches()

    def get_branch(
        self, doer: User | None, owner: str, name: str, branch: str
    ) -> tuple[Repository, AccessMode, BranchHead]:
        repo, mode = self.repo_for(doer, owner, name)
        head = self.bare(repo).branch(branch)
        if head is None:
            raise NotFound(errors=[f"branch does not exist [name: {branch}]"])
        return repo, mode, head

    def create_branch(
        self, doer: User, owner: str, name: str, *, new_branch: str, old_branch: str = "", old_ref: str = ""
    ) -> tuple[Repository, AccessMode, BranchHead]:
        repo, mode = self.repo_for(doer, owner, name, AccessMode.WRITE)
        if not valid_branch_name(new_branch):
            raise Unprocessable("[BranchName]: GitRefName")
        bare = self.bare(repo)
        with repo.lock:
            if bare.is_empty():
                raise NotFound("Git Repository is empty.", plain=True)
            if old_ref:
                base = bare.resolve_commit(old_ref) if not old_ref.startswith("-") else None
                if base is None:
                    raise NotFound("The old branch does not exist", plain=True)
            else:
                base = bare.branch_sha(old_branch or repo.default_branch)
                if base is None:
                    raise NotFound("The old branch does not exist", plain=True)
            if bare.branch_sha(new_branch) is not None:
                raise Conflict("The branch already exists.")
            if f"refs/tags/{new_branch}" in bare.refs("refs/tags/"):
                raise Conflict("The branch with the same tag already exists.")
            try:
                bare.update_ref(
                    f"refs/heads/{new_branch}", base, ZERO_SHA, f"branch: created by {doer.login}"
                )
            except RefUpdateConflict as exc:
                raise Conflict("The branch with the same name already exists.") from exc
            repo.updated = self.now()
        self.log.record("repo", "branch created", repo=repo.full_name, branch=new_branch, sha=base)
        self.fire_ref_updates(repo, doer, [RefUpdate(f"refs/heads/{new_branch}", ZERO_SHA, base)])
        head = bare.branch(new_branch)
        assert head is not None
        return repo, mode, head

    def delete_branch(self, doer: User, owner: str, name: str, branch: str) -> None:
        repo, _ = self.repo_for(doer, owner, name, AccessMode.WRITE)
        bare = self.bare(repo)
        with repo.lock:
            if bare.is_empty():
                raise Forbidden("Git Repository is empty.")
            if branch == repo.default_branch:
                raise Forbidden("can not delete default branch")
            sha = bare.branch_sha(branch)
            if sha is None:
                raise NotFound(errors=[f"branch does not exist [name: {branch}]"])
            self.pulls.check_branch_delete(repo, branch)
            try:
                bare.delete_ref(f"refs/heads/{branch}", sha)
            except RefUpdateConflict as exc:
                raise Conflict("branch was updated concurrently") from exc
            repo.updated = self.now()
        self.log.record("repo", "branch deleted", repo=repo.full_name, branch=branch, sha=sha)
        self.fire_ref_updates(repo, doer, [RefUpdate(f"refs/heads/{branch}", sha, ZERO_SHA)])

    # -- refs -------------------------------------------------------------------------------------
    def resolve_ref(self, repo: Repository, ref: str) -> tuple[str, str, str] | None:
        """(commit sha, ref type, ref name) for a branch, tag or commit id, like Gitea's ref lookup."""
        bare = self.bare(repo)
        ref = ref or repo.default_branch
        for prefix, kind in (("refs/heads/", "branch"), ("refs/tags/", "tag")):
            if ref.startswith(prefix):
                ref = ref[len(prefix) :]
                sha = bare.resolve_commit(prefix + ref)
                return (sha, kind, ref) if sha else None
        if ref.startswith("-"):
            return None
        sha = bare.branch_sha(ref)
        if sha:
            return sha, "branch", ref
        if f"refs/tags/{ref}" in bare.refs("refs/tags/"):
            sha = bare.resolve_commit(f"refs/tags/{ref}")
            if sha:
                return sha, "tag", ref
        if re.fullmatch(r"[0-9a-fA-F]{4,40}", ref):
            sha = bare.resolve_commit(ref)
            if sha:
                return sha, "commit", ref
        return None

    # -- contents ---------------------------------------------------------------------------------
    def get_contents(
        self, doer: User | None, owner: str, name: str, path: str, ref: str = ""
    ) -> tuple[Repository, ContentsResult]:
        repo, _ = self.repo_for(doer, owner, name)
        tree_path = clean_tree_path(path)
        resolved = self.resolve_ref(repo, ref)
        if resolved is None:
            raise NotFound("GetContentsOrList", errors=[f"object does not exist [id: {ref}, rel_path: ]"])
        sha, ref_type, ref_name = resolved
        bare = self.bare(repo)
        result = ContentsResult(ref=ref_name, ref_type=ref_type, commit=sha, is_dir=True)
        if tree_path:
            entry = bare.entry(sha, tree_path)
            if entry is None:
                raise NotFound(
                    "GetContentsOrList", errors=[f"object does not exist [id: , rel_path: {tree_path}]"]
                )
            if not entry.is_dir:
                content = bare.read_blob(entry.sha) if (entry.is_file or entry.is_symlink) else None
                result.is_dir = False
                result.items = [(entry, bare.last_commit(sha, tree_path), content)]
                return repo, result
        for entry in bare.list_dir(sha, tree_path):
            content = bare.read_blob(entry.sha) if entry.is_symlink else None
            result.items.append((entry, bare.last_commit(sha, entry.path), content))
        return repo, result

    def read_raw(self, doer: User | None, owner: str, name: str, kind: str, rest: str) -> bytes:
        """The bytes behind a ContentsResponse ``download_url`` (``/raw/{branch|tag|commit}/{ref}/{path}``).

        A branch or tag name may contain ``/``, so every split of ``rest`` is tried, longest ref first.
        """
        repo, _ = self.repo_for(doer, owner, name)
        if kind not in ("branch", "tag", "commit"):
            raise NotFound()
        bare = self.bare(repo)
        parts = [p for p in rest.split("/") if p]
        for cut in range(len(parts) - 1, 0, -1):
            ref, path = "/".join(parts[:cut]), clean_tree_path("/".join(parts[cut:]))
            resolved = self.resolve_ref(repo, ref)
            if resolved is None or resolved[1] != kind:
                continue
            entry = bare.entry(resolved[0], path)
            if entry is not None and (entry.is_file or entry.is_symlink):
                return bare.read_blob(entry.sha)
        raise NotFound()

    def change_files(
        self, doer: User, owner: str, name: str, request: ChangeRequest
    ) -> tuple[Repository, ChangeResult]:
        """Gitea's ChangeRepoFiles: validate every operation, then write ONE commit."""
        repo, _ = self.repo_for(doer, owner, name, AccessMode.WRITE)
        if not request.files:
            raise Unprocessable("[Files]: Required")
        for op in request.files:
            if op.operation not in ("create", "update", "delete"):
                raise Unprocessable(f"[Operation]: invalid operation {op.operation!r}")
            op.path = clean_tree_path(op.path)
            if not op.path:
                raise Unprocessable("path contains a malformed path component [path: ]")
            if op.from_path:
                op.from_path = clean_tree_path(op.from_path)
        bare = self.bare(repo)
        with repo.lock:
            branch = request.branch or repo.default_branch
            target = request.new_branch or branch
            if request.new_branch and not valid_branch_name(request.new_branch):
                raise Unprocessable("[NewBranchName]: GitRefName")
            heads = bare.refs("refs/heads/")
            empty = not heads
            parent: str | None = None
            if not empty:
                parent = heads.get(f"refs/heads/{branch}")
                if parent is None:
                    raise NotFound(f"branch does not exist [name: {branch}]", plain=True)
                if request.new_branch and f"refs/heads/{request.new_branch}" in heads:
                    raise Unprocessable(f"branch already exists [name: {request.new_branch}]")
            if target == branch:  # Gitea checks protection only when committing to an existing branch
                self.pulls.check_api_write(repo, doer, branch)
            writes, deletes = self._plan_changes(bare, parent, request.files)
            now = self.now()
            author, committer = self._identities(doer, request, now)
            message = request.message or default_commit_message(request.files)
            if request.signoff:
                message = f"{message.rstrip()}\n\nSigned-off-by: {committer.name} <{committer.email}>"
            made = bare.make_commit(parent, writes, deletes, message, author, committer)
            sha = made.sha
            old = ZERO_SHA if (parent is None or request.new_branch) else parent
            try:
                bare.update_ref(
                    f"refs/heads/{target}", sha, old, f"commit: {(message.splitlines() or [''])[0][:60]}"
                )
            except RefUpdateConflict as exc:
                raise Conflict(f"branch {target} was updated concurrently; retry") from exc
            if empty or repo.empty:
                self._first_branch(repo, bare, target)
            repo.updated = now
        content_by_path = {w.path: w.content for w in writes}
        files = [(op, made.blobs.get(op.path), content_by_path.get(op.path)) for op in request.files]
        self.log.record(
            "repo",
            "api commit",
            repo=repo.full_name,
            branch=target,
            sha=sha,
            files=[f"{op.operation}:{op.path}" for op in request.files],
            doer=doer.login,
        )
        self.fire_ref_updates(repo, doer, [RefUpdate(f"refs/heads/{target}", old, sha)])
        return repo, ChangeResult(commit=made.commit, branch=target, files=files)

    def _plan_changes(
        self, bare: BareRepo, parent: str | None, operations: Sequence[FileOperation]
    ) -> tuple[list[TreeWrite], list[str]]:
        lookups: set[str] = set()
        for op in operations:
            for path in (op.path, op.from_path):
                if path:
                    lookups.add(path)
                    parts = path.split("/")
                    lookups.update("/".join(parts[:i]) for i in range(1, len(parts)))
        existing = bare.entries(parent, sorted(lookups)) if parent else {}
        writes: dict[str, TreeWrite] = {}
        deletes: list[str] = []

        def check_parents(path: str) -> None:
            parts = path.split("/")
            for i in range(1, len(parts)):
                prefix = "/".join(parts[:i])
                entry = existing.get(prefix)
                if entry is not None and not entry.is_dir and prefix not in deletes:
                    raise Unprocessable(
                        f"a file exists where you\u2019re trying to create a subdirectory [path: {prefix}]"
                    )

        for op in operations:
            current = existing.get(op.path)
            if op.operation == "create":
                if current is not None and op.path not in deletes:
                    raise Unprocessable(f"repository file already exists [path: {op.path}]")
                check_parents(op.path)
                writes[op.path] = TreeWrite(op.path, op.content or b"")
            elif op.operation == "update":
                if not op.sha:
                    raise Unprocessable("a SHA or commit ID must be proved when updating a file")
                source_path = op.from_path or op.path
                source = existing.get(source_path)
                if source is None or source.is_dir:
                    raise NotFound(f"repository file does not exist [path: {source_path}]", plain=True)
                if source.sha != op.sha:
                    raise Unprocessable(f"sha does not match [given: {op.sha}, expected: {source.sha}]")
                if source_path != op.path:
                    if current is not None:
                        raise Unprocessable(f"repository file already exists [path: {op.path}]")
                    check_parents(op.path)
                    deletes.append(source_path)
                content = op.content if op.content is not None else bare.read_blob(source.sha)
                writes[op.path] = TreeWrite(op.path, content, source.mode if source.is_file else "100644")
            else:
                if current is None or current.is_dir:
                    raise NotFound(f"repository file does not exist [path: {op.path}]", plain=True)
                if not op.sha:
                    raise Unprocessable("a SHA or commit ID must be proved when updating a file")
                if current.sha != op.sha:
                    raise Unprocessable(f"sha does not match [given: {op.sha}, expected: {current.sha}]")
                deletes.append(op.path)
                writes.pop(op.path, None)
        return list(writes.values()), deletes

    def _doer_signature(self, doer: User, when: datetime) -> Signature:
        return Signature(doer.full_name or doer.login, doer.email, when)

    def _identities(self, doer: User, request: ChangeRequest, now: datetime) -> tuple[Signature, Signature]:
        # Gitea: if only one of author/committer is given, both are it; if neither, both are the doer.
        author_id = request.author or request.committer
        committer_id = request.committer or request.author
        author_when = request.author_date or now
        committer_when = request.committer_date or now
        if author_id is None or committer_id is None:
            me = self._doer_signature(doer, now)
            return (Signature(me.name, me.email, author_when), Signature(me.name, me.email, committer_when))
        return (
            Signature(author_id.name or doer.login, author_id.email or doer.email, author_when),
            Signature(committer_id.name or doer.login, committer_id.email or doer.email, committer_when),
        )

    def _first_branch(self, repo: Repository, bare: BareRepo, pushed: str) -> None:
        """First content in an empty repo: it is no longer empty, and HEAD must name a real branch."""
        repo.empty = False
        if bare.branch_sha(repo.default_branch) is None:
            repo.default_branch = pushed
            bare.set_head(pushed)

    # -- commits ----------------------------------------------------------------------------------
    def page_size(self, limit: int | None, cap: int | None = None) -> int:
        size = limit if limit and limit > 0 else self.settings.default_paging_num
        size = min(size, self.settings.max_response_items)
        return min(size, cap) if cap else size

    def list_commits(
        self,
        doer: User | None,
        owner: str,
        name: str,
        *,
        sha: str = "",
        path: str = "",
        page: int = 1,
        limit: int | None = None,
        not_: str = "",
        with_files: bool = True,
    ) -> tuple[Repository, list[CommitInfo], int, int, int]:
        """(repo, commits, total, page, page size), with Gitea's paging rules for commits."""
        repo, _ = self.repo_for(doer, owner, name)
        bare = self.bare(repo)
        if bare.is_empty():
            raise Conflict("Git Repository is empty.")
        resolved = self.resolve_ref(repo, sha)
        if resolved is None:
            raise NotFound(sha or repo.default_branch)
        head = resolved[0]
        not_revs = []
        if not_:
            excluded = self.resolve_ref(repo, not_)
            if excluded is None:
                raise NotFound(not_)
            not_revs.append(excluded[0])
        size = self.page_size(limit, self.settings.commits_range_size)
        page = max(page, 1)
        tree_path = clean_tree_path(path) if path else None
        total = bare.count(head, path=tree_path, not_revs=not_revs)
        commits = bare.log(
            head, path=tree_path, skip=(page - 1) * size, limit=size, not_revs=not_revs, with_files=with_files
        )
        return repo, commits, total, page, size

    def get_commit(self, doer: User | None, owner: str, name: str, sha: str) -> tuple[Repository, CommitInfo]:
        repo, _ = self.repo_for(doer, owner, name)
        if not sha or sha.startswith("-") or not re.fullmatch(r"[\w./-]+", sha):
            raise Unprocessable(f"no valid ref or sha: {sha}")
        resolved = self.resolve_ref(repo, sha)
        commit = self.bare(repo).commit(resolved[0], with_files=True) if resolved else None
        if commit is None:
            raise NotFound(sha)
        return repo, commit

    # -- webhooks ---------------------------------------------------------------------------------
    def _hook_fields(self, body: dict[str, Any], *, partial: bool) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        config = body.get("config")
        if not partial:
            hook_type = body.get("type", "")
            if hook_type not in HOOK_TYPES:
                raise Unprocessable("Invalid hook type")
            fields["type"] = hook_type
            if not isinstance(config, dict):
                raise Unprocessable("[Config]: Required")
        if isinstance(config, dict):
            if "url" in config or not partial:
                url = str(config.get("url", ""))
                if not url:
                    raise Unprocessable("Missing config option: url")
                fields["url"] = url
            if "content_type" in config or not partial:
                content_type = str(config.get("content_type", ""))
                if content_type not in ("json", "form"):
                    raise Unprocessable("Invalid content type")
                fields["content_type"] = content_type
            if "secret" in config or not partial:
                fields["secret"] = str(config.get("secret", ""))
        if "events" in body or not partial:
            events = [str(e) for e in body.get("events") or []]
            if not events and not partial:
                events = ["push"]
            fields["events"] = expand_hook_events(events)
        if "active" in body or not partial:
            fields["active"] = bool(body.get("active", False))
        if "branch_filter" in body or not partial:
            fields["branch_filter"] = str(body.get("branch_filter") or "*")
        if "authorization_header" in body or not partial:
            fields["authorization_header"] = str(body.get("authorization_header") or "")
        return fields

    def create_hook(
        self, doer: User, body: dict[str, Any], *, repo: tuple[str, str] | None = None, org: str | None = None
    ) -> Webhook:
        target_repo, target_org = self._hook_owner(doer, repo, org)
        hook = self.state.add_hook(
            self._hook_fields(body, partial=False), now=self.now(), repo=target_repo, org=target_org
        )
        self.log.record(
            "repo",
            "hook created",
            hook_id=hook.id,
            url=hook.url,
            events=hook.events,
            repo=target_repo.full_name if target_repo else None,
            org=target_org.name if target_org else None,
        )
        return hook

    def _hook_owner(
        self, doer: User | None, repo: tuple[str, str] | None, org: str | None
    ) -> tuple[Repository | None, Organization | None]:
        if repo is not None:
            found, _ = self.repo_for(doer, repo[0], repo[1], AccessMode.ADMIN)
            return found, None
        assert org is not None
        found_org = self.visible_org(doer, org)
        self.state.require_org_owner(doer, found_org)
        return None, found_org

    def list_hooks(
        self, doer: User | None, *, repo: tuple[str, str] | None = None, org: str | None = None
    ) -> list[Webhook]:
        target_repo, target_org = self._hook_owner(doer, repo, org)
        return self.state.hooks_of(repo=target_repo, org=target_org)

    def get_hook(
        self, doer: User | None, hook_id: int, *, repo: tuple[str, str] | None = None, org: str | None = None
    ) -> Webhook:
        target_repo, target_org = self._hook_owner(doer, repo, org)
        return self.state.get_hook(hook_id, repo=target_repo, org=target_org)

    def edit_hook(
        self,
        doer: User,
        hook_id: int,
        body: dict[str, Any],
        *,
        repo: tuple[str, str] | None = None,
        org: str | None = None,
    ) -> Webhook:
        hook = self.get_hook(doer, hook_id, repo=repo, org=org)
        fields = self._hook_fields(body, partial=True)
        with self.state.lock:
            for key, value in fields.items():
                setattr(hook, key, value)
            hook.updated = self.now()
        self.log.record("repo", "hook edited", hook_id=hook.id, fields=sorted(fields))
        return hook

    def delete_hook(
        self, doer: User, hook_id: int, *, repo: tuple[str, str] | None = None, org: str | None = None
    ) -> None:
        hook = self.get_hook(doer, hook_id, repo=repo, org=org)
        self.state.delete_hook(hook)
        self.log.record("repo", "hook deleted", hook_id=hook_id)

    # -- ref updates -> events --------------------------------------------------------------------
    def after_receive_pack(
        self, repo: Repository, pusher: User, before: dict[str, str], after: dict[str, str]
    ) -> list[RefUpdate]:
        """Diff the ref snapshots around a ``git push`` and react like Gitea's post-receive hook."""
        updates = [
            RefUpdate(ref, before.get(ref, ZERO_SHA), after.get(ref, ZERO_SHA))
            for ref in sorted(set(before) | set(after))
            if before.get(ref) != after.get(ref)
        ]
        if not updates:
            return updates
        bare = self.bare(repo)
        with repo.lock:
            branches = [
                u.ref[len("refs/heads/") :]
                for u in updates
                if u.ref.startswith("refs/heads/") and u.new != ZERO_SHA
            ]
            if repo.empty and branches:
                self._first_branch(repo, bare, branches[0])
            elif not bare.branches():
                repo.empty = True
            repo.updated = self.now()
        self.log.record(
            "push",
            "git push",
            repo=repo.full_name,
            pusher=pusher.login,
            updates=[{"ref": u.ref, "before": u.old, "after": u.new} for u in updates],
        )
        self.fire_ref_updates(repo, pusher, updates)
        return updates

    def fire_ref_updates(self, repo: Repository, pusher: User, updates: Sequence[RefUpdate]) -> None:
        """Turn ref updates into create/push/delete webhooks for the repo's and its org's hooks, then
        synchronize the open pull requests whose head branch moved (Gitea queues that after the push
        hook; here it is done before the pusher gets an answer, so it is never a race)."""
        hooks = self.state.hooks_for_event(repo)
        if any(h.active for h in hooks):
            try:
                for update in updates:
                    self._fire_one(repo, pusher, update, hooks)
            except (GitError, OSError) as exc:  # the repo may be gone already; never fail the push
                self.log.record("error", "building webhook payload failed", repo=repo.full_name, error=str(exc))
        try:
            self.pulls.after_ref_updates(repo, pusher, updates)
        except (GitError, OSError) as exc:
            self.log.record("error", "synchronizing pull requests failed", repo=repo.full_name, error=str(exc))

    def _fire_one(self, repo: Repository, pusher: User, update: RefUpdate, hooks: list[Webhook]) -> None:
        short, ref_type = _short_ref(update.ref)
        if ref_type == "other":
            return
        targets = [h for h in hooks if ref_type != "branch" or branch_filter_matches(h.branch_filter, short)]
        repo_json = self.shapes.repository(repo, AccessMode.OWNER)
        sender = self.shapes.user(pusher)
        if update.new == ZERO_SHA:
            payload = {
                "ref": short,
                "ref_type": ref_type,
                "pusher_type": "user",
                "repository": repo_json,
                "sender": sender,
            }
            self._submit(targets, "delete", payload, repo)
            return
        if update.old == ZERO_SHA:
            payload = {
                "sha": update.new,
                "ref": short,
                "ref_type": ref_type,
                "repository": repo_json,
                "sender": sender,
            }
            self._submit(targets, "create", payload, repo)
        if not any(h.wants("push") for h in targets):
            return
        self._submit(targets, "push", self.push_payload(repo, pusher, update, repo_json, sender), repo)

    def push_payload(
        self,
        repo: Repository,
        pusher: User,
        update: RefUpdate,
        repo_json: dict[str, Any],
        sender: dict[str, Any],
    ) -> dict[str, Any]:
        """Gitea's PushPayload: newest commit first, at most FEED_MAX_COMMIT_NUM of them."""
        bare = self.bare(repo)
        shown = self.settings.feed_max_commit_num
        if update.ref.startswith("refs/tags/"):
            commits, total = [], 0
        elif update.old == ZERO_SHA:
            commits = bare.new_commits(update.new, None, limit=self.settings.new_ref_commit_limit)
            total = len(commits)
        else:
            total = bare.count(update.new, not_revs=[update.old])
            commits = bare.new_commits(update.new, update.old, limit=shown)
        head = bare.commit(update.new, with_files=True)
        payload_commits = [
            self.shapes.payload_commit(repo, c, with_files=True, verification=False) for c in commits[:shown]
        ]
        head_json = (
            self.shapes.payload_commit(repo, head, with_files=True, verification=False)
            if head is not None
            else None
        )
        compare = (
            ""
            if update.old == ZERO_SHA
            else f"{self.shapes.repo_html(repo)}/compare/{update.old}...{update.new}"
        )
        return {
            "ref": update.ref,
            "before": update.old,
            "after": update.new,
            "compare_url": compare,
            "commits": payload_commits,
            "total_commits": total,
            "head_commit": head_json,
            "repository": repo_json,
            "pusher": sender,
            "sender": sender,
        }

    def _submit(self, hooks: list[Webhook], event: str, payload: dict[str, Any], repo: Repository) -> None:
        for hook in hooks:
            if hook.wants(event):
                self.dispatcher.submit(hook, event, payload, repo=repo.full_name)


def default_commit_message(files: Sequence[FileOperation]) -> str:
    """Gitea's changeFilesCommitMessage: "Add a, b" / "Update c" / "Delete d", one line each."""
    lines = []
    for verb, op in (("Add", "create"), ("Update", "update"), ("Delete", "delete")):
        paths = [f.path for f in files if f.operation == op]
        if paths:
            lines.append(f"{verb} {', '.join(paths)}")
    return "\n".join(lines)
