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


@dataclass
class Team:
    """Just enough of Gitea's teams for org membership: a permission level and members."""

    id: int
    org_id: int
    name: str
    permission: str  # "owner" | "admin" | "write" | "read"
    members: set[int] = field(default_factory=set)
    includes_all_repositories: bool = True
    repo_ids: set[int] = field(default_factory=set)

    @property
    def access_mode(self) -> AccessMode:
        return {
            "owner": AccessMode.OWNER,
            "admin": AccessMode.ADMIN,
            "write": AccessMode.WRITE,
            "read": AccessMode.READ,
        }.get(self.permission, AccessMode.NONE)

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


# Events a hook may subscribe to; only push/create/delete are produced so far (pull requests later).
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
        self.users: dict[str, User] = {}
        self.users_by_id: dict[int, User] = {}
        self.tokens: dict[str, AccessToken] = {}
        self.orgs: dict[str, Organization] = {}
        self.orgs_by_id: dict[int, Organization] = {}
        self.repos: dict[tuple[str, str], Repository] = {}
        self.repos_by_id: dict[int, Repository] = {}
        self.hooks: dict[int, Webhook] = {}

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
                id=next(self._team_ids), org_id=org.id, name="Owners", permission="owner", members={owner.id}
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
            )
            org.teams[name.lower()] = team
            return team

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
            return any(doer.id in t.members and t.access_mode >= AccessMode.ADMIN for t in org.teams.values())

    def require_org_owner(self, doer: User | None, org: Organization) -> None:
        if doer is None:
            raise Unauthorized("token is required")
        if not (doer.is_admin or org.is_owner(doer.id)):
            raise Forbidden("Must be an organization owner")

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
