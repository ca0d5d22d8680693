"""Contract: every endpoint of the embedded forge against Gitea's swagger (R-GIT, DESIGN.md §3).

Two scripted sessions (the base API, then promotion: teams, pull requests, reviews, merges and branch
protection) drive every implemented route through its success case and the error cases we emulate,
recording each exchange. Then, per route: the path+method exists in the swagger; every
status we answered is one the swagger declares for it, or one real Gitea is known to send there
(listed below with the reason — Gitea's swagger mostly documents only the success code); the JSON
field names are a subset of the response schema (``$ref``s resolved, nested objects too), the
important fields are present, the value types and date-times match; declared headers
(``X-Total-Count``) are sent. The swagger is ``tests/data/gitea-swagger-subset.json``, a filtered
copy of ``contracts/gitea-api.v1.swagger.json`` so CI does not depend on the shared folder.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from catalyst_sim.backends.embedded.forge import EmbeddedForge
from catalyst_sim.backends.embedded.forge.api import ForgeAPI

from .conftest import unique

SWAGGER: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "data" / "gitea-swagger-subset.json").read_text()
)
ROUTES = sorted((method.upper(), path) for path, ops in SWAGGER["paths"].items() for method in ops)

# Statuses real Gitea sends on these routes although its swagger does not declare them.
GLOBAL_UNDECLARED = {
    401: "Gitea's API auth middleware answers a presented-but-unknown token or password with 401 on every "
    "route, and reqToken()/reqBasicAuth() answer anonymous callers with 401 'token is required'",
}
WRITE_403 = (
    "403 on a write route: tokenRequiresScopes() (token without the scope category), "
    "reqRepoWriter/reqAdmin/reqOrgOwnership/reqSiteAdmin middlewares"
)
OWNER_404 = (
    "404 from the repoAssignment/orgAssignment/userAssignment middlewares: the owner or repo is "
    "missing or invisible to the caller, before the handler runs"
)
SPECIFIC_UNDECLARED = {
    (
        "POST",
        "/orgs/{org}/repos",
        409,
    ): "CreateUserRepo: 409 'The repository with the same name already exists.'",
    ("POST", "/orgs/{org}/repos", 422): "CreateUserRepo: 422 for a reserved name or name pattern",
    (
        "POST",
        "/repos/{owner}/{repo}/branches",
        422,
    ): "binding error: new_branch_name is not a valid GitRefName",
    ("POST", "/repos/{owner}/{repo}/hooks", 422): "checkCreateHookOption: 'Invalid hook type' etc. -> 422",
    ("POST", "/orgs/{org}/hooks", 422): "checkCreateHookOption: 'Invalid hook type' etc. -> 422",
    ("DELETE", "/orgs/{org}", 500): "org.DeleteOrganization's ErrUserOwnRepos is surfaced as a 500",
    ("POST", "/users/{username}/tokens", 422): "binding error: name is required",
    ("GET", "/orgs/{org}/teams", 403): "reqOrgMembership: 'Must be an organization member'",
    (
        "POST",
        "/orgs/{org}/teams",
        500,
    ): "CreateTeam: a read/write team without units is a 500 'units permission should not be empty'",
    ("POST", "/repos/{owner}/{repo}/pulls/{index}/merge", 422): "binding error: Do is Required and In(...)",
    (
        "POST",
        "/repos/{owner}/{repo}/branch_protections",
        400,
    ): "CreateBranchProtection: 'both rule_name and branch_name are empty'",
    ("GET", "/repos/{owner}/{repo}/branch_protections", 403): "the branch_protections group is behind reqAdmin()",
    (
        "GET",
        "/repos/{owner}/{repo}/branch_protections/{name}",
        403,
    ): "the branch_protections group is behind reqAdmin()",
}

# Fields a client relies on: they must be present (the swagger marks no response field required).
IMPORTANT = {
    "ServerVersion": {"version"},
    "User": {"id", "login", "email", "full_name", "is_admin", "avatar_url", "html_url"},
    "AccessToken": {"id", "name", "sha1", "token_last_eight", "scopes"},
    "Organization": {"id", "name", "username", "full_name", "visibility"},
    "Repository": {
        "id",
        "name",
        "full_name",
        "owner",
        "private",
        "empty",
        "default_branch",
        "clone_url",
        "html_url",
        "url",
        "permissions",
        "created_at",
    },
    "Permission": {"admin", "push", "pull"},
    "Branch": {"name", "commit", "protected"},
    "PayloadCommit": {"id", "message", "url", "author", "committer", "timestamp"},
    "PayloadUser": {"name", "email", "username"},
    "ContentsResponse": {
        "name",
        "path",
        "sha",
        "type",
        "size",
        "url",
        "html_url",
        "git_url",
        "_links",
        "last_commit_sha",
    },
    "FileResponse": {"content", "commit"},
    "FilesResponse": {"files", "commit"},
    "FileDeleteResponse": {"content", "commit"},
    "FileCommitResponse": {"sha", "url", "html_url", "message", "tree", "parents", "author", "committer"},
    "CommitUser": {"name", "email", "date"},
    "CommitMeta": {"sha", "url"},
    "Commit": {"sha", "url", "html_url", "commit", "parents", "created"},
    "RepoCommit": {"message", "author", "committer", "tree", "url"},
    "Hook": {"id", "type", "active", "events", "config", "branch_filter", "created_at", "updated_at"},
    "Team": {"id", "name", "permission", "units", "units_map", "includes_all_repositories"},
    "PullRequest": {
        "id",
        "number",
        "url",
        "html_url",
        "user",
        "title",
        "body",
        "state",
        "head",
        "base",
        "mergeable",
        "merged",
        "merged_at",
        "merge_commit_sha",
        "merge_base",
        "created_at",
        "updated_at",
    },
    "PRBranchInfo": {"label", "ref", "sha", "repo_id", "repo"},
    "PullReview": {"id", "user", "state", "body", "commit_id", "official", "stale", "dismissed", "submitted_at"},
    "ChangedFile": {"filename", "status", "additions", "deletions", "changes", "contents_url"},
    "BranchProtection": {
        "rule_name",
        "branch_name",
        "enable_push",
        "enable_push_whitelist",
        "push_whitelist_usernames",
        "push_whitelist_teams",
        "required_approvals",
        "enable_approvals_whitelist",
        "approvals_whitelist_username",
        "approvals_whitelist_teams",
        "block_on_rejected_reviews",
        "dismiss_stale_approvals",
        "created_at",
        "updated_at",
    },
    "APIError": {"message", "url"},
    "APIValidationError": {"message", "url"},
    "APIForbiddenError": {"message", "url"},
    "APIUnauthorizedError": {"message", "url"},
    "APINotFound": {"message", "url"},
}
# Fields real Gitea sends that its swagger does not list (kept because clients read them).
KNOWN_EXTRA = {
    "User": {"username"},  # structs.User.MarshalJSON adds "username" (= login) for backward compatibility
}
# Routes whose real answer has another shape than the swagger's single schema.
LIST_OR_OBJECT = {
    # GetContentsOrList: a file path gives one ContentsResponse, a directory path a list of them.
    ("GET", "/repos/{owner}/{repo}/contents/{filepath}"),
}
PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "number": (int, float),
}


@dataclass
class Exchange:
    method: str
    template: str
    status: int
    body: Any
    headers: httpx.Headers


class Recorder:
    """Sends requests by swagger path template and records what came back."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.exchanges: list[Exchange] = []

    def __call__(
        self,
        method: str,
        template: str,
        expect: int,
        *,
        headers: dict[str, str] | None = None,
        body: Any = None,
        params: dict[str, Any] | None = None,
        **path: str,
    ) -> Any:
        url = "/api/v1" + template.format(**path)
        response = self.client.request(method, url, headers=headers or {}, json=body, params=params)
        assert response.status_code == expect, f"{method} {url}: {response.status_code} {response.text[:300]}"
        parsed = (
            response.json()
            if response.content and "json" in response.headers.get("content-type", "")
            else None
        )
        self.exchanges.append(Exchange(method, template, response.status_code, parsed, response.headers))
        return parsed


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture(scope="module")
def exchanges(forge: EmbeddedForge) -> list[Exchange]:
    with httpx.Client(base_url=forge.url, timeout=30, trust_env=False) as client:
        call = Recorder(client)
        run_session(call, forge)
        run_promotion_session(call, forge)
        return call.exchanges


