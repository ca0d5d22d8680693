"""State of the embedded forge: users, tokens, orgs, teams, repos and webhooks (no HTTP, no git).

Laid out like moto: these are the "backend" tables; ``service.py`` combines them with the bare repos
and ``api.py`` / ``smart_http.py`` speak the wire protocols. Everything sits behind one re-entrant
lock because the API handlers run in a thread pool and the webhook worker reads hooks concurrently.
Each repository also has its own lock, held for the length of a ref-changing git operation (API
commit, branch create/delete, receive-pack) so a push diff is never mixed up with a concurrent one.

Gitea's own model shapes are followed where later issues will need them: orgs own teams with a
permission level, repos remember their owner kind, access is computed by one function
(:meth:`ForgeState.access_mode`) that branch protection, collaborators and pull-request reviewers can
extend without touching the handlers. Ids come from per-table counters like Gitea's autoincrement
columns; users and orgs share one sequence because in Gitea an org *is* a user row.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import itertools
import re
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from catalyst_sim.backends.embedded.forge.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Internal,
    NotFound,
    Unauthorized,
    Unprocessable,
)

# -- names ----------------------------------------------------------------------------------------
# Gitea's user/org name rule (modules/validation, IsValidUsername): alphanumerics plus "-", "_" and
# "."; no leading/trailing or doubled special character; at most 40 characters.
_USERNAME = re.compile(r"^[A-Za-z0-9]+(?:[-_.][A-Za-z0-9]+)*$")
_REPO_NAME = re.compile(r"^[-.\w]+$")
RESERVED_USERNAMES = frozenset(
    {
        ".",
        "..",
        ".well-known",
        "admin",
        "api",
        "assets",
        "attachments",
        "avatar",
        "avatars",
        "captcha",
        "commits",
        "debug",
        "error",
        "explore",
        "favicon.ico",
        "ghost",
        "issues",
        "login",
        "manifest.json",
        "metrics",
        "milestones",
        "new",
        "notifications",
        "org",
        "pulls",
        "raw",
        "repo",
        "repo-avatars",
        "robots.txt",
        "search",
        "serviceworker.js",
        "ssh_info",
        "swagger.v1.json",
        "user",
        "v2",
        "gitea-actions",
    }
)
RESERVED_REPO_NAMES = frozenset({".", "..", "-"})
RESERVED_REPO_SUFFIXES = (".git", ".wiki", ".rss", ".atom")

# Token scopes (models/auth/access_token_scope.go): categories with read/write levels and "all".
SCOPE_CATEGORIES = (
    "activitypub",
    "admin",
    "issue",
    "misc",
    "notification",
    "organization",
    "package",
    "repository",
    "user",
)


def validate_username(name: str, what: str = "Username") -> None:
    if not name or len(name) > 40 or not _USERNAME.match(name):
        raise Unprocessable(
            f"[{what}]: {what} should contain only alphanumeric, dash ('-'), underscore "
            "('_') and dot ('.') characters."
        )
    if name.lower() in RESERVED_USERNAMES:
        raise Unprocessable(f"name is reserved [name: {name}]")


def validate_repo_name(name: str) -> None:
    if not name or len(name) > 100 or not _REPO_NAME.match(name):
        raise Unprocessable(
            "[Name]: Name should contain only alphanumeric, dash ('-'), underscore ('_') "
            "and dot ('.') characters."
        )
    lowered = name.lower()
    if lowered in RESERVED_REPO_NAMES:
        raise Unprocessable(f"name is reserved [name: {name}]")
    if lowered.endswith(RESERVED_REPO_SUFFIXES):
        raise Unprocessable(f"name pattern is not allowed [pattern: *{lowered[lowered.rfind('.') :]}]")


def normalize_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Gitea's ``AccessTokenScope.Normalize``: validate, deduplicate, and refuse an empty scope."""
    result: list[str] = []
    for raw in scopes:
        for scope in (part.strip() for part in raw.split(",")):
            if not scope:
                continue
            if scope not in ("all", "public-only"):
                level, _, category = scope.partition(":")
                if level not in ("read", "write") or category not in SCOPE_CATEGORIES:
                    raise BadRequest(f"invalid access token scope: {scope}")
            if scope not in result:
                result.append(scope)
    if not [s for s in result if s != "public-only"]:
        raise BadRequest("access token must have a scope")
    return tuple(sorted(result))


