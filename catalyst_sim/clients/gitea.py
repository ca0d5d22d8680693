"""A small typed httpx client of the Gitea API v1 subset Catalyst uses — against ANY Gitea.

The control plane (provisioning, environment wiring) and the test steps talk to Gitea through this
one client, whether the backend produced the embedded emulator, a Gitea container or a vendor's real
instance; so it only uses documented Gitea behaviour (paths, ``Authorization: token``, paging with
``page``/``limit``) and turns every non-2xx answer into a :class:`GiteaError` carrying Gitea's own
``message``. Responses are returned as the JSON Gitea sends (dicts typed with ``TypedDict``s of the
fields we rely on), so nothing is lost when a real Gitea sends more.
"""

from __future__ import annotations

import base64
import posixpath
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self, TypedDict, cast
from urllib.parse import quote

import httpx

PAGE_LIMIT = 50  # Gitea's default MAX_RESPONSE_ITEMS


class GiteaError(Exception):
    """A non-2xx answer: the HTTP status, Gitea's ``message``, and the request that got it."""

    def __init__(self, status: int, message: str, method: str, url: str) -> None:
        super().__init__(f"{method} {url} -> {status}: {message}")
        self.status = status
        self.message = message
        self.method = method
        self.url = url


# -- response shapes (the fields we use; Gitea sends more) ---------------------------------------
class User(TypedDict, total=False):
    id: int
    login: str
    username: str
    email: str
    full_name: str
    is_admin: bool


class AccessToken(TypedDict, total=False):
    id: int
    name: str
    sha1: str
    token_last_eight: str
    scopes: list[str]


class Organization(TypedDict, total=False):
    id: int
    name: str
    username: str
    full_name: str
    description: str
    visibility: str


class Repository(TypedDict, total=False):
    id: int
    name: str
    full_name: str
    owner: User
    private: bool
    empty: bool
    default_branch: str
    clone_url: str
    html_url: str
    permissions: dict[str, bool]
    open_pr_counter: int


class PayloadCommit(TypedDict, total=False):
    id: str
    message: str
    url: str
    timestamp: str


class Branch(TypedDict, total=False):
    name: str
    commit: PayloadCommit
    protected: bool
    required_approvals: int
    enable_status_check: bool
    status_check_contexts: list[str]
    user_can_push: bool
    user_can_merge: bool
    effective_branch_protection_name: str


class ContentEntry(TypedDict, total=False):
    name: str
    path: str
    sha: str
    type: str  # file | dir | symlink | submodule
    size: int
    encoding: str | None
    content: str | None
    target: str | None
    last_commit_sha: str
    url: str
    html_url: str
    git_url: str
    download_url: str | None
    _links: dict[str, str | None]


class CommitUser(TypedDict, total=False):
    name: str
    email: str
    date: str


class FileCommit(TypedDict, total=False):
    sha: str
    url: str
    html_url: str
    message: str
    author: CommitUser
    committer: CommitUser
    tree: dict[str, Any]
    parents: list[dict[str, Any]]


class FileResponse(TypedDict, total=False):
    content: ContentEntry | None
    commit: FileCommit


class FilesResponse(TypedDict, total=False):
    files: list[ContentEntry | None]
    commit: FileCommit


class Commit(TypedDict, total=False):
    sha: str
    url: str
    html_url: str
    created: str
    commit: dict[str, Any]
    author: User | None
    committer: User | None
    parents: list[dict[str, Any]]
    files: list[dict[str, str]]
    stats: dict[str, int]


class Hook(TypedDict, total=False):
    id: int
    type: str
    active: bool
    events: list[str]
    config: dict[str, str]
    branch_filter: str


class Team(TypedDict, total=False):
    id: int
    name: str
    description: str
    permission: str  # none | read | write | admin | owner
    units: list[str]
    units_map: dict[str, str]
    includes_all_repositories: bool
    can_create_org_repo: bool
    organization: Organization | None


class PRBranchInfo(TypedDict, total=False):
    label: str
    ref: str
    sha: str
    repo_id: int
    repo: Repository


class PullRequest(TypedDict, total=False):
    id: int
    number: int
    title: str
    body: str
    state: str  # open | closed
    user: User
    head: PRBranchInfo
    base: PRBranchInfo
    mergeable: bool
    merged: bool
    merged_at: str | None
    merge_commit_sha: str | None
    merged_by: User | None
    merge_base: str
    draft: bool
    html_url: str
    diff_url: str
    patch_url: str
    url: str
    created_at: str
    updated_at: str
    closed_at: str | None
    additions: int
    deletions: int
    changed_files: int