def run_session(call: Recorder, forge: EmbeddedForge) -> None:
    """One scripted story through every route: success first, then each emulated error."""
    admin = {"Authorization": f"token {forge.token}"}
    bogus = {"Authorization": "token " + "0" * 40}

    call("GET", "/version", 200)
    call("GET", "/user", 200, headers=admin)
    call("GET", "/user", 401)
    call("GET", "/user", 401, headers=bogus)

    # users and tokens
    alice, password = unique("alice"), "correct-horse-1"
    call(
        "POST",
        "/admin/users",
        201,
        headers=admin,
        body={
            "username": alice,
            "email": f"{alice}@example.invalid",
            "password": password,
            "must_change_password": False,
        },
    )
    call(
        "POST",
        "/admin/users",
        422,
        headers=admin,
        body={"username": alice, "email": f"{alice}@example.invalid", "password": password},
    )
    call(
        "POST",
        "/admin/users",
        400,
        headers=admin,
        body={"username": unique("bob"), "email": "b@example.invalid"},
    )
    call(
        "POST",
        "/admin/users",
        401,
        body={"username": "x", "email": "x@example.invalid", "password": password},
    )
    basic = {"Authorization": "Basic " + base64.b64encode(f"{alice}:{password}".encode()).decode()}
    token = call(
        "POST",
        "/users/{username}/tokens",
        201,
        headers=basic,
        username=alice,
        body={"name": "ci", "scopes": ["write:repository", "write:organization", "read:user"]},
    )
    alice_auth = {"Authorization": f"token {token['sha1']}"}
    call(
        "POST",
        "/users/{username}/tokens",
        400,
        headers=basic,
        username=alice,
        body={"name": "ci", "scopes": ["all"]},
    )
    call(
        "POST",
        "/users/{username}/tokens",
        400,
        headers=basic,
        username=alice,
        body={"name": "x", "scopes": []},
    )
    call("POST", "/users/{username}/tokens", 401, headers=admin, username=forge.admin, body={"name": "y"})
    call(
        "POST",
        "/users/{username}/tokens",
        403,
        headers=basic,
        username=forge.admin,
        body={"name": "steal", "scopes": ["all"]},
    )
    call(
        "POST",
        "/users/{username}/tokens",
        404,
        headers=basic,
        username="nobody-here",
        body={"name": "z", "scopes": ["all"]},
    )
    call("GET", "/users/{username}/tokens", 200, headers=basic, username=alice)
    call(
        "POST",
        "/admin/users",
        403,
        headers=alice_auth,
        body={"username": "x", "email": "x@example.invalid", "password": password},
    )

    # organizations
    org = unique("org")
    call(
        "POST",
        "/orgs",
        201,
        headers=admin,
        body={"username": org, "full_name": "Acme", "visibility": "public"},
    )
    call("POST", "/orgs", 422, headers=admin, body={"username": org})
    call("POST", "/orgs", 422, headers=admin, body={"username": "bad name!"})
    call("POST", "/orgs", 401, body={"username": unique("org")})
    call("GET", "/orgs", 200, headers=admin, params={"limit": 1})
    call("GET", "/orgs/{org}", 200, org=org)
    call("GET", "/orgs/{org}", 404, org="no-such-org")

    # repositories
    repo, private, empty = unique("app"), unique("secret"), unique("empty")
    call("POST", "/orgs/{org}/repos", 201, headers=admin, org=org, body={"name": repo, "auto_init": True})
    call("POST", "/orgs/{org}/repos", 201, headers=admin, org=org, body={"name": private, "private": True})
    call("POST", "/orgs/{org}/repos", 201, headers=admin, org=org, body={"name": empty})
    call("POST", "/orgs/{org}/repos", 409, headers=admin, org=org, body={"name": repo})
    call("POST", "/orgs/{org}/repos", 422, headers=admin, org=org, body={"name": "x.git"})
    call("POST", "/orgs/{org}/repos", 404, headers=admin, org="no-such-org", body={"name": "x"})
    call("POST", "/orgs/{org}/repos", 403, headers=alice_auth, org=org, body={"name": "mine"})
    call("GET", "/orgs/{org}/repos", 200, org=org)
    call("GET", "/orgs/{org}/repos", 404, org="no-such-org")
    call("GET", "/repos/{owner}/{repo}", 200, owner=org, repo=repo)
    call("GET", "/repos/{owner}/{repo}", 404, owner=org, repo="missing")
    call("GET", "/repos/{owner}/{repo}", 404, owner=org, repo=private)
    call("GET", "/repos/{owner}/{repo}", 200, headers=admin, owner=org, repo=private)

    # branches
    r = {"owner": org, "repo": repo}
    call("GET", "/repos/{owner}/{repo}/branches", 200, **r)
    call("GET", "/repos/{owner}/{repo}/branches", 404, owner=org, repo="missing")
    call(
        "POST", "/repos/{owner}/{repo}/branches", 201, headers=admin, body={"new_branch_name": "develop"}, **r
    )
    call(
        "POST",
        "/repos/{owner}/{repo}/branches",
        201,
        headers=admin,
        body={"new_branch_name": "staging", "old_branch_name": "develop"},
        **r,
    )
    call(
        "POST", "/repos/{owner}/{repo}/branches", 409, headers=admin, body={"new_branch_name": "develop"}, **r
    )
    call(
        "POST",
        "/repos/{owner}/{repo}/branches",
        404,
        headers=admin,
        body={"new_branch_name": "x", "old_branch_name": "nope"},
        **r,
    )
    call(
        "POST",
        "/repos/{owner}/{repo}/branches",
        422,
        headers=admin,
        body={"new_branch_name": "bad..name"},
        **r,
    )
    call(
        "POST", "/repos/{owner}/{repo}/branches", 403, headers=alice_auth, body={"new_branch_name": "x"}, **r
    )
    call("GET", "/repos/{owner}/{repo}/branches/{branch}", 200, branch="develop", **r)
    call("GET", "/repos/{owner}/{repo}/branches/{branch}", 404, branch="nope", **r)
    call("DELETE", "/repos/{owner}/{repo}/branches/{branch}", 204, headers=admin, branch="staging", **r)
    call("DELETE", "/repos/{owner}/{repo}/branches/{branch}", 404, headers=admin, branch="staging", **r)
    call("DELETE", "/repos/{owner}/{repo}/branches/{branch}", 403, headers=admin, branch="main", **r)

    # contents
    call("GET", "/repos/{owner}/{repo}/contents", 200, **r)
    readme = call("GET", "/repos/{owner}/{repo}/contents/{filepath}", 200, filepath="README.md", **r)
    call("GET", "/repos/{owner}/{repo}/contents/{filepath}", 404, filepath="nope.txt", **r)
    call("GET", "/repos/{owner}/{repo}/contents", 404, params={"ref": "no-such-ref"}, **r)
    created = call(
        "POST",
        "/repos/{owner}/{repo}/contents/{filepath}",
        201,
        headers=admin,
        filepath="a/b.yaml",
        body={"content": b64("a: 1\n"), "message": "add b"},
        **r,
    )
    call("GET", "/repos/{owner}/{repo}/contents/{filepath}", 200, filepath="a", **r)
    call(
        "POST",
        "/repos/{owner}/{repo}/contents/{filepath}",
        422,
        headers=admin,
        filepath="a/b.yaml",
        body={"content": b64("again")},
        **r,
    )
    call(
        "POST",
        "/repos/{owner}/{repo}/contents/{filepath}",
        403,
        headers=alice_auth,
        filepath="c.txt",
        body={"content": b64("c")},
        **r,
    )
    call(
        "POST",
        "/repos/{owner}/{repo}/contents/{filepath}",
        404,
        headers=admin,
        filepath="c.txt",
        body={"content": b64("c"), "branch": "nope"},
        **r,
    )
    sha = created["content"]["sha"]
    updated = call(
        "PUT",
        "/repos/{owner}/{repo}/contents/{filepath}",
        200,
        headers=admin,
        filepath="a/b.yaml",
        body={"content": b64("a: 2\n"), "sha": sha},
        **r,
    )
    call(
        "PUT",
        "/repos/{owner}/{repo}/contents/{filepath}",
        422,
        headers=admin,
        filepath="a/b.yaml",
        body={"content": b64("a: 3\n"), "sha": sha},
        **r,
    )
    call(
        "PUT",
        "/repos/{owner}/{repo}/contents/{filepath}",
        404,
        headers=admin,
        filepath="nope.yaml",
        body={"content": b64("x"), "sha": sha},
        **r,
    )
    call(
        "DELETE",
        "/repos/{owner}/{repo}/contents/{filepath}",
        400,
        headers=admin,
        filepath="a/b.yaml",
        body={"sha": sha},
        **r,
    )
    call(
        "DELETE",
        "/repos/{owner}/{repo}/contents/{filepath}",
        200,
        headers=admin,
        filepath="a/b.yaml",
        body={"sha": updated["content"]["sha"]},
        **r,
    )
    call(
        "DELETE",
        "/repos/{owner}/{repo}/contents/{filepath}",
        404,
        headers=admin,
        filepath="a/b.yaml",
        body={"sha": sha},
        **r,
    )
    call(
        "POST",
        "/repos/{owner}/{repo}/contents",
        201,
        headers=admin,
        **r,
        body={
            "message": "two files",
            "files": [
                {"operation": "create", "path": "x.yaml", "content": b64("x")},
                {"operation": "create", "path": "d/y.yaml", "content": b64("y")},
            ],
        },
    )
    call(
        "POST",
        "/repos/{owner}/{repo}/contents",
        422,
        headers=admin,
        **r,
        body={"files": [{"operation": "create", "path": "x.yaml", "content": b64("x")}]},
    )
    call(
        "POST",
        "/repos/{owner}/{repo}/contents",
        404,
        headers=admin,
        **r,
        body={"branch": "nope", "files": [{"operation": "create", "path": "z", "content": b64("z")}]},
    )
    call(
        "POST",
        "/repos/{owner}/{repo}/contents",
        201,
        headers=admin,
        owner=org,
        repo=empty,
        body={"files": [{"operation": "create", "path": "first.txt", "content": b64("1")}]},
    )
    assert readme["encoding"] == "base64"

    # commits
    commits = call("GET", "/repos/{owner}/{repo}/commits", 200, params={"limit": 2}, **r)
    call("GET", "/repos/{owner}/{repo}/commits", 200, params={"path": "x.yaml", "sha": "develop"}, **r)
    call("GET", "/repos/{owner}/{repo}/commits", 404, params={"sha": "no-such-branch"}, **r)
    empty2 = unique("empty")
    call("POST", "/orgs/{org}/repos", 201, headers=admin, org=org, body={"name": empty2})
    call("GET", "/repos/{owner}/{repo}/commits", 409, owner=org, repo=empty2)
    call("GET", "/repos/{owner}/{repo}/git/commits/{sha}", 200, sha=commits[0]["sha"], **r)
    call("GET", "/repos/{owner}/{repo}/git/commits/{sha}", 404, sha="0" * 40, **r)
    call("GET", "/repos/{owner}/{repo}/git/commits/{sha}", 422, sha="not valid!", **r)

    # repo hooks
    hook_body = {
        "type": "gitea",
        "config": {"url": "http://127.0.0.1:9/hook", "content_type": "json", "secret": "s3cret"},
        "events": ["push"],
        "active": True,
    }
    hook = call("POST", "/repos/{owner}/{repo}/hooks", 201, headers=admin, body=hook_body, **r)
    call("POST", "/repos/{owner}/{repo}/hooks", 422, headers=admin, body={**hook_body, "type": "nope"}, **r)
    call("POST", "/repos/{owner}/{repo}/hooks", 403, headers=alice_auth, body=hook_body, **r)
    call("POST", "/repos/{owner}/{repo}/hooks", 404, headers=admin, body=hook_body, owner=org, repo="missing")
    call("GET", "/repos/{owner}/{repo}/hooks", 200, headers=admin, **r)
    call("GET", "/repos/{owner}/{repo}/hooks/{id}", 200, headers=admin, id=str(hook["id"]), **r)
    call("GET", "/repos/{owner}/{repo}/hooks/{id}", 404, headers=admin, id="999999", **r)
    call(
        "PATCH",
        "/repos/{owner}/{repo}/hooks/{id}",
        200,
        headers=admin,
        id=str(hook["id"]),
        body={"active": False, "events": ["push", "create"]},
        **r,
    )
    call(
        "PATCH",
        "/repos/{owner}/{repo}/hooks/{id}",
        404,
        headers=admin,
        id="999999",
        body={"active": True},
        **r,
    )
    call("DELETE", "/repos/{owner}/{repo}/hooks/{id}", 204, headers=admin, id=str(hook["id"]), **r)
    call("DELETE", "/repos/{owner}/{repo}/hooks/{id}", 404, headers=admin, id=str(hook["id"]), **r)

    # org hooks
    org_hook = call("POST", "/orgs/{org}/hooks", 201, headers=admin, body=hook_body, org=org)
    call(
        "POST",
        "/orgs/{org}/hooks",
        422,
        headers=admin,
        body={**hook_body, "config": {"content_type": "json"}},
        org=org,
    )
    call("POST", "/orgs/{org}/hooks", 403, headers=alice_auth, body=hook_body, org=org)
    call("POST", "/orgs/{org}/hooks", 404, headers=admin, body=hook_body, org="no-such-org")
    call("GET", "/orgs/{org}/hooks", 200, headers=admin, org=org)
    call("GET", "/orgs/{org}/hooks/{id}", 200, headers=admin, org=org, id=str(org_hook["id"]))
    call("GET", "/orgs/{org}/hooks/{id}", 404, headers=admin, org=org, id="999999")
    call(
        "PATCH",
        "/orgs/{org}/hooks/{id}",
        200,
        headers=admin,
        org=org,
        id=str(org_hook["id"]),
        body={"config": {"url": "http://127.0.0.1:9/other", "content_type": "form"}},
    )
    call("PATCH", "/orgs/{org}/hooks/{id}", 404, headers=admin, org=org, id="999999", body={})
    call("DELETE", "/orgs/{org}/hooks/{id}", 204, headers=admin, org=org, id=str(org_hook["id"]))
    call("DELETE", "/orgs/{org}/hooks/{id}", 404, headers=admin, org=org, id=str(org_hook["id"]))

    # deletion
    call("DELETE", "/repos/{owner}/{repo}", 403, headers=alice_auth, **r)
    call("DELETE", "/orgs/{org}", 403, headers=alice_auth, org=org)
    call("DELETE", "/orgs/{org}", 500, headers=admin, org=org)
    for name in (repo, private, empty, empty2):
        call("DELETE", "/repos/{owner}/{repo}", 204, headers=admin, owner=org, repo=name)
    call("DELETE", "/repos/{owner}/{repo}", 404, headers=admin, **r)
    call("DELETE", "/orgs/{org}", 204, headers=admin, org=org)
    call("DELETE", "/orgs/{org}", 404, headers=admin, org=org)