def scope_allows(scopes: Iterable[str], category: str, write: bool) -> bool:
    """Does a token with ``scopes`` grant ``read``/``write`` on ``category``? Write implies read."""
    granted = set(scopes)
    if "all" in granted:
        return True
    if f"write:{category}" in granted:
        return True
    return not write and f"read:{category}" in granted


# -- rows -----------------------------------------------------------------------------------------
class AccessMode(enum.IntEnum):
    """Gitea's perm.AccessMode: what a user may do with a repository."""

    NONE = 0
    READ = 1
    WRITE = 2
    ADMIN = 3
    OWNER = 4


class Visibility(enum.StrEnum):
    PUBLIC = "public"
    LIMITED = "limited"
    PRIVATE = "private"


@dataclass
class User:
    id: int
    login: str
    email: str
    password_hash: str
    full_name: str = ""
    is_admin: bool = False
    must_change_password: bool = False
    restricted: bool = False
    active: bool = True
    prohibit_login: bool = False
    visibility: Visibility = Visibility.PUBLIC
    description: str = ""
    website: str = ""
    location: str = ""
    created: datetime | None = None
    last_login: datetime | None = None

    def check_password(self, password: str) -> bool:
        return hmac.compare_digest(self.password_hash, _hash_password(password, self.password_hash))


@dataclass
class AccessToken:
    id: int
    user_id: int
    name: str
    token: str
    scopes: tuple[str, ...]
    created: datetime

    @property
    def last_eight(self) -> str:
        return self.token[-8:]


# Gitea's repository units (models/unit): a team grants an access mode per unit. Code is the unit that
# push, merge and official reviews depend on; the others are reported but change nothing here.
TEAM_UNITS = (
    "repo.code",
    "repo.issues",
    "repo.ext_issues",
    "repo.wiki",
    "repo.ext_wiki",
    "repo.pulls",
    "repo.releases",
    "repo.projects",
    "repo.packages",
    "repo.actions",
)
_EXTERNAL_UNITS = ("repo.ext_issues", "repo.ext_wiki")
MODE_NAMES = {
    "none": AccessMode.NONE,
    "read": AccessMode.READ,
    "write": AccessMode.WRITE,
    "admin": AccessMode.ADMIN,
    "owner": AccessMode.OWNER,
}


def mode_of(name: str) -> AccessMode:
    return MODE_NAMES.get(name, AccessMode.NONE)


def min_unit_mode(units_map: dict[str, str]) -> str:
    """Gitea's MinUnitAccessMode: a units_map team's coarse ``permission`` is its weakest granted unit."""
    modes = [mode_of(m) for u, m in units_map.items() if u not in _EXTERNAL_UNITS and mode_of(m) > AccessMode.NONE]
    return min(modes).name.lower() if modes else "none"


@dataclass
class Team:
    """Gitea's team: a coarse permission, per-unit modes, members, and which repos it covers.

    ``units_map`` is None for owner/admin teams and for teams seeded without units: every unit then has
    the coarse permission. A read/write team made through the API carries the units it was given, and
    only its ``repo.code`` mode decides code access (a team with ``repo.pulls`` alone cannot push).
    """

    id: int
    org_id: int
    name: str
    permission: str  # "owner" | "admin" | "write" | "read" | "none"
    members: set[int] = field(default_factory=set)
    includes_all_repositories: bool = True
    repo_ids: set[int] = field(default_factory=set)
    description: str = ""
    can_create_org_repo: bool = False
    units_map: dict[str, str] | None = None

    @property
    def is_owner_team(self) -> bool:
        return self.permission == "owner" and self.name.lower() == "owners"

    @property
    def access_mode(self) -> AccessMode:
        """Access to repository code, the mode ``ForgeState.access_mode`` combines over teams."""
        level = mode_of(self.permission)
        if self.units_map is None or level >= AccessMode.ADMIN:
            return level
        return mode_of(self.units_map.get("repo.code", "none"))

    def unit_modes(self) -> dict[str, str]:
        if self.units_map is not None and mode_of(self.permission) < AccessMode.ADMIN:
            return dict(self.units_map)
        return {u: ("read" if u in _EXTERNAL_UNITS else self.permission) for u in TEAM_UNITS}

    def covers(self, repo_id: int) -> bool:
        return self.includes_all_repositories or repo_id in self.repo_ids


@dataclass
class Organization:
    id: int
    name: str
    full_name: str = ""
    email: str = ""
    description: str = ""
    website: str = ""
    location: str = ""
    visibility: Visibility = Visibility.PUBLIC
    repo_admin_change_team_access: bool = False
    created: datetime | None = None
    teams: dict[str, Team] = field(default_factory=dict)  # by lower-case name

    def members(self) -> set[int]:
        return set().union(*(team.members for team in self.teams.values())) if self.teams else set()

    def is_owner(self, user_id: int) -> bool:
        owners = self.teams.get("owners")
        return owners is not None and user_id in owners.members