class PullReview(TypedDict, total=False):
    id: int
    user: User
    state: str  # APPROVED | REQUEST_CHANGES | COMMENT | PENDING | REQUEST_REVIEW
    body: str
    commit_id: str
    official: bool
    stale: bool
    dismissed: bool
    submitted_at: str
    updated_at: str
    html_url: str
    pull_request_url: str


class ChangedFile(TypedDict, total=False):
    filename: str
    previous_filename: str
    status: str  # added | deleted | changed | renamed | copied | unchanged
    additions: int
    deletions: int
    changes: int
    html_url: str
    contents_url: str
    raw_url: str


class BranchProtection(TypedDict, total=False):
    rule_name: str
    branch_name: str
    enable_push: bool
    enable_push_whitelist: bool
    push_whitelist_usernames: list[str]
    push_whitelist_teams: list[str]
    enable_merge_whitelist: bool
    merge_whitelist_usernames: list[str]
    merge_whitelist_teams: list[str]
    required_approvals: int
    enable_approvals_whitelist: bool
    approvals_whitelist_username: list[str]
    approvals_whitelist_teams: list[str]
    block_on_rejected_reviews: bool
    block_on_outdated_branch: bool
    dismiss_stale_approvals: bool
    ignore_stale_approvals: bool
    created_at: str
    updated_at: str


# Units a team created through this client gets (Gitea refuses a non-admin team without units).
TEAM_UNITS = (
    "repo.code",
    "repo.issues",
    "repo.pulls",
    "repo.releases",
    "repo.wiki",
    "repo.projects",
    "repo.packages",
    "repo.actions",
)
# CreateBranchProtectionOption / EditBranchProtectionOption fields (the swagger's names).
PROTECTION_OPTIONS = frozenset(
    {
        "apply_to_admins",
        "approvals_whitelist_teams",
        "approvals_whitelist_username",
        "block_on_official_review_requests",
        "block_on_outdated_branch",
        "block_on_rejected_reviews",
        "dismiss_stale_approvals",
        "enable_approvals_whitelist",
        "enable_merge_whitelist",
        "enable_push",
        "enable_push_whitelist",
        "enable_status_check",
        "ignore_stale_approvals",
        "merge_whitelist_teams",
        "merge_whitelist_usernames",
        "protected_file_patterns",
        "push_whitelist_deploy_keys",
        "push_whitelist_teams",
        "push_whitelist_usernames",
        "require_signed_commits",
        "required_approvals",
        "status_check_contexts",
        "unprotected_file_patterns",
    }
)
_WHITELIST_SWITCHES = (
    ("enable_push_whitelist", ("push_whitelist_usernames", "push_whitelist_teams")),
    ("enable_merge_whitelist", ("merge_whitelist_usernames", "merge_whitelist_teams")),
    ("enable_approvals_whitelist", ("approvals_whitelist_username", "approvals_whitelist_teams")),
)


@dataclass(frozen=True)
class FileChange:
    """One operation of a multi-file commit (``POST /repos/{o}/{r}/contents``)."""

    operation: Literal["create", "update", "delete"]
    path: str
    content: str | bytes | None = None
    sha: str | None = None
    from_path: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"operation": self.operation, "path": self.path}
        if self.content is not None:
            body["content"] = _b64(self.content)
        if self.sha:
            body["sha"] = self.sha
        if self.from_path:
            body["from_path"] = self.from_path
        return body


def _b64(content: str | bytes) -> str:
    data = content.encode() if isinstance(content, str) else content
    return base64.b64encode(data).decode()


def _q(path: str) -> str:
    """Percent-encode a file path or branch name for the URL path, keeping its slashes."""
    return quote(path.strip("/"), safe="/")


def _protection_body(options: Mapping[str, Any]) -> dict[str, Any]:
    """Check option names against the swagger (a typo must not silently weaken a protection) and
    switch a whitelist on when its names are given without saying whether it is enabled."""
    unknown = sorted(set(options) - PROTECTION_OPTIONS)
    if unknown:
        raise TypeError(f"unknown branch protection option(s): {', '.join(unknown)}")
    body = {k: list(v) if isinstance(v, (tuple, set, frozenset)) else v for k, v in options.items()}
    for switch, lists in _WHITELIST_SWITCHES:
        if switch not in body and any(body.get(name) for name in lists):
            body[switch] = True
    return body


Identity = Mapping[str, str] | str


def _identity(identity: Identity | None) -> dict[str, str] | None:
    """``{"name", "email"}`` from a mapping or a ``"Name <email>"`` string.

    Gitea ignores an identity without an email (the commit is then the token owner's), so a bare
    name gets a placeholder address to keep the name in the commit (R-GIT-07: the log is the audit).
    """
    if not identity:
        return None
    if isinstance(identity, str):
        match = re.fullmatch(r"\s*(.*?)\s*<([^>]+)>\s*", identity)
        if match:
            return {"name": match.group(1) or match.group(2), "email": match.group(2)}
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", identity.strip()).strip("-").lower() or "unknown"
        return {"name": identity.strip(), "email": f"{slug}@noreply.catalyst.invalid"}
    return {"name": identity.get("name", ""), "email": identity.get("email", "")}