def run_promotion_session(call: Recorder, forge: EmbeddedForge) -> None:
    """Teams, branch protection, a promotion PR with reviews and its merge: success, then errors."""
    admin = {"Authorization": f"token {forge.token}"}
    people = {}
    for role in ("author", "reviewer", "outsider"):
        login = unique(role)
        people[role] = {"login": login, "auth": {"Authorization": f"token {forge.create_user(login)[1]}"}}
    author, reviewer, outsider = (people[k]["auth"] for k in ("author", "reviewer", "outsider"))
    org, repo = unique("porg"), unique("papp")
    call("POST", "/orgs", 201, headers=admin, body={"username": org})
    call("POST", "/orgs/{org}/repos", 201, headers=admin, org=org, body={"name": repo, "auto_init": True})
    r = {"owner": org, "repo": repo}
    call("POST", "/repos/{owner}/{repo}/branches", 201, headers=admin, body={"new_branch_name": "staging"}, **r)
    call(
        "POST",
        "/repos/{owner}/{repo}/contents/{filepath}",
        201,
        headers=admin,
        filepath="env.yaml",
        body={"content": b64("tier: prod\n"), "branch": "staging"},
        **r,
    )

    # teams
    call("GET", "/orgs/{org}/teams", 200, headers=admin, org=org)
    call("GET", "/orgs/{org}/teams", 403, headers=outsider, org=org)
    call("GET", "/orgs/{org}/teams", 404, headers=admin, org="no-such-org")
    write_team = {
        "name": "platform",
        "permission": "write",
        "units": ["repo.code", "repo.pulls"],
        "includes_all_repositories": True,
    }
    call("POST", "/orgs/{org}/teams", 500, headers=admin, org=org, body={"name": "bare", "permission": "write"})
    call("POST", "/orgs/{org}/teams", 422, headers=admin, org=org, body={"name": "Owners", "permission": "admin"})
    call("POST", "/orgs/{org}/teams", 403, headers=outsider, org=org, body=write_team)
    call("POST", "/orgs/{org}/teams", 404, headers=admin, org="no-such-org", body=write_team)
    team = call("POST", "/orgs/{org}/teams", 201, headers=admin, org=org, body=write_team)
    t = {"id": str(team["id"])}
    call("GET", "/teams/{id}", 200, headers=admin, **t)
    call("GET", "/teams/{id}", 404, headers=admin, id="999999")
    call("PATCH", "/teams/{id}", 200, headers=admin, body={"name": "platform", "description": "approvers"}, **t)
    call("PATCH", "/teams/{id}", 404, headers=admin, id="999999", body={"name": "x"})
    for role in ("author", "reviewer"):
        call("PUT", "/teams/{id}/members/{username}", 204, headers=admin, username=people[role]["login"], **t)
    call("PUT", "/teams/{id}/members/{username}", 404, headers=admin, username="nobody-here", **t)
    call("PUT", "/teams/{id}/members/{username}", 403, headers=author, username=people["outsider"]["login"], **t)
    call("GET", "/teams/{id}/members", 200, headers=admin, **t)
    call("GET", "/teams/{id}/members", 404, headers=admin, id="999999")
    call("GET", "/teams/{id}/members/{username}", 200, headers=author, username=people["author"]["login"], **t)
    call("GET", "/teams/{id}/members/{username}", 404, headers=admin, username=people["outsider"]["login"], **t)
    temp = call("POST", "/orgs/{org}/teams", 201, headers=admin, org=org, body={"name": "temp", "permission": "admin"})
    tt = {"id": str(temp["id"])}
    call("PUT", "/teams/{id}/members/{username}", 204, headers=admin, username=people["outsider"]["login"], **tt)
    call("DELETE", "/teams/{id}/members/{username}", 403, headers=author, username=people["outsider"]["login"], **tt)
    call("DELETE", "/teams/{id}/members/{username}", 204, headers=admin, username=people["outsider"]["login"], **tt)
    call("DELETE", "/teams/{id}/members/{username}", 404, headers=admin, username="nobody-here", **tt)
    call("DELETE", "/teams/{id}", 403, headers=author, **t)
    call("DELETE", "/teams/{id}", 204, headers=admin, **tt)
    call("DELETE", "/teams/{id}", 404, headers=admin, **tt)

    # branch protection
    bp = "/repos/{owner}/{repo}/branch_protections"
    rule = {
        "rule_name": "main",
        "required_approvals": 1,
        "approvals_whitelist_teams": ["platform"],
        "enable_approvals_whitelist": True,
        "block_on_rejected_reviews": True,
        "dismiss_stale_approvals": True,
    }
    call("POST", bp, 201, headers=admin, body=rule, **r)
    call("POST", bp, 403, headers=admin, body=rule, **r)  # "Branch protection already exist"
    call("POST", bp, 422, headers=admin, body={"rule_name": "x", "push_whitelist_usernames": ["nobody-here"]}, **r)
    call("POST", bp, 400, headers=admin, body={}, **r)
    call("POST", bp, 403, headers=author, body={"rule_name": "y"}, **r)
    call("POST", bp, 404, headers=admin, body=rule, owner=org, repo="missing")
    call("POST", bp, 201, headers=admin, body={"rule_name": "release/*"}, **r)
    call("GET", bp, 200, headers=admin, **r)
    call("GET", bp, 403, headers=author, **r)
    call("GET", bp + "/{name}", 200, headers=admin, name="main", **r)
    call("GET", bp + "/{name}", 200, headers=admin, name="release/*", **r)
    call("GET", bp + "/{name}", 404, headers=admin, name="nope", **r)
    call("GET", bp + "/{name}", 403, headers=author, name="main", **r)
    call("PATCH", bp + "/{name}", 200, headers=admin, name="main", body={"enable_push": False}, **r)
    call("PATCH", bp + "/{name}", 404, headers=admin, name="nope", body={}, **r)
    call("PATCH", bp + "/{name}", 422, headers=admin, name="main", body={"approvals_whitelist_teams": ["nope"]}, **r)
    call("DELETE", bp + "/{name}", 204, headers=admin, name="release/*", **r)
    call("DELETE", bp + "/{name}", 404, headers=admin, name="release/*", **r)

    # a promotion pull request
    pulls = "/repos/{owner}/{repo}/pulls"
    promote = {"head": "staging", "base": "main", "title": "Promote"}
    pr = call("POST", pulls, 201, headers=author, body=promote, **r)
    call("POST", pulls, 409, headers=author, body=promote, **r)
    call("POST", pulls, 422, headers=author, body={**promote, "head": "main"}, **r)
    call("POST", pulls, 422, headers=author, body={"head": "staging", "base": "main"}, **r)
    call("POST", pulls, 404, headers=author, body={**promote, "base": "nope"}, **r)
    call("GET", pulls, 200, params={"state": "open"}, **r)
    call("GET", pulls, 200, params={"state": "all", "sort": "oldest"}, **r)
    call("GET", pulls, 404, owner=org, repo="missing")
    one = {"index": str(pr["number"]), **r}
    none = {"index": "999", **r}
    call("GET", pulls + "/{index}", 200, **one)
    call("GET", pulls + "/{index}", 404, **none)
    call("PATCH", pulls + "/{index}", 201, headers=author, body={"title": "Promote to prod", "body": "R-PROMO"}, **one)
    call("PATCH", pulls + "/{index}", 403, headers=outsider, body={"title": "hijack"}, **one)
    call("PATCH", pulls + "/{index}", 412, headers=author, body={"state": "bogus"}, **one)
    call("PATCH", pulls + "/{index}", 404, headers=author, body={"title": "x"}, **none)
    call("GET", pulls + "/{index}/files", 200, **one)
    call("GET", pulls + "/{index}/files", 404, **none)
    call("GET", pulls + "/{index}/commits", 200, **one)
    call("GET", pulls + "/{index}/commits", 404, **none)
    call("GET", pulls + "/{index}/merge", 404, **one)

    # reviews
    reviews = pulls + "/{index}/reviews"
    call("POST", reviews, 422, headers=author, body={"event": "APPROVED"}, **one)
    call("POST", reviews, 422, headers=reviewer, body={"event": "REQUEST_CHANGES"}, **one)
    call("POST", reviews, 404, headers=reviewer, body={"event": "APPROVED"}, **none)
    rejection = call("POST", reviews, 200, headers=reviewer, body={"event": "REQUEST_CHANGES", "body": "wait"}, **one)
    rv = {"id": str(rejection["id"]), **one}
    call("GET", reviews, 200, **one)
    call("GET", reviews, 404, **none)
    call("GET", reviews + "/{id}", 200, **rv)
    call("GET", reviews + "/{id}", 404, id="999999", **one)
    call("POST", pulls + "/{index}/merge", 405, headers=author, body={"Do": "merge"}, **one)
    call("POST", reviews + "/{id}/dismissals", 403, headers=author, body={"message": "no"}, **rv)
    call("POST", reviews + "/{id}/dismissals", 200, headers=admin, body={"message": "overruled"}, **rv)
    call("POST", reviews + "/{id}/dismissals", 404, headers=admin, body={}, id="999999", **one)
    call("POST", reviews + "/{id}/undismissals", 200, headers=admin, **rv)
    call("POST", reviews + "/{id}/undismissals", 403, headers=author, **rv)
    call("POST", reviews + "/{id}/undismissals", 404, headers=admin, id="999999", **one)
    call("POST", reviews + "/{id}/dismissals", 200, headers=admin, body={}, **rv)
    note = call("POST", reviews, 200, headers=reviewer, body={"event": "COMMENT", "body": "a note"}, **one)
    nv = {"id": str(note["id"]), **one}
    call("POST", reviews + "/{id}/dismissals", 403, headers=admin, body={}, **nv)  # not approve/reject
    call("DELETE", reviews + "/{id}", 403, headers=author, **nv)
    call("DELETE", reviews + "/{id}", 204, headers=reviewer, **nv)
    call("DELETE", reviews + "/{id}", 404, headers=reviewer, **nv)

    # the merge
    merge = pulls + "/{index}/merge"
    call("POST", merge, 405, headers=author, body={"Do": "merge"}, **one)  # no approval yet
    call("POST", reviews, 200, headers=reviewer, body={"event": "APPROVED", "body": "ship it"}, **one)
    call("POST", merge, 422, headers=author, body={}, **one)
    call("POST", merge, 409, headers=author, body={"Do": "merge", "head_commit_id": "0" * 40}, **one)
    call("POST", merge, 404, headers=author, body={"Do": "merge"}, **none)
    call("POST", merge, 200, headers=author, body={"Do": "merge"}, **one)
    call("GET", merge, 204, **one)
    call("POST", merge, 405, headers=author, body={"Do": "merge"}, **one)
    call("PATCH", pulls + "/{index}", 412, headers=author, body={"state": "closed"}, **one)
    call("POST", reviews, 422, headers=reviewer, body={"event": "APPROVED"}, **one)
    call("POST", reviews + "/{id}/dismissals", 403, headers=admin, body={}, **rv)

    # a conflicting PR, then a closed one
    for branch, text in (("hotfix-a", "a"), ("hotfix-b", "b")):
        call("POST", "/repos/{owner}/{repo}/branches", 201, headers=admin, body={"new_branch_name": branch}, **r)
        call(
            "POST",
            "/repos/{owner}/{repo}/contents/{filepath}",
            201,
            headers=admin,
            filepath="hotfix.txt",
            body={"content": b64(text), "branch": branch},
            **r,
        )
    call("PATCH", bp + "/{name}", 200, headers=admin, name="main", body={"required_approvals": 0}, **r)
    first = call("POST", pulls, 201, headers=admin, body={"head": "hotfix-a", "base": "main", "title": "a"}, **r)
    second = call("POST", pulls, 201, headers=admin, body={"head": "hotfix-b", "base": "main", "title": "b"}, **r)
    call("POST", merge, 200, headers=admin, body={"Do": "merge"}, index=str(first["number"]), **r)
    call("POST", merge, 409, headers=admin, body={"Do": "merge"}, index=str(second["number"]), **r)
    closed = {"index": str(second["number"]), **r}
    call("PATCH", pulls + "/{index}", 201, headers=admin, body={"state": "closed"}, **closed)
    call("POST", merge, 404, headers=admin, body={"Do": "merge"}, **closed)
    call("PATCH", pulls + "/{index}", 201, headers=admin, body={"state": "open"}, **closed)
    call("DELETE", bp + "/{name}", 204, headers=admin, name="main", **r)