@dataclass
class Repository:
    id: int
    owner_id: int
    owner_name: str
    owner_is_org: bool
    name: str
    path: Path
    default_branch: str = "main"
    description: str = ""
    website: str = ""
    private: bool = False
    template: bool = False
    empty: bool = True
    archived: bool = False
    created: datetime | None = None
    updated: datetime | None = None
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    @property
    def full_name(self) -> str:
        return f"{self.owner_name}/{self.name}"


class ReviewState(enum.StrEnum):
    """Gitea's ReviewStateType values for submitted reviews (PENDING/REQUEST_REVIEW are not modelled)."""

    APPROVED = "APPROVED"
    REQUEST_CHANGES = "REQUEST_CHANGES"
    COMMENT = "COMMENT"


@dataclass
class PullRequest:
    """A pull request within one repository (no forks: promotion is a PR inside the App repo).

    ``index`` is the issue number (Gitea shares it with issues; we have no issues, so it is a per-repo
    counter). ``head_sha`` is what ``refs/pull/{index}/head`` holds: the head branch's commit as of the
    last push the forge saw, kept after the branch is deleted, frozen when the PR is closed or merged.
    """

    id: int
    index: int
    repo_id: int
    poster_id: int
    title: str
    body: str
    head_branch: str
    base_branch: str
    head_sha: str
    merge_base: str
    created: datetime
    updated: datetime
    closed: bool = False
    closed_at: datetime | None = None
    merged: bool = False
    merged_at: datetime | None = None
    merged_by_id: int | None = None
    merge_commit_sha: str = ""

    @property
    def state(self) -> str:
        return "closed" if self.closed else "open"

    @property
    def ref(self) -> str:
        return f"refs/pull/{self.index}/head"


@dataclass
class Review:
    """A submitted review. ``official`` is decided when it is submitted (Gitea stores it too): the
    reviewer was in the approvals whitelist of the base branch's protection, or had write access when
    that whitelist is off; a newer official review by the same reviewer makes the older ones unofficial.
    ``stale`` means the PR's content changed after ``commit_id``."""

    id: int
    pull_id: int
    reviewer_id: int
    state: ReviewState
    body: str
    commit_id: str
    official: bool
    stale: bool
    created: datetime
    updated: datetime
    dismissed: bool = False


# Gitea's glob specials (gobwas/glob): a rule name with none of them is a plain branch name.
_GLOB_SPECIALS = set("*?[]{}\\")


def glob_regex(pattern: str, separator: str | None = None) -> re.Pattern[str]:
    """A gobwas glob as a regex: ``*``, ``?``, ``[...]``/``[!...]``, ``{a,b}``; with a ``separator``,
    ``*`` and ``?`` stop at it and ``**`` crosses it (Gitea compiles protection rules with ``/``)."""
    star = f"[^{re.escape(separator)}]*" if separator else ".*"
    one = f"[^{re.escape(separator)}]" if separator else "."
    out: list[str] = []
    depth, i = 0, 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if c == "*":
            if pattern.startswith("**", i):
                out.append(".*")
                i += 1
            else:
                out.append(star)
        elif c == "?":
            out.append(one)
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : end]
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
                i = end
        elif c == "{":
            depth += 1
            out.append("(?:")
        elif c == "}" and depth:
            depth -= 1
            out.append(")")
        elif c == "," and depth:
            out.append("|")
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("^" + "".join(out) + "$")