class GiteaClient:
    """``GiteaClient(url, token)``; pass ``username``/``password`` instead for basic auth."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        root = base_url.rstrip("/")
        if root.endswith("/api/v1"):
            root = root[: -len("/api/v1")]
        self.base_url = root
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"token {token}"
        auth = httpx.BasicAuth(username, password or "") if username and not token else None
        self._http = httpx.Client(
            base_url=f"{root}/api/v1",
            headers=headers,
            auth=auth,
            timeout=timeout,
            transport=transport,
            trust_env=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        auth: httpx.Auth | None = None,
        expect_json: bool = True,
    ) -> httpx.Response:
        """Send one request; raise :class:`GiteaError` unless the status is 2xx."""
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        kwargs: dict[str, Any] = {"json": json, "params": clean}
        if auth is not None:
            kwargs["auth"] = auth  # the auth flow replaces the client's token header
        response = self._http.request(method, path, **kwargs)
        if not response.is_success:
            raise GiteaError(response.status_code, _message(response), method, str(response.request.url))
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    def _paged(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[Any]:
        """Every item of a paged list, following ``page`` until a short page or X-Total-Count."""
        page, seen = 1, 0
        while True:
            response = self.request("GET", path, params={**(params or {}), "page": page, "limit": PAGE_LIMIT})
            items = response.json() or []
            yield from items
            seen += len(items)
            total = response.headers.get("X-Total-Count")
            if len(items) < PAGE_LIMIT or (total is not None and seen >= int(total)) or not items:
                return
            page += 1

    # -- server and users -------------------------------------------------------------------------
    def version(self) -> str:
        return str(self._json("GET", "/version")["version"])

    def current_user(self) -> User:
        return cast(User, self._json("GET", "/user"))

    def create_user(
        self,
        username: str,
        email: str,
        password: str,
        *,
        full_name: str = "",
        must_change_password: bool = False,
    ) -> User:
        """Admin-only. Gitea forces a password change unless told otherwise, so we say so."""
        body = {
            "username": username,
            "email": email,
            "password": password,
            "full_name": full_name,
            "must_change_password": must_change_password,
        }
        return cast(User, self._json("POST", "/admin/users", json=body))

    def create_token(
        self, username: str, password: str, name: str, scopes: Sequence[str] = ("all",)
    ) -> AccessToken:
        """``POST /users/{username}/tokens`` with basic auth (Gitea refuses token auth here)."""
        return cast(
            AccessToken,
            self._json(
                "POST",
                f"/users/{username}/tokens",
                json={"name": name, "scopes": list(scopes)},
                auth=httpx.BasicAuth(username, password),
            ),
        )

    # -- organizations ----------------------------------------------------------------------------
    def list_orgs(self) -> list[Organization]:
        return list(self._paged("/orgs"))

    def create_org(
        self,
        name: str,
        *,
        full_name: str = "",
        description: str = "",
        visibility: str = "public",
        email: str = "",
    ) -> Organization:
        body = {
            "username": name,
            "full_name": full_name,
            "description": description,
            "visibility": visibility,
            "email": email,
        }
        return cast(Organization, self._json("POST", "/orgs", json=body))

    def get_org(self, name: str) -> Organization:
        return cast(Organization, self._json("GET", f"/orgs/{name}"))

    def org_exists(self, name: str) -> bool:
        return self._exists(f"/orgs/{name}")

    def delete_org(self, name: str, *, cascade: bool = False) -> None:
        """Gitea refuses to delete an org that still owns repos; ``cascade`` deletes them first."""
        if cascade:
            for repo in self.list_org_repos(name):
                self.delete_repo(name, repo["name"])
        self.request("DELETE", f"/orgs/{name}")

    def list_org_repos(self, org: str) -> list[Repository]:
        return list(self._paged(f"/orgs/{org}/repos"))

    # -- repositories -----------------------------------------------------------------------------
    def create_org_repo(
        self,
        org: str,
        name: str,
        *,
        private: bool = False,
        description: str = "",
        default_branch: str = "main",
        auto_init: bool = False,
    ) -> Repository:
        body = {
            "name": name,
            "private": private,
            "description": description,
            "default_branch": default_branch,
            "auto_init": auto_init,
        }
        return cast(Repository, self._json("POST", f"/orgs/{org}/repos", json=body))

    def create_repo(
        self,
        org: str,
        name: str,
        *,
        private: bool = False,
        description: str = "",
        default_branch: str = "main",
        auto_init: bool = False,
    ) -> Repository:
        """A repo owned by ``org`` (every Catalyst repo lives in an org: R-NAME-13)."""
        return self.create_org_repo(
            org,
            name,
            private=private,
            description=description,
            default_branch=default_branch,
            auto_init=auto_init,
        )

    def get_repo(self, owner: str, repo: str) -> Repository:
        return cast(Repository, self._json("GET", f"/repos/{owner}/{repo}"))

    def repo_exists(self, owner: str, repo: str) -> bool:
        return self._exists(f"/repos/{owner}/{repo}")

    def delete_repo(self, owner: str, repo: str) -> None:
        self.request("DELETE", f"/repos/{owner}/{repo}")

    def _exists(self, path: str) -> bool:
        try:
            self.request("GET", path)
        except GiteaError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # -- branches ---------------------------------------------------------------------------------
    def list_branches(self, owner: str, repo: str) -> list[Branch]:
        return list(self._paged(f"/repos/{owner}/{repo}/branches"))

    def get_branch(self, owner: str, repo: str, branch: str) -> Branch:
        return cast(Branch, self._json("GET", f"/repos/{owner}/{repo}/branches/{_q(branch)}"))

    def create_branch(
        self,
        owner: str,
        repo: str,
        new_branch: str,
        *,
        from_branch: str | None = None,
        from_ref: str | None = None,
        source: str | None = None,
    ) -> Branch:
        """From ``from_branch`` (alias ``source``; default: the repo's default branch) or any
        commit-ish ``from_ref``."""
        from_branch = from_branch or source
        body: dict[str, str] = {"new_branch_name": new_branch}
        if from_branch:
            body["old_branch_name"] = from_branch
        if from_ref:
            body["old_ref_name"] = from_ref
        return cast(Branch, self._json("POST", f"/repos/{owner}/{repo}/branches", json=body))

    def delete_branch(self, owner: str, repo: str, branch: str) -> None:
        self.request("DELETE", f"/repos/{owner}/{repo}/branches/{_q(branch)}")

    # -- contents ---------------------------------------------------------------------------------
    def get_contents(
        self, owner: str, repo: str, path: str = "", *, ref: str | None = None
    ) -> ContentEntry | list[ContentEntry]:
        """A file's entry (with base64 ``content``) or a directory's listing."""
        url = (
            f"/repos/{owner}/{repo}/contents/{_q(path)}"
            if path.strip("/")
            else f"/repos/{owner}/{repo}/contents"
        )
        return cast("ContentEntry | list[ContentEntry]", self._json("GET", url, params={"ref": ref}))

    def list_dir(
        self, owner: str, repo: str, path: str = "", *, ref: str | None = None
    ) -> list[ContentEntry]:
        found = self.get_contents(owner, repo, path, ref=ref)
        if not isinstance(found, list):
            raise GiteaError(422, f"{path} is a {found.get('type')}, not a directory", "GET", path)
        return found

    def read_bytes(self, owner: str, repo: str, path: str, *, ref: str | None = None) -> bytes:
        found = self.get_contents(owner, repo, path, ref=ref)
        if isinstance(found, list) or found.get("type") != "file":
            kind = "dir" if isinstance(found, list) else found.get("type")
            raise GiteaError(422, f"{path} is a {kind}, not a file", "GET", path)
        return base64.b64decode(found.get("content") or "")

    def read_file(self, owner: str, repo: str, path: str, *, ref: str | None = None) -> str:
        return self.read_bytes(owner, repo, path, ref=ref).decode()

    def file_sha(self, owner: str, repo: str, path: str, *, ref: str | None = None) -> str | None:
        """The blob sha of a file (what update/delete need), or None when it does not exist."""
        try:
            found = self.get_contents(owner, repo, path, ref=ref)
        except GiteaError as exc:
            if exc.status == 404:
                return None
            raise
        return None if isinstance(found, list) else found.get("sha")

    def _commit_options(
        self,
        message: str | None,
        branch: str | None,
        new_branch: str | None,
        author: Identity | None,
        committer: Identity | None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for key, value in (
            ("message", message),
            ("branch", branch),
            ("new_branch", new_branch),
            ("author", _identity(author)),
            ("committer", _identity(committer)),
        ):
            if value:
                body[key] = value
        return body

    def create_file(
        self,
        owner: str,
        repo: str,
        path: str,
        content: str | bytes,
        *,
        message: str | None = None,
        branch: str | None = None,
        new_branch: str | None = None,
        author: Identity | None = None,
        committer: Identity | None = None,
    ) -> FileResponse:
        body = {
            "content": _b64(content),
            **self._commit_options(message, branch, new_branch, author, committer),
        }
        return cast(FileResponse, self._json("POST", f"/repos/{owner}/{repo}/contents/{_q(path)}", json=body))

    def update_file(
        self,
        owner: str,
        repo: str,
        path: str,
        content: str | bytes,
        sha: str,
        *,
        message: str | None = None,
        branch: str | None = None,
        new_branch: str | None = None,
        from_path: str | None = None,
        author: Identity | None = None,
        committer: Identity | None = None,
    ) -> FileResponse:
        body = {
            "content": _b64(content),
            "sha": sha,
            **self._commit_options(message, branch, new_branch, author, committer),
        }
        if from_path:
            body["from_path"] = from_path
        return cast(FileResponse, self._json("PUT", f"/repos/{owner}/{repo}/contents/{_q(path)}", json=body))

    def delete_file(
        self,
        owner: str,
        repo: str,
        path: str,
        sha: str,
        *,
        message: str | None = None,
        branch: str | None = None,
        new_branch: str | None = None,
        author: Identity | None = None,
        committer: Identity | None = None,
    ) -> FileResponse:
        body = {"sha": sha, **self._commit_options(message, branch, new_branch, author, committer)}
        return cast(
            FileResponse, self._json("DELETE", f"/repos/{owner}/{repo}/contents/{_q(path)}", json=body)
        )

    def change_files(
        self,
        owner: str,
        repo: str,
        files: Sequence[FileChange],
        *,
        message: str | None = None,
        branch: str | None = None,
        new_branch: str | None = None,
        author: Identity | None = None,
        committer: Identity | None = None,
    ) -> FilesResponse:
        """Several creates/updates/deletes in ONE commit (``POST /repos/{o}/{r}/contents``)."""
        body = {
            "files": [f.to_json() for f in files],
            **self._commit_options(message, branch, new_branch, author, committer),
        }
        return cast(FilesResponse, self._json("POST", f"/repos/{owner}/{repo}/contents", json=body))

    def current_shas(
        self, owner: str, repo: str, paths: Sequence[str], *, ref: str | None = None
    ) -> dict[str, str]:
        """Blob shas of those ``paths`` that exist at ``ref``: one listing per parent directory.

        The root is listed first: when even it is missing (an empty repository, a branch not yet
        created) nothing exists, and the other directories are not asked for."""
        found: dict[str, str] = {}
        directories = {posixpath.dirname(p.strip("/")) for p in paths}
        for directory in ["", *sorted(directories - {""})]:
            try:
                entries = self.get_contents(owner, repo, directory, ref=ref)
            except GiteaError as exc:
                if exc.status == 404 and directory == "":
                    return {}  # an empty repository or a missing branch: nothing exists yet
                if exc.status == 404:
                    continue  # a directory not created yet
                raise
            if isinstance(entries, list):
                found.update({e["path"]: e["sha"] for e in entries if e.get("type") == "file"})
        return {p.strip("/"): found[p.strip("/")] for p in paths if p.strip("/") in found}

    def commit_files(
        self,
        owner: str,
        repo: str,
        branch: str | None,
        files: Mapping[str, str | bytes | None],
        *,
        message: str | None = None,
        author: Identity | None = None,
        committer: Identity | None = None,
        new_branch: str | None = None,
    ) -> FilesResponse:
        """Write ``files`` (path -> content; ``None`` deletes) as ONE commit, creating or updating
        each path as needed. Works on an empty repository (the commit creates ``branch``)."""
        shas = self.current_shas(owner, repo, list(files), ref=branch)
        changes = []
        for path, content in files.items():
            sha = shas.get(path.strip("/"))
            if content is None:
                if sha:
                    changes.append(FileChange("delete", path, sha=sha))
            elif sha:
                changes.append(FileChange("update", path, content, sha=sha))
            else:
                changes.append(FileChange("create", path, content))
        if not changes:
            raise GiteaError(
                422,
                "nothing to commit: every path to delete is already absent",
                "POST",
                f"{self.base_url}/api/v1/repos/{owner}/{repo}/contents",
            )
        return self.change_files(
            owner,
            repo,
            changes,
            message=message,
            branch=branch,
            new_branch=new_branch,
            author=author,
            committer=committer,
        )

    def put_files(
        self,
        owner: str,
        repo: str,
        files: Mapping[str, str | bytes],
        *,
        message: str | None = None,
        branch: str | None = None,
        author: Identity | None = None,
    ) -> FilesResponse:
        """Create or update each path in one commit: an idempotent write (see :meth:`commit_files`)."""
        return self.commit_files(owner, repo, branch, dict(files), message=message, author=author)

    # -- commits ----------------------------------------------------------------------------------
    def list_commits(
        self,
        owner: str,
        repo: str,
        *,
        sha: str | None = None,
        path: str | None = None,
        limit: int | None = None,
        page: int | None = None,
        stat: bool | None = None,
    ) -> list[Commit]:
        """One page of commits, newest first (``limit`` defaults to Gitea's page size)."""
        params = {
            "sha": sha,
            "path": path,
            "limit": limit,
            "page": page,
            "stat": None if stat is None else str(stat).lower(),
        }
        return cast(list[Commit], self._json("GET", f"/repos/{owner}/{repo}/commits", params=params))

    def get_commit(self, owner: str, repo: str, sha: str) -> Commit:
        return cast(Commit, self._json("GET", f"/repos/{owner}/{repo}/git/commits/{sha}"))

    # -- webhooks ---------------------------------------------------------------------------------
    @staticmethod
    def _hook_body(
        url: str,
        secret: str,
        events: Sequence[str],
        content_type: str,
        branch_filter: str,
        active: bool,
        authorization_header: str | None,
        hook_type: str,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": hook_type,
            "config": {"url": url, "content_type": content_type, "secret": secret},
            "events": list(events),
            "branch_filter": branch_filter,
            "active": active,
        }
        if authorization_header:
            body["authorization_header"] = authorization_header
        return body

    def create_repo_hook(
        self,
        owner: str,
        repo: str,
        url: str,
        *,
        secret: str = "",
        events: Sequence[str] = ("push",),
        content_type: str = "json",
        branch_filter: str = "*",
        active: bool = True,
        authorization_header: str | None = None,
        hook_type: str = "gitea",
    ) -> Hook:
        """Gitea creates hooks *inactive* unless ``active`` is sent, so it always is."""
        body = self._hook_body(
            url, secret, events, content_type, branch_filter, active, authorization_header, hook_type
        )
        return cast(Hook, self._json("POST", f"/repos/{owner}/{repo}/hooks", json=body))

    def create_org_hook(
        self,
        org: str,
        url: str,
        *,
        secret: str = "",
        events: Sequence[str] = ("push",),
        content_type: str = "json",
        branch_filter: str = "*",
        active: bool = True,
        authorization_header: str | None = None,
        hook_type: str = "gitea",
    ) -> Hook:
        """An org hook fires for every repo of the org (the control plane's one hook per Org)."""
        body = self._hook_body(
            url, secret, events, content_type, branch_filter, active, authorization_header, hook_type
        )
        return cast(Hook, self._json("POST", f"/orgs/{org}/hooks", json=body))

    def list_repo_hooks(self, owner: str, repo: str) -> list[Hook]:
        return list(self._paged(f"/repos/{owner}/{repo}/hooks"))

    def list_org_hooks(self, org: str) -> list[Hook]:
        return list(self._paged(f"/orgs/{org}/hooks"))

    def delete_repo_hook(self, owner: str, repo: str, hook_id: int) -> None:
        self.request("DELETE", f"/repos/{owner}/{repo}/hooks/{hook_id}")

    def delete_org_hook(self, org: str, hook_id: int) -> None:
        self.request("DELETE", f"/orgs/{org}/hooks/{hook_id}")

    # -- teams ------------------------------------------------------------------------------------
    def list_teams(self, org: str) -> list[Team]:
        return list(self._paged(f"/orgs/{org}/teams"))

    def create_team(
        self,
        org: str,
        name: str,
        *,
        permission: Literal["read", "write", "admin"] = "write",
        units: Sequence[str] = TEAM_UNITS,
        description: str = "",
        includes_all_repositories: bool = True,
        can_create_org_repo: bool = False,
    ) -> Team:
        """A team with ``permission`` on ``units`` of every org repo (``includes_all_repositories``).

        Gitea refuses a read/write team without units (500 "units permission should not be empty"),
        so the units are always sent, as ``units_map`` at the team's permission.
        """
        body = {
            "name": name,
            "description": description,
            "permission": permission,
            "units": list(units),
            "units_map": {unit: permission for unit in units},
            "includes_all_repositories": includes_all_repositories,
            "can_create_org_repo": can_create_org_repo,
        }
        return cast(Team, self._json("POST", f"/orgs/{org}/teams", json=body))

    def get_team(self, team_id: int) -> Team:
        return cast(Team, self._json("GET", f"/teams/{team_id}"))

    def find_team(self, org: str, name: str) -> Team | None:
        """The org's team called ``name`` (case-insensitive, as Gitea's team names are), or None."""
        return next((t for t in self.list_teams(org) if t.get("name", "").lower() == name.lower()), None)

    def edit_team(
        self,
        team_id: int,
        name: str,
        *,
        permission: Literal["read", "write", "admin"] | None = None,
        units: Sequence[str] | None = None,
        description: str | None = None,
    ) -> Team:
        """EditTeamOption requires ``name``; new ``units`` are sent at the (new) permission."""
        body: dict[str, Any] = {"name": name}
        if permission is not None:
            body["permission"] = permission
        if units is not None:
            body["units"] = list(units)
            if permission is not None:
                body["units_map"] = {unit: permission for unit in units}
        if description is not None:
            body["description"] = description
        return cast(Team, self._json("PATCH", f"/teams/{team_id}", json=body))

    def is_team_member(self, team_id: int, username: str) -> bool:
        return self._exists(f"/teams/{team_id}/members/{username}")

    def delete_team(self, team_id: int) -> None:
        self.request("DELETE", f"/teams/{team_id}")

    def add_team_member(self, team_id: int, username: str) -> None:
        self.request("PUT", f"/teams/{team_id}/members/{username}")

    def remove_team_member(self, team_id: int, username: str) -> None:
        self.request("DELETE", f"/teams/{team_id}/members/{username}")

    def list_team_members(self, team_id: int) -> list[User]:
        return list(self._paged(f"/teams/{team_id}/members"))

    # -- pull requests ----------------------------------------------------------------------------
    def create_pull(self, owner: str, repo: str, head: str, base: str, title: str, body: str = "") -> PullRequest:
        """Open a PR from ``head`` into ``base`` (promotion: staging -> main inside the App repo)."""
        payload = {"head": head, "base": base, "title": title, "body": body}
        return cast(PullRequest, self._json("POST", f"/repos/{owner}/{repo}/pulls", json=payload))

    def get_pull(self, owner: str, repo: str, index: int) -> PullRequest:
        return cast(PullRequest, self._json("GET", f"/repos/{owner}/{repo}/pulls/{index}"))

    def list_pulls(
        self, owner: str, repo: str, *, state: Literal["open", "closed", "all"] = "open"
    ) -> list[PullRequest]:
        """Always sends ``state``: without it Gitea lists every PR, whatever its swagger says."""
        return list(self._paged(f"/repos/{owner}/{repo}/pulls", {"state": state}))

    def edit_pull(
        self,
        owner: str,
        repo: str,
        index: int,
        *,
        title: str | None = None,
        body: str | None = None,
        state: Literal["open", "closed"] | None = None,
    ) -> PullRequest:
        payload = {k: v for k, v in (("title", title), ("body", body), ("state", state)) if v is not None}
        return cast(PullRequest, self._json("PATCH", f"/repos/{owner}/{repo}/pulls/{index}", json=payload))

    def close_pull(self, owner: str, repo: str, index: int) -> PullRequest:
        return self.edit_pull(owner, repo, index, state="closed")

    def reopen_pull(self, owner: str, repo: str, index: int) -> PullRequest:
        return self.edit_pull(owner, repo, index, state="open")

    def pull_files(self, owner: str, repo: str, index: int) -> list[ChangedFile]:
        return list(self._paged(f"/repos/{owner}/{repo}/pulls/{index}/files"))

    def pull_commits(self, owner: str, repo: str, index: int) -> list[Commit]:
        return list(self._paged(f"/repos/{owner}/{repo}/pulls/{index}/commits", {"files": "false"}))

    def is_pull_merged(self, owner: str, repo: str, index: int) -> bool:
        return self._exists(f"/repos/{owner}/{repo}/pulls/{index}/merge")

    def merge_pull(
        self,
        owner: str,
        repo: str,
        index: int,
        *,
        style: Literal["merge", "squash", "fast-forward-only", "rebase", "rebase-merge"] = "merge",
        title: str | None = None,
        message: str | None = None,
        head_commit_id: str | None = None,
        delete_branch_after_merge: bool = False,
        force_merge: bool = False,
    ) -> None:
        """Merge, or raise :class:`GiteaError`: 405 when Gitea refuses (branch protection —
        "not allowed to merge [reason: Does not have enough approvals]" —, permission, already merged),
        409 on conflicts or a head that moved past ``head_commit_id``, 404 for a closed PR."""
        payload: dict[str, Any] = {"Do": style}
        for key, value in (
            ("MergeTitleField", title),
            ("MergeMessageField", message),
            ("head_commit_id", head_commit_id),
        ):
            if value:
                payload[key] = value
        if delete_branch_after_merge:
            payload["delete_branch_after_merge"] = True
        if force_merge:
            payload["force_merge"] = True
        self.request("POST", f"/repos/{owner}/{repo}/pulls/{index}/merge", json=payload)

    # -- reviews ----------------------------------------------------------------------------------
    def create_review(
        self,
        owner: str,
        repo: str,
        index: int,
        event: Literal["APPROVED", "REQUEST_CHANGES", "COMMENT"],
        body: str = "",
        *,
        commit_id: str | None = None,
    ) -> PullReview:
        """Submit a review (Gitea refuses an author's approval of their own PR with 422)."""
        payload: dict[str, Any] = {"event": event, "body": body}
        if commit_id:
            payload["commit_id"] = commit_id
        return cast(PullReview, self._json("POST", f"/repos/{owner}/{repo}/pulls/{index}/reviews", json=payload))

    def approve_pull(self, owner: str, repo: str, index: int, body: str = "") -> PullReview:
        return self.create_review(owner, repo, index, "APPROVED", body)

    def request_changes(self, owner: str, repo: str, index: int, body: str) -> PullReview:
        return self.create_review(owner, repo, index, "REQUEST_CHANGES", body)

    def list_reviews(self, owner: str, repo: str, index: int) -> list[PullReview]:
        return list(self._paged(f"/repos/{owner}/{repo}/pulls/{index}/reviews"))

    def get_review(self, owner: str, repo: str, index: int, review_id: int) -> PullReview:
        return cast(PullReview, self._json("GET", f"/repos/{owner}/{repo}/pulls/{index}/reviews/{review_id}"))

    def delete_review(self, owner: str, repo: str, index: int, review_id: int) -> None:
        self.request("DELETE", f"/repos/{owner}/{repo}/pulls/{index}/reviews/{review_id}")

    def dismiss_review(
        self, owner: str, repo: str, index: int, review_id: int, message: str = "", *, priors: bool = False
    ) -> PullReview:
        """Repo admins only; the review no longer counts (nor blocks) a merge."""
        return cast(
            PullReview,
            self._json(
                "POST",
                f"/repos/{owner}/{repo}/pulls/{index}/reviews/{review_id}/dismissals",
                json={"message": message, "priors": priors},
            ),
        )

    def undismiss_review(self, owner: str, repo: str, index: int, review_id: int) -> PullReview:
        return cast(
            PullReview,
            self._json("POST", f"/repos/{owner}/{repo}/pulls/{index}/reviews/{review_id}/undismissals"),
        )

    # -- branch protection ------------------------------------------------------------------------
    def list_branch_protections(self, owner: str, repo: str) -> list[BranchProtection]:
        return cast(list[BranchProtection], self._json("GET", f"/repos/{owner}/{repo}/branch_protections"))

    def create_branch_protection(self, owner: str, repo: str, rule_name: str, **options: Any) -> BranchProtection:
        """Protect the branches ``rule_name`` names (a branch, or a glob such as ``release/*``).

        ``options`` are CreateBranchProtectionOption fields, e.g. ``enable_push=True,
        push_whitelist_teams=["release-bots"], required_approvals=2,
        approvals_whitelist_teams=["team-platform", "team-security"], block_on_rejected_reviews=True,
        dismiss_stale_approvals=True``. A whitelist given by names is switched on unless its
        ``enable_*_whitelist`` flag is passed; an unknown option is a TypeError.
        """
        body = {"rule_name": rule_name, **_protection_body(options)}
        return cast(BranchProtection, self._json("POST", f"/repos/{owner}/{repo}/branch_protections", json=body))

    def get_branch_protection(self, owner: str, repo: str, rule_name: str) -> BranchProtection:
        return cast(
            BranchProtection,
            self._json("GET", f"/repos/{owner}/{repo}/branch_protections/{quote(rule_name, safe='')}"),
        )

    def edit_branch_protection(self, owner: str, repo: str, rule_name: str, **options: Any) -> BranchProtection:
        """Change only the given fields (EditBranchProtectionOption)."""
        return cast(
            BranchProtection,
            self._json(
                "PATCH",
                f"/repos/{owner}/{repo}/branch_protections/{quote(rule_name, safe='')}",
                json=_protection_body(options),
            ),
        )

    def delete_branch_protection(self, owner: str, repo: str, rule_name: str) -> None:
        self.request("DELETE", f"/repos/{owner}/{repo}/branch_protections/{quote(rule_name, safe='')}")


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    if isinstance(body, dict) and body.get("message"):
        errors = body.get("errors")
        return f"{body['message']} {errors}" if errors else str(body["message"])
    return response.text.strip()[:500] or response.reason_phrase


__all__ = [
    "TEAM_UNITS",
    "AccessToken",
    "Branch",
    "BranchProtection",
    "ChangedFile",
    "Commit",
    "CommitUser",
    "ContentEntry",
    "FileChange",
    "FileResponse",
    "FilesResponse",
    "GiteaClient",
    "GiteaError",
    "Hook",
    "Identity",
    "Organization",
    "PRBranchInfo",
    "PullRequest",
    "PullReview",
    "Repository",
    "Team",
    "User",
]