# -- schema helpers -------------------------------------------------------------------------------
def resolve(node: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """Follow ``$ref``s; return (definition name or None, schema)."""
    name = None
    while "$ref" in node:
        _, kind, ref = node["$ref"].split("/")
        name = ref if kind == "definitions" else name
        node = SWAGGER[kind][ref]
        if kind == "responses":
            node = node.get("schema", {})
    return name, node


def response_schema(method: str, template: str, status: int) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(declared response object or None, body schema) — undeclared errors use APIError/APINotFound."""
    declared = SWAGGER["paths"][template][method.lower()]["responses"].get(str(status))
    if declared is None:
        fallback = "APINotFound" if status == 404 else "APIError"
        return None, {"$ref": f"#/definitions/{fallback}"}
    response = SWAGGER["responses"][declared["$ref"].split("/")[-1]] if "$ref" in declared else declared
    return response, response.get("schema", {})


def check_value(value: Any, schema: dict[str, Any], where: str, problems: list[str]) -> None:
    name, schema = resolve(schema)
    if value is None:
        return  # Go nil pointers and nil slices are JSON null
    kind = schema.get("type") or ("object" if "properties" in schema else None)
    if kind and (not isinstance(value, PY_TYPES[kind]) or (kind == "integer" and isinstance(value, bool))):
        problems.append(f"{where}: {type(value).__name__} where the swagger says {kind}")
        return
    if schema.get("format") == "date-time" and isinstance(value, str):
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            problems.append(f"{where}: {value!r} is not an RFC 3339 date-time")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            check_value(item, schema["items"], f"{where}[{index}]", problems)
    if isinstance(value, dict) and "properties" in schema:
        unknown = sorted(set(value) - set(schema["properties"]) - KNOWN_EXTRA.get(name or "", set()))
        if unknown:
            problems.append(f"{where} ({name}): fields not in the swagger: {unknown}")
        missing = sorted(IMPORTANT.get(name or "", set()) - set(value))
        if missing:
            problems.append(f"{where} ({name}): important fields missing: {missing}")
        for key, item in value.items():
            if key in schema["properties"]:
                check_value(item, schema["properties"][key], f"{where}.{key}", problems)


def allowed_undeclared(method: str, template: str, status: int) -> str | None:
    if status in GLOBAL_UNDECLARED:
        return GLOBAL_UNDECLARED[status]
    if status == 403 and method != "GET":
        return WRITE_403
    if status == 404 and template.startswith(("/repos/{owner}/{repo}", "/orgs/{org}", "/users/{username}")):
        return OWNER_404
    return SPECIFIC_UNDECLARED.get((method, template, status))


def starlette_template(path: str) -> str:
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path).removeprefix("/api/v1")


# -- tests ----------------------------------------------------------------------------------------
def test_route_table_is_exactly_the_swagger_subset(forge: EmbeddedForge) -> None:
    implemented = {
        (method, starlette_template(route.path))
        for route in ForgeAPI(forge.service).routes()
        if route.path.startswith("/api/v1")
        for method in (route.methods or set()) - {"HEAD"}
    }
    assert implemented == set(ROUTES), (sorted(implemented - set(ROUTES)), sorted(set(ROUTES) - implemented))


@pytest.mark.parametrize(("method", "template"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_route_succeeds_with_a_declared_status(exchanges: list[Exchange], method: str, template: str) -> None:
    declared = SWAGGER["paths"][template][method.lower()]["responses"]
    successes = {
        e.status for e in exchanges if (e.method, e.template) == (method, template) and e.status < 300
    }
    assert successes, f"{method} {template} was never exercised successfully"
    assert successes <= {int(s) for s in declared}, (successes, sorted(declared))


@pytest.mark.parametrize(("method", "template"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_statuses_are_declared_or_gitea_behaviour(
    exchanges: list[Exchange], method: str, template: str
) -> None:
    declared = SWAGGER["paths"][template][method.lower()]["responses"]
    problems = []
    for exchange in (e for e in exchanges if (e.method, e.template) == (method, template)):
        if str(exchange.status) not in declared and not allowed_undeclared(method, template, exchange.status):
            problems.append(
                f"{exchange.status} is neither declared {sorted(declared)} nor known Gitea behaviour"
            )
    assert not problems, problems


@pytest.mark.parametrize(("method", "template"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_json_fields_match_the_schema(exchanges: list[Exchange], method: str, template: str) -> None:
    problems: list[str] = []
    for exchange in (e for e in exchanges if (e.method, e.template) == (method, template)):
        response, schema = response_schema(method, template, exchange.status)
        if exchange.status == 204 or (response is not None and not schema and exchange.status < 400):
            assert exchange.body is None, f"{exchange.status} must have no JSON body"
            continue
        if not schema:  # an error declared only by description: ctx.NotFound()/ctx.Error bodies
            schema = {"$ref": "#/definitions/APINotFound" if exchange.status == 404 else "#/definitions/APIError"}
        if (method, template) in LIST_OR_OBJECT and isinstance(exchange.body, list):
            for index, item in enumerate(exchange.body):
                check_value(item, schema, f"{exchange.status}[{index}]", problems)
            continue
        check_value(exchange.body, schema, f"{exchange.status}", problems)
        if exchange.status >= 400:
            assert isinstance(exchange.body, dict) and exchange.body.get("message"), exchange.body
    assert not problems, problems


@pytest.mark.parametrize(("method", "template"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_declared_headers_are_sent(exchanges: list[Exchange], method: str, template: str) -> None:
    for exchange in (e for e in exchanges if (e.method, e.template) == (method, template) and e.status < 300):
        response, _ = response_schema(method, template, exchange.status)
        for header, spec in (response or {}).get("headers", {}).items():
            assert header in exchange.headers, f"{method} {template} lacks the declared header {header}"
            if spec.get("type") == "boolean":
                assert exchange.headers[header] in ("true", "false"), (header, exchange.headers[header])
            else:
                assert exchange.headers[header].isdigit(), (header, exchange.headers[header])


def test_error_body_is_gitea_shaped(exchanges: list[Exchange]) -> None:
    """Gitea errors carry ``message`` and the swagger ``url``; ``ctx.NotFound()`` 404s also ``errors``."""
    errors = [e for e in exchanges if e.status >= 400]
    assert {e.status for e in errors} >= {400, 401, 403, 404, 409, 422}
    for exchange in errors:
        assert exchange.body["message"] and exchange.body["url"].endswith("/api/swagger"), exchange.body
    missing_repo = next(e for e in errors if e.template == "/repos/{owner}/{repo}" and e.status == 404)
    assert missing_repo.body["message"] == "The target couldn't be found." and "errors" in missing_repo.body


def test_commit_list_paging_headers(exchanges: list[Exchange]) -> None:
    listing = next(e for e in exchanges if e.template == "/repos/{owner}/{repo}/commits" and e.status == 200)
    for header in ("X-Total-Count", "X-Page", "X-PerPage", "X-Total", "X-PageCount", "X-HasMore", "Link"):
        assert header in listing.headers, header
    assert listing.headers["X-PerPage"] == "2" and listing.headers["X-HasMore"] == "true"
    assert 'rel="next"' in listing.headers["Link"] and "page=2" in listing.headers["Link"]