@dataclass
class BranchProtection:
    """Gitea's ProtectedBranch rule; whitelists hold ids (as Gitea does), rendered as names."""

    id: int
    repo_id: int
    rule_name: str
    created: datetime
    updated: datetime
    enable_push: bool = False
    enable_push_whitelist: bool = False
    push_whitelist_user_ids: list[int] = field(default_factory=list)
    push_whitelist_team_ids: list[int] = field(default_factory=list)
    push_whitelist_deploy_keys: bool = False
    enable_merge_whitelist: bool = False
    merge_whitelist_user_ids: list[int] = field(default_factory=list)
    merge_whitelist_team_ids: list[int] = field(default_factory=list)
    enable_status_check: bool = False
    status_check_contexts: list[str] = field(default_factory=list)
    required_approvals: int = 0
    enable_approvals_whitelist: bool = False
    approvals_whitelist_user_ids: list[int] = field(default_factory=list)
    approvals_whitelist_team_ids: list[int] = field(default_factory=list)
    block_on_rejected_reviews: bool = False
    block_on_official_review_requests: bool = False
    block_on_outdated_branch: bool = False
    dismiss_stale_approvals: bool = False
    ignore_stale_approvals: bool = False
    require_signed_commits: bool = False
    protected_file_patterns: str = ""
    unprotected_file_patterns: str = ""
    apply_to_admins: bool = False

    @property
    def is_plain(self) -> bool:
        return not any(c in _GLOB_SPECIALS for c in self.rule_name)

    def matches(self, branch: str) -> bool:
        """Gitea's ProtectedBranch.Match: a plain name case-insensitively, else the glob with ``/``."""
        if self.is_plain:
            return self.rule_name.lower() == branch.lower()
        try:
            return glob_regex(self.rule_name, "/").match(branch) is not None
        except re.error:
            return self.rule_name == branch


# Events a hook may subscribe to.
HOOK_EVENTS = (
    "create",
    "delete",
    "fork",
    "push",
    "issues",
    "issue_assign",
    "issue_label",
    "issue_milestone",
    "issue_comment",
    "pull_request",
    "pull_request_assign",
    "pull_request_label",
    "pull_request_milestone",
    "pull_request_comment",
    "pull_request_review_approved",
    "pull_request_review_rejected",
    "pull_request_review_comment",
    "pull_request_sync",
    "pull_request_review_request",
    "wiki",
    "repository",
    "release",
    "package",
    "status",
    "workflow_job",
    "workflow_run",
)
# Subscribing to "pull_request" (or "issues") subscribes to the whole family, and "pull_request_review"
# to the three review events: Gitea's API sets the flags with pullHook()/issuesHook() and reports every
# event the hook now receives (routers/api/v1/utils/hook.go).
HOOK_EVENT_FAMILIES = {
    "pull_request": tuple(e for e in HOOK_EVENTS if e.startswith("pull_request")),
    "pull_request_review": (
        "pull_request_review_approved",
        "pull_request_review_rejected",
        "pull_request_review_comment",
    ),
    "issues": ("issues", "issue_assign", "issue_label", "issue_milestone", "issue_comment"),
}


def expand_hook_events(events: Iterable[str]) -> list[str]:
    """The events a hook created with ``events`` receives, in Gitea's order."""
    wanted: set[str] = set()
    for event in events:
        wanted.update(HOOK_EVENT_FAMILIES.get(event, (event,)))
    return [e for e in HOOK_EVENTS if e in wanted]


HOOK_TYPES = (
    "forgejo",
    "gitea",
    "gogs",
    "dingtalk",
    "discord",
    "msteams",
    "slack",
    "telegram",
    "feishu",
    "wechatwork",
    "packagist",
)


@dataclass
class Webhook:
    id: int
    url: str
    type: str = "gitea"
    content_type: str = "json"  # "json" | "form"
    secret: str = ""
    events: list[str] = field(default_factory=lambda: ["push"])
    active: bool = True
    branch_filter: str = "*"
    authorization_header: str = ""
    repo_id: int | None = None  # exactly one of repo_id / org_id is set
    org_id: int | None = None
    created: datetime | None = None
    updated: datetime | None = None

    def wants(self, event: str) -> bool:
        return self.active and event in self.events


# -- the tables -----------------------------------------------------------------------------------
def _hash_password(password: str, stored: str | None = None) -> str:
    salt = stored.split("$", 2)[1] if stored else secrets.token_hex(8)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 10_000).hex()
    return f"pbkdf2${salt}${digest}"


class ForgeState:
    """All rows, keyed like Gitea's unique indexes (lower-case names), behind one RLock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._user_ids = itertools.count(1)  # users and orgs share the "user" table in Gitea
        self._repo_ids = itertools.count(1)
        self._token_ids = itertools.count(1)
        self._team_ids = itertools.count(1)
        self._hook_ids = itertools.count(1)
        self._pull_ids = itertools.count(1)
        self._review_ids = itertools.count(1)
        self._protection_ids = itertools.count(1)
        self._issue_index: dict[int, int] = {}  # repo id -> last issue/PR number
        self.users: dict[str, User] = {}
        self.users_by_id: dict[int, User] = {}
        self.tokens: dict[str, AccessToken] = {}
        self.orgs: dict[str, Organization] = {}
        self.orgs_by_id: dict[int, Organization] = {}
        self.repos: dict[tuple[str, str], Repository] = {}
        self.repos_by_id: dict[int, Repository] = {}
        self.hooks: dict[int, Webhook] = {}
        self.pulls: dict[tuple[int, int], PullRequest] = {}  # (repo id, index)
        self.reviews: dict[int, Review] = {}
        self.protections: dict[int, BranchProtection] = {}

    # -- users and tokens -------------------------------------------------------------------------
    def create_user(
        self,
        login: str,
        email: str,
        password: str,
        *,
        now: datetime,
        is_admin: bool = False,
        full_name: str = "",
        must_change_password: bool = False,
        restricted: bool = False,
        visibility: str = "public",
    ) -> User:
        validate_username(login)
        if "@" not in email:
            raise Unprocessable("[Email]: Email is not a valid email address")
        with self.lock:
            key = login.lower()
            if key in self.users or key in self.orgs:
                raise Unprocessable(f"user already exists [name: {login}]")
            if any(u.email.lower() == email.lower() for u in self.users.values()):
                raise Unprocessable(f"e-mail already in use [email: {email}]")
            user = User(
                id=next(self._user_ids),
                login=login,
                email=email,
                password_hash=_hash_password(password),
                full_name=full_name,
                is_admin=is_admin,
                must_change_password=must_change_password,
                restricted=restricted,
                visibility=Visibility(visibility),
                created=now,
            )
            self.users[key] = user
            self.users_by_id[user.id] = user
            return user

    def get_user(self, login: str) -> User | None:
        with self.lock:
            return self.users.get(login.lower())

    def user_by_email(self, email: str) -> User | None:
        with self.lock:
            lowered = email.lower()
            return next((u for u in self.users.values() if u.email.lower() == lowered), None)

    def create_token(self, user: User, name: str, scopes: Iterable[str], *, now: datetime) -> AccessToken:
        if not name:
            raise BadRequest("[Name]: Required")
        normalized = normalize_scopes(scopes)
        with self.lock:
            if any(t.user_id == user.id and t.name == name for t in self.tokens.values()):
                raise BadRequest("access token name has been used already")
            token = AccessToken(
                id=next(self._token_ids),
                user_id=user.id,
                name=name,
                token=secrets.token_hex(20),
                scopes=normalized,
                created=now,
            )
            self.tokens[token.token] = token
            return token

    def tokens_of(self, user: User) -> list[AccessToken]:
        with self.lock:
            return sorted((t for t in self.tokens.values() if t.user_id == user.id), key=lambda t: t.id)

    def authenticate_token(self, token: str) -> tuple[User, AccessToken]:
        """Gitea answers an unknown token with 401 "user does not exist" on every API route."""
        with self.lock:
            found = self.tokens.get(token)
            user = self.users_by_id.get(found.user_id) if found else None
        if found is None or user is None:
            raise Unauthorized("user does not exist [uid: 0, name: ]")
        if not user.active or user.prohibit_login:
            raise Forbidden("user is not allowed to sign in")
        return user, found

    def authenticate_basic(self, login: str, password: str) -> tuple[User, AccessToken | None]:
        """Basic auth as Gitea's ``auth.Basic`` does it, which is what ``git`` sends.

        The password may be an access token (then the user name is ignored, as in Gitea); with an
        empty password or ``x-oauth-basic`` the *user name* is taken as the token.
        """
        candidate = login if password in ("", "x-oauth-basic") else password
        with self.lock:
            token = self.tokens.get(candidate)
            owner = self.users_by_id.get(token.user_id) if token else None
            user = self.users.get(login.lower()) or self.user_by_email(login)
        if token is not None and owner is not None:
            if not owner.active or owner.prohibit_login:
                raise Forbidden("user is not allowed to sign in")
            return owner, token
        if user is None:
            raise Unauthorized(f"user does not exist [uid: 0, name: {login}]")
        if not password or not user.check_password(password):
            raise Unauthorized(f"user's password is invalid [uid: {user.id}, name: {user.login}]")
        if not user.active or user.prohibit_login:
            raise Forbidden("user is not allowed to sign in")
        return user, None

    # -- organizations ----------------------------------------------------------------------------
    def create_org(
        self,
        owner: User,
        name: str,
        *,
        now: datetime,
        full_name: str = "",
        email: str = "",
        description: str = "",
        website: str = "",
        location: str = "",
        visibility: str = "public",
        repo_admin_change_team_access: bool = False,
    ) -> Organization:
        validate_username(name, "UserName")
        if visibility not in {v.value for v in Visibility}:
            raise Unprocessable(f"[Visibility]: invalid visibility {visibility!r}")
        with self.lock:
            key = name.lower()
            if key in self.users or key in self.orgs:
                raise Unprocessable(f"user already exists [name: {name}]")
            org = Organization(
                id=next(self._user_ids),
                name=name,
                full_name=full_name,
                email=email,
                description=description,
                website=website,
                location=location,
                visibility=Visibility(visibility),
                repo_admin_change_team_access=repo_admin_change_team_access,
                created=now,
            )
            org.teams["owners"] = Team(
                id=next(self._team_ids),
                org_id=org.id,
                name="Owners",
                permission="owner",
                members={owner.id},
                can_create_org_repo=True,
            )
            self.orgs[key] = org
            self.orgs_by_id[org.id] = org
            return org

    def add_team(
        self,
        org: Organization,
        name: str,
        permission: str,
        members: Iterable[int] = (),
        includes_all_repositories: bool = True,
        *,
        description: str = "",
        can_create_org_repo: bool = False,
        units_map: dict[str, str] | None = None,
    ) -> Team:
        with self.lock:
            if name.lower() in org.teams:
                raise Unprocessable(f"team already exists [org_id: {org.id}, name: {name}]")
            team = Team(
                id=next(self._team_ids),
                org_id=org.id,
                name=name,
                permission=permission,
                members=set(members),
                includes_all_repositories=includes_all_repositories,
                description=description,
                can_create_org_repo=can_create_org_repo,
                units_map=units_map,
            )
            org.teams[name.lower()] = team
            return team

    def get_team(self, team_id: int) -> tuple[Organization, Team] | None:
        with self.lock:
            for org in self.orgs.values():
                for team in org.teams.values():
                    if team.id == team_id:
                        return org, team
        return None

    def rename_team(self, org: Organization, team: Team, name: str) -> None:
        with self.lock:
            if name.lower() != team.name.lower() and name.lower() in org.teams:
                raise Unprocessable(f"team already exists [org_id: {org.id}, name: {name}]")
            del org.teams[team.name.lower()]
            team.name = name
            org.teams[name.lower()] = team

    def delete_team(self, org: Organization, team: Team) -> None:
        """Gitea's DeleteTeam also takes the team out of every branch protection whitelist."""
        with self.lock:
            org.teams.pop(team.name.lower(), None)
            for rule in self.protections.values():
                for ids in (
                    rule.push_whitelist_team_ids,
                    rule.merge_whitelist_team_ids,
                    rule.approvals_whitelist_team_ids,
                ):
                    if team.id in ids:
                        ids.remove(team.id)

    def user_in_teams(self, user_id: int, team_ids: Iterable[int]) -> bool:
        with self.lock:
            wanted = set(team_ids)
            return any(
                team.id in wanted and user_id in team.members
                for org in self.orgs.values()
                for team in org.teams.values()
            )

    def get_org(self, name: str) -> Organization | None:
        with self.lock:
            return self.orgs.get(name.lower())

    def org_visible(self, doer: User | None, org: Organization) -> bool:
        if org.visibility is Visibility.PUBLIC:
            return True
        if doer is None:
            return False
        if org.visibility is Visibility.LIMITED or doer.is_admin:
            return True
        return doer.id in org.members()

    def delete_org(self, org: Organization) -> None:
        with self.lock:
            owned = [r for r in self.repos.values() if r.owner_is_org and r.owner_id == org.id]
            if owned:
                # Gitea's ErrUserOwnRepos, surfaced by the API as a 500 (routers/api/v1/org/org.go).
                raise Internal(f"user still has ownership of repositories [uid: {org.id}]")
            for hook_id in [h.id for h in self.hooks.values() if h.org_id == org.id]:
                del self.hooks[hook_id]
            del self.orgs[org.name.lower()]
            del self.orgs_by_id[org.id]

    # -- repositories -----------------------------------------------------------------------------
    def create_repo(
        self,
        owner: Organization | User,
        name: str,
        path: Path,
        *,
        now: datetime,
        default_branch: str = "main",
        description: str = "",
        private: bool = False,
        template: bool = False,
    ) -> Repository:
        validate_repo_name(name)
        owner_name = owner.name if isinstance(owner, Organization) else owner.login
        with self.lock:
            key = (owner_name.lower(), name.lower())
            if key in self.repos:
                raise Conflict("The repository with the same name already exists.")
            repo = Repository(
                id=next(self._repo_ids),
                owner_id=owner.id,
                owner_name=owner_name,
                owner_is_org=isinstance(owner, Organization),
                name=name,
                path=path,
                default_branch=default_branch or "main",
                description=description,
                private=private,
                template=template,
                created=now,
                updated=now,
            )
            self.repos[key] = repo
            self.repos_by_id[repo.id] = repo
            return repo

    def get_repo(self, owner: str, name: str) -> Repository | None:
        with self.lock:
            return self.repos.get((owner.lower(), name.lower()))

    def repos_of_org(self, org: Organization) -> list[Repository]:
        with self.lock:
            return sorted(
                (r for r in self.repos.values() if r.owner_is_org and r.owner_id == org.id),
                key=lambda r: r.id,
            )

    def delete_repo(self, repo: Repository) -> None:
        with self.lock:
            self.repos.pop((repo.owner_name.lower(), repo.name.lower()), None)
            self.repos_by_id.pop(repo.id, None)
            for hook_id in [h.id for h in self.hooks.values() if h.repo_id == repo.id]:
                del self.hooks[hook_id]
            pull_ids = {p.id for p in self.pulls.values() if p.repo_id == repo.id}
            self.pulls = {k: p for k, p in self.pulls.items() if p.repo_id != repo.id}
            self.reviews = {k: r for k, r in self.reviews.items() if r.pull_id not in pull_ids}
            self.protections = {k: b for k, b in self.protections.items() if b.repo_id != repo.id}
            self._issue_index.pop(repo.id, None)

    def owner_of(self, repo: Repository) -> Organization | User:
        with self.lock:
            owner = (
                self.orgs_by_id.get(repo.owner_id)
                if repo.owner_is_org
                else self.users_by_id.get(repo.owner_id)
            )
        if owner is None:
            raise NotFound()
        return owner

    def access_mode(self, doer: User | None, repo: Repository) -> AccessMode:
        """The one permission function (Gitea's GetUserRepoPermission, without units/collaborators)."""
        with self.lock:
            org = self.orgs_by_id.get(repo.owner_id) if repo.owner_is_org else None
            if doer is not None:
                if doer.is_admin:
                    return AccessMode.OWNER
                if not repo.owner_is_org and repo.owner_id == doer.id:
                    return AccessMode.OWNER
                if org is not None:
                    best = max(
                        (
                            team.access_mode
                            for team in org.teams.values()
                            if doer.id in team.members and team.covers(repo.id)
                        ),
                        default=AccessMode.NONE,
                    )
                    if best > AccessMode.NONE:
                        return best
            if repo.private:
                return AccessMode.NONE
            if org is not None and not self.org_visible(doer, org):
                return AccessMode.NONE
            return AccessMode.READ

    def can_create_in_org(self, doer: User, org: Organization) -> bool:
        with self.lock:
            if doer.is_admin or org.is_owner(doer.id):
                return True
            return any(
                doer.id in t.members and (t.access_mode >= AccessMode.ADMIN or t.can_create_org_repo)
                for t in org.teams.values()
            )

    def require_org_owner(self, doer: User | None, org: Organization) -> None:
        if doer is None:
            raise Unauthorized("token is required")
        if not (doer.is_admin or org.is_owner(doer.id)):
            raise Forbidden("Must be an organization owner")

    # -- pull requests and reviews ----------------------------------------------------------------
    def add_pull(self, repo: Repository, **fields: Any) -> PullRequest:
        with self.lock:
            index = self._issue_index.get(repo.id, 0) + 1
            self._issue_index[repo.id] = index
            pull = PullRequest(id=next(self._pull_ids), index=index, repo_id=repo.id, **fields)
            self.pulls[(repo.id, index)] = pull
            return pull

    def get_pull(self, repo: Repository, index: int) -> PullRequest | None:
        with self.lock:
            return self.pulls.get((repo.id, index))

    def pulls_of(self, repo: Repository) -> list[PullRequest]:
        with self.lock:
            return sorted((p for p in self.pulls.values() if p.repo_id == repo.id), key=lambda p: p.index)

    def add_review(self, pull: PullRequest, **fields: Any) -> Review:
        with self.lock:
            review = Review(id=next(self._review_ids), pull_id=pull.id, **fields)
            self.reviews[review.id] = review
            return review

    def reviews_of(self, pull: PullRequest) -> list[Review]:
        with self.lock:
            return sorted((r for r in self.reviews.values() if r.pull_id == pull.id), key=lambda r: r.id)

    def delete_review(self, review: Review) -> None:
        with self.lock:
            self.reviews.pop(review.id, None)

    # -- branch protection ------------------------------------------------------------------------
    def add_protection(self, repo: Repository, rule_name: str, *, now: datetime) -> BranchProtection:
        with self.lock:
            rule = BranchProtection(
                id=next(self._protection_ids), repo_id=repo.id, rule_name=rule_name, created=now, updated=now
            )
            self.protections[rule.id] = rule
            return rule

    def protections_of(self, repo: Repository) -> list[BranchProtection]:
        """Gitea's ProtectedBranchRules order: plain names first, then by rule name."""
        with self.lock:
            rules = [b for b in self.protections.values() if b.repo_id == repo.id]
        return sorted(rules, key=lambda b: (not b.is_plain, b.rule_name))

    def protection_named(self, repo: Repository, rule_name: str) -> BranchProtection | None:
        return next((b for b in self.protections_of(repo) if b.rule_name == rule_name), None)

    def protection_for(self, repo: Repository, branch: str) -> BranchProtection | None:
        """Gitea's GetFirstMatchProtectedBranchRule: the rule that governs ``branch``, if any."""
        return next((b for b in self.protections_of(repo) if b.matches(branch)), None)

    def delete_protection(self, rule: BranchProtection) -> None:
        with self.lock:
            self.protections.pop(rule.id, None)

    def can_push_protected(self, rule: BranchProtection, user: User | None, repo: Repository) -> bool:
        """Gitea's ProtectedBranch.CanUserPush: ``enable_push`` off stops everyone (admins too)."""
        if user is None or not rule.enable_push:
            return False
        if not rule.enable_push_whitelist:
            return self.access_mode(user, repo) >= AccessMode.WRITE
        if user.id in rule.push_whitelist_user_ids:
            return True
        return self.user_in_teams(user.id, rule.push_whitelist_team_ids)

    def can_merge_protected(self, rule: BranchProtection, user: User, repo: Repository) -> bool:
        """Gitea's IsUserMergeWhitelisted: the merge whitelist, or write access without one."""
        if not rule.enable_merge_whitelist:
            return self.access_mode(user, repo) >= AccessMode.WRITE
        if user.id in rule.merge_whitelist_user_ids:
            return True
        return self.user_in_teams(user.id, rule.merge_whitelist_team_ids)

    def is_official_reviewer(self, rule: BranchProtection | None, user: User, repo: Repository) -> bool:
        """Gitea's IsOfficialReviewer: no rule, no official reviews; else the approvals whitelist,
        or write access when the whitelist is off."""
        if rule is None:
            return False
        if not rule.enable_approvals_whitelist:
            return self.access_mode(user, repo) >= AccessMode.WRITE
        if user.id in rule.approvals_whitelist_user_ids:
            return True
        return self.user_in_teams(user.id, rule.approvals_whitelist_team_ids)

    # -- webhooks ---------------------------------------------------------------------------------
    def add_hook(
        self,
        hook_fields: dict[str, Any],
        *,
        now: datetime,
        repo: Repository | None = None,
        org: Organization | None = None,
    ) -> Webhook:
        with self.lock:
            hook = Webhook(
                id=next(self._hook_ids),
                repo_id=repo.id if repo else None,
                org_id=org.id if org else None,
                created=now,
                updated=now,
                **hook_fields,
            )
            self.hooks[hook.id] = hook
            return hook

    def hooks_of(self, *, repo: Repository | None = None, org: Organization | None = None) -> list[Webhook]:
        with self.lock:
            if repo is not None:
                return sorted((h for h in self.hooks.values() if h.repo_id == repo.id), key=lambda h: h.id)
            assert org is not None
            return sorted((h for h in self.hooks.values() if h.org_id == org.id), key=lambda h: h.id)

    def hooks_for_event(self, repo: Repository) -> list[Webhook]:
        """Repo hooks, then the owning org's hooks: every one of them sees the repo's events."""
        with self.lock:
            hooks = [h for h in self.hooks.values() if h.repo_id == repo.id]
            if repo.owner_is_org:
                hooks += [h for h in self.hooks.values() if h.org_id == repo.owner_id]
            return sorted(hooks, key=lambda h: h.id)

    def get_hook(
        self, hook_id: int, *, repo: Repository | None = None, org: Organization | None = None
    ) -> Webhook:
        with self.lock:
            hook = self.hooks.get(hook_id)
        if (
            hook is None
            or (repo is not None and hook.repo_id != repo.id)
            or (org is not None and hook.org_id != org.id)
        ):
            raise NotFound()
        return hook

    def delete_hook(self, hook: Webhook) -> None:
        with self.lock:
            self.hooks.pop(hook.id, None)
