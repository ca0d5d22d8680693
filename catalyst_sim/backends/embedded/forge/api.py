"""Gitea's REST API v1 (the subset Catalyst uses) as Starlette routes.

Paths, status codes and JSON field names are Gitea's, checked against the swagger by the contract
tests in ``tests/contract/forge``. Authentication works as in Gitea 1.22: ``Authorization: token T``
or ``Bearer T``, ``?token=``/``?access_token=``, or HTTP basic (password or token as password). A
presented but unknown credential is 401 on every route; routes behind ``reqToken`` answer 401 "token
is required" to anonymous callers; a token without the route's scope category is 403. Reads of public
repositories work anonymously, private ones are 404 to those who cannot see them.

Handlers read the body on the event loop, then run the (blocking, git-calling) service code in a
worker thread so one slow git command never stalls the server.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import anyio.to_thread
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from catalyst_sim.backends.embedded.forge.errors import (
    Forbidden,
    ForgeError,
    NotFound,
    Unauthorized,
    Unprocessable,
)
from catalyst_sim.backends.embedded.forge.models import AccessToken, User, scope_allows
from catalyst_sim.backends.embedded.forge.service import (
    ChangeRequest,
    FileOperation,
    ForgeService,
    Identity,
)

JSON_TYPE = "application/json;charset=utf-8"


class GiteaJSON(JSONResponse):
    media_type = JSON_TYPE

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass
class Principal:
    user: User | None = None
    token: AccessToken | None = None
    basic: bool = False


@dataclass
class Call:
    """Everything a handler needs, read on the event loop before switching to a worker thread."""

    request: Request
    principal: Principal
    body: bytes

    @property
    def doer(self) -> User | None:
        return self.principal.user

    @property
    def signed(self) -> User:
        if self.principal.user is None:
            raise Unauthorized("token is required")
        return self.principal.user

    def param(self, name: str) -> str:
        return str(self.request.path_params[name])

    def query(self, name: str, default: str = "") -> str:
        return self.request.query_params.get(name, default)

    def query_int(self, name: str, default: int = 0) -> int:
        try:
            return int(self.request.query_params.get(name, default))
        except ValueError:
            return default

    def query_bool(self, name: str, default: bool = True) -> bool:
        raw = self.request.query_params.get(name)
        if raw is None or raw == "":
            return default
        return raw.lower() in ("1", "t", "true", "yes", "on")

    def json(self) -> dict[str, Any]:
        if not self.body.strip():
            return {}
        try:
            data = json.loads(self.body)
        except ValueError as exc:
            raise Unprocessable(f"[]: json: {exc}") from exc
        if not isinstance(data, dict):
            raise Unprocessable("[]: json: cannot unmarshal non-object into the request option")
        return data


Handler = Callable[[Call], Response]


def _decode_content(raw: Any, field: str = "Content") -> bytes:
    if raw is None:
        return b""
    try:
        return base64.b64decode(str(raw), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Unprocessable(f"[{field}]: illegal base64 data: {exc}") from exc


def _parse_date(raw: Any) -> datetime | None:
    if not raw:
        return None
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError as exc:
        raise Unprocessable(f"[Dates]: invalid date {raw!r}") from exc


def _identity(raw: Any) -> Identity | None:
    """Gitea's GetAuthorAndCommitterUsers ignores an identity without an email."""
    if not isinstance(raw, dict) or not raw.get("email"):
        return None
    return Identity(name=str(raw.get("name") or ""), email=str(raw.get("email") or ""))


class ForgeAPI:
    """The route table and the auth/paging/error plumbing around :class:`ForgeService`."""

    def __init__(self, service: ForgeService) -> None:
        self.service = service
        self.shapes = service.shapes

    # -- plumbing ---------------------------------------------------------------------------------
    def authenticate(self, request: Request) -> Principal:
        state = self.service.state
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        credential = credential.strip()
        if scheme.lower() in ("token", "bearer") and credential:
            user, found = state.authenticate_token(credential)
            return Principal(user, found)
        if scheme.lower() == "basic" and credential:
            try:
                login, _, password = base64.b64decode(credential).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise Unauthorized("invalid basic auth header") from exc
            user, maybe_token = state.authenticate_basic(login, password)
            return Principal(user, maybe_token, basic=maybe_token is None)
        query_token = request.query_params.get("token") or request.query_params.get("access_token")
        if query_token:
            user, found = state.authenticate_token(query_token)
            return Principal(user, found)
        return Principal()

    def error(self, exc: ForgeError) -> Response:
        body: dict[str, Any] = {"message": exc.message, "url": self.shapes.swagger_url}
        if isinstance(exc, NotFound) and not exc.plain:
            body["errors"] = exc.errors
        return GiteaJSON(body, status_code=exc.status)

    def endpoint(
        self, handler: Handler, *, scope: str | None, token: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a sync handler: auth, must-change-password, token scope, then run it in a thread."""

        async def run(request: Request) -> Response:
            body = await request.body() if request.method in ("POST", "PUT", "PATCH", "DELETE") else b""
            try:
                principal = self.authenticate(request)
                user = principal.user
                if user is not None and user.must_change_password:
                    return GiteaJSON(
                        {
                            "message": "You must change your password. Change it at: "
                            f"{self.service.app_url}user/change_password"
                        },
                        status_code=403,
                    )
                if principal.token is not None and scope is not None:
                    write = request.method not in ("GET", "HEAD")
                    if not scope_allows(principal.token.scopes, scope, write):
                        needed = f"{'write' if write else 'read'}:{scope}"
                        raise Forbidden(f"token does not have at least one of required scope(s): [{needed}]")
                if token and user is None:
                    raise Unauthorized("token is required")
                call = Call(request, principal, body)
                return await anyio.to_thread.run_sync(handler, call)
            except ForgeError as exc:
                return self.error(exc)

        return run

    def paged(
        self, call: Call, items: list[Any], *, link: bool = True, total: bool = True
    ) -> tuple[list[Any], dict[str, str]]:
        """Gitea's ``utils.GetListOptions`` + ``SetLinkHeader`` + ``SetTotalCountHeader``."""
        size = self.service.page_size(call.query_int("limit"))
        page = max(call.query_int("page", 1), 1)
        headers = self.page_headers(call, len(items), size, link=link, total=total)
        return items[(page - 1) * size : page * size], headers

    def page_headers(
        self, call: Call, count: int, size: int, *, link: bool = True, total: bool = True
    ) -> dict[str, str]:
        headers: dict[str, str] = {}
        exposed = []
        if link:
            links = self.links(call, count, size)
            if links:
                headers["Link"] = ",".join(links)
                exposed.append("Link")
        if total:
            headers["X-Total-Count"] = str(count)
            exposed.append("X-Total-Count")
        if exposed:
            headers["Access-Control-Expose-Headers"] = ", ".join(exposed)
        return headers

    def links(self, call: Call, count: int, size: int) -> list[str]:
        current = max(call.query_int("page", 1), 1)
        pages = math.ceil(count / size) if size else 0
        request = call.request

        def url_for(page: int) -> str:
            query = [(k, v) for k, v in parse_qsl(request.url.query, keep_blank_values=True) if k != "page"]
            query.append(("page", str(page)))
            return f"<{self.service.app_url}{request.url.path.lstrip('/')}?{urlencode(sorted(query))}>"

        links = []
        if current < pages:
            links.append(f'{url_for(current + 1)}; rel="next"')
        if count and current != pages:
            links.append(f'{url_for(pages)}; rel="last"')
        if current != 1:
            links.append(f'{url_for(1)}; rel="first"')
        if current > 1:
            links.append(f'{url_for(current - 1)}; rel="prev"')
        return links

    # -- misc and users ---------------------------------------------------------------------------
    def version(self, call: Call) -> Response:
        return GiteaJSON({"version": self.service.version})

    def current_user(self, call: Call) -> Response:
        return GiteaJSON(self.shapes.user(call.signed, call.signed))

    def admin_create_user(self, call: Call) -> Response:
        body = call.json()
        user = self.service.create_user(
            call.doer,
            username=str(body.get("username") or ""),
            email=str(body.get("email") or ""),
            password=str(body.get("password") or ""),
            full_name=str(body.get("full_name") or ""),
            must_change_password=body.get("must_change_password"),
            restricted=bool(body.get("restricted")),
            visibility=str(body.get("visibility") or "public"),
        )
        return GiteaJSON(self.shapes.user(user, call.doer), status_code=201)

    def create_token(self, call: Call) -> Response:
        if not call.principal.basic:
            raise Unauthorized("auth required")
        body = call.json()
        scopes = body.get("scopes") or []
        if isinstance(scopes, str):
            scopes = [scopes]
        token = self.service.create_token(
            call.signed, call.param("username"), str(body.get("name") or ""), [str(s) for s in scopes]
        )
        return GiteaJSON(self.shapes.access_token(token, reveal=True), status_code=201)

    def list_tokens(self, call: Call) -> Response:
        if not call.principal.basic:
            raise Unauthorized("auth required")
        target = self.service.state.get_user(call.param("username"))
        if target is None:
            raise NotFound()
        if not call.signed.is_admin and call.signed.id != target.id:
            raise Forbidden("doer should be the site admin or be same as the contextUser")
        items, headers = self.paged(call, self.service.state.tokens_of(target), link=False)
        return GiteaJSON([self.shapes.access_token(t, reveal=False) for t in items], headers=headers)

    # -- organizations ----------------------------------------------------------------------------
    def list_orgs(self, call: Call) -> Response:
        items, headers = self.paged(call, self.service.list_orgs(call.doer))
        return GiteaJSON([self.shapes.organization(o) for o in items], headers=headers)

    def create_org(self, call: Call) -> Response:
        body = call.json()
        name = str(body.get("username") or "")
        if not name:
            raise Unprocessable("[UserName]: Required")
        org = self.service.create_org(
            call.signed,
            name=name,
            full_name=str(body.get("full_name") or ""),
            email=str(body.get("email") or ""),
            description=str(body.get("description") or ""),
            website=str(body.get("website") or ""),
            location=str(body.get("location") or ""),
            visibility=str(body.get("visibility") or "public"),
            repo_admin_change_team_access=bool(body.get("repo_admin_change_team_access")),
        )
        return GiteaJSON(self.shapes.organization(org), status_code=201)

    def get_org(self, call: Call) -> Response:
        return GiteaJSON(self.shapes.organization(self.service.visible_org(call.doer, call.param("org"))))

    def delete_org(self, call: Call) -> Response:
        self.service.delete_org(call.doer, call.param("org"))
        return Response(status_code=204)

    def list_org_repos(self, call: Call) -> Response:
        items, headers = self.paged(call, self.service.list_org_repos(call.doer, call.param("org")))
        return GiteaJSON([self.shapes.repository(r, m, call.doer) for r, m in items], headers=headers)

    def create_org_repo(self, call: Call) -> Response:
        body = call.json()
        name = str(body.get("name") or "")
        if not name:
            raise Unprocessable("[Name]: Required")
        repo = self.service.create_org_repo(
            call.signed,
            call.param("org"),
            name=name,
            description=str(body.get("description") or ""),
            private=bool(body.get("private")),
            auto_init=bool(body.get("auto_init")),
            default_branch=str(body.get("default_branch") or ""),
            template=bool(body.get("template")),
            object_format_name=str(body.get("object_format_name") or ""),
        )
        mode = self.service.state.access_mode(call.signed, repo)
        return GiteaJSON(self.shapes.repository(repo, mode, call.doer), status_code=201)

    # -- repositories -----------------------------------------------------------------------------
    def _repo_key(self, call: Call) -> tuple[str, str]:
        return call.param("owner"), call.param("repo")

    def get_repo(self, call: Call) -> Response:
        repo, mode = self.service.repo_for(call.doer, *self._repo_key(call))
        return GiteaJSON(self.shapes.repository(repo, mode, call.doer))

    def delete_repo(self, call: Call) -> Response:
        self.service.delete_repo(call.signed, *self._repo_key(call))
        return Response(status_code=204)

    def _branch(self, repo: Any, head: Any, mode: Any, doer: User | None) -> dict[str, Any]:
        flags = self.service.pulls.branch_flags(repo, doer, head.name)
        return self.shapes.branch(
            repo,
            head.name,
            head.commit,
            mode,
            rule=flags.rule,
            can_push=flags.can_push,
            can_merge=flags.can_merge,
        )

    def list_branches(self, call: Call) -> Response:
        repo, mode, heads = self.service.list_branches(call.doer, *self._repo_key(call))
        items, headers = self.paged(call, heads)
        return GiteaJSON([self._branch(repo, h, mode, call.doer) for h in items], headers=headers)

    def get_branch(self, call: Call) -> Response:
        repo, mode, head = self.service.get_branch(call.doer, *self._repo_key(call), call.param("branch"))
        return GiteaJSON(self._branch(repo, head, mode, call.doer))

    def create_branch(self, call: Call) -> Response:
        body = call.json()
        new_branch = str(body.get("new_branch_name") or "")
        if not new_branch:
            raise Unprocessable("[BranchName]: Required")
        repo, mode, head = self.service.create_branch(
            call.signed,
            *self._repo_key(call),
            new_branch=new_branch,
            old_branch=str(body.get("old_branch_name") or ""),
            old_ref=str(body.get("old_ref_name") or ""),
        )
        return GiteaJSON(self._branch(repo, head, mode, call.doer), status_code=201)

    def delete_branch(self, call: Call) -> Response:
        self.service.delete_branch(call.signed, *self._repo_key(call), call.param("branch"))
        return Response(status_code=204)

    # -- contents ---------------------------------------------------------------------------------
    def get_contents(self, call: Call) -> Response:
        path = call.request.path_params.get("filepath", "")
        repo, result = self.service.get_contents(call.doer, *self._repo_key(call), path, call.query("ref"))
        rendered = [
            self.shapes.contents(
                repo,
                entry,
                ref=result.ref,
                ref_type=result.ref_type,
                last_commit=last,
                content=content,
                for_list=result.is_dir,
            )
            for entry, last, content in result.items
        ]
        return GiteaJSON(rendered if result.is_dir else rendered[0])

    def _change_request(self, body: dict[str, Any], files: list[FileOperation]) -> ChangeRequest:
        raw_dates = body.get("dates")
        dates: dict[str, Any] = raw_dates if isinstance(raw_dates, dict) else {}
        return ChangeRequest(
            files=files,
            message=str(body.get("message") or ""),
            branch=str(body.get("branch") or ""),
            new_branch=str(body.get("new_branch") or ""),
            author=_identity(body.get("author")),
            committer=_identity(body.get("committer")),
            author_date=_parse_date(dates.get("author")),
            committer_date=_parse_date(dates.get("committer")),
            signoff=bool(body.get("signoff")),
        )

    def _files_response(self, repo: Any, result: Any) -> dict[str, Any]:
        commit = result.commit
        files = []
        for _op, entry, content in result.files:
            files.append(
                None
                if entry is None
                else self.shapes.contents(
                    repo,
                    entry,
                    ref=result.branch,
                    ref_type="branch",
                    last_commit=commit,
                    content=content,
                    for_list=False,
                )
            )
        return {
            "files": files,
            "commit": self.shapes.file_commit(repo, commit),
            "verification": {
                "verified": False,
                "reason": "gpg.error.not_signed_commit",
                "signature": "",
                "signer": None,
                "payload": "",
            },
        }

    def change_files(self, call: Call) -> Response:
        body = call.json()
        raw_files = body.get("files")
        if not isinstance(raw_files, list) or not raw_files:
            raise Unprocessable("[Files]: Required")
        files = []
        for raw in raw_files:
            if not isinstance(raw, dict) or not raw.get("path") or not raw.get("operation"):
                raise Unprocessable("[Files]: each file needs operation and path")
            content = raw.get("content")
            files.append(
                FileOperation(
                    operation=str(raw["operation"]),
                    path=str(raw["path"]),
                    content=_decode_content(content) if content is not None else None,
                    sha=str(raw.get("sha") or "") or None,
                    from_path=str(raw.get("from_path") or "") or None,
                )
            )
        repo, result = self.service.change_files(
            call.signed, *self._repo_key(call), self._change_request(body, files)
        )
        return GiteaJSON(self._files_response(repo, result), status_code=201)

    def _single_file(self, call: Call, operation: str) -> tuple[Any, Any]:
        body = call.json()
        if operation != "delete" and "content" not in body:
            raise Unprocessable("[Content]: Required")
        if operation != "create" and not body.get("sha"):
            raise Unprocessable("[SHA]: Required")
        op = FileOperation(
            operation=operation,
            path=call.param("filepath"),
            content=_decode_content(body.get("content")) if operation != "delete" else None,
            sha=str(body.get("sha") or "") or None,
            from_path=str(body.get("from_path") or "") or None,
        )
        return self.service.change_files(call.signed, *self._repo_key(call), self._change_request(body, [op]))

    def create_file(self, call: Call) -> Response:
        repo, result = self._single_file(call, "create")
        files = self._files_response(repo, result)
        return GiteaJSON(
            {"content": files["files"][0], "commit": files["commit"], "verification": files["verification"]},
            status_code=201,
        )

    def update_file(self, call: Call) -> Response:
        repo, result = self._single_file(call, "update")
        files = self._files_response(repo, result)
        return GiteaJSON(
            {"content": files["files"][0], "commit": files["commit"], "verification": files["verification"]}
        )

    def delete_file(self, call: Call) -> Response:
        try:
            repo, result = self._single_file(call, "delete")
        except Unprocessable as exc:
            # DeleteFile maps sha mismatch / missing sha to 400, not ChangeFiles' 422.
            exc.status = 400
            raise
        files = self._files_response(repo, result)
        return GiteaJSON({"content": None, "commit": files["commit"], "verification": files["verification"]})

    def raw_file(self, call: Call) -> Response:
        content = self.service.read_raw(
            call.doer, call.param("owner"), call.param("repo"), call.param("kind"), call.param("rest")
        )
        binary = b"\0" in content[:8000]
        return Response(
            content, media_type="application/octet-stream" if binary else "text/plain; charset=utf-8"
        )

    # -- commits ----------------------------------------------------------------------------------
    def list_commits(self, call: Call) -> Response:
        stat = call.query_bool("stat")
        files = call.query_bool("files")
        verification = call.query_bool("verification")
        repo, commits, total, page, size = self.service.list_commits(
            call.doer,
            *self._repo_key(call),
            sha=call.query("sha"),
            path=call.query("path"),
            page=call.query_int("page", 1),
            limit=call.query_int("limit"),
            not_=call.query("not"),
            with_files=stat or files,
        )
        pages = math.ceil(total / size) if size else 0
        headers = self.page_headers(call, total, size)
        headers.update(
            {
                "X-Page": str(page),
                "X-PerPage": str(size),
                "X-Total": str(total),
                "X-PageCount": str(pages),
                "X-HasMore": str(page < pages).lower(),
            }
        )
        headers["Access-Control-Expose-Headers"] += ", X-Page, X-PerPage, X-Total, X-PageCount, X-HasMore"
        return GiteaJSON(
            [
                self.shapes.commit(repo, c, doer=call.doer, stat=stat, files=files, verification=verification)
                for c in commits
            ],
            headers=headers,
        )

    def get_commit(self, call: Call) -> Response:
        repo, commit = self.service.get_commit(call.doer, *self._repo_key(call), call.param("sha"))
        return GiteaJSON(
            self.shapes.commit(
                repo,
                commit,
                doer=call.doer,
                stat=call.query_bool("stat"),
                files=call.query_bool("files"),
                verification=call.query_bool("verification"),
            )
        )

    # -- hooks ------------------------------------------------------------------------------------
    def _hook_target(self, call: Call) -> dict[str, Any]:
        if "org" in call.request.path_params:
            return {"org": call.param("org")}
        return {"repo": self._repo_key(call)}

    def list_hooks(self, call: Call) -> Response:
        target = self._hook_target(call)
        hooks = self.service.list_hooks(call.doer, **target)
        if "org" in target:  # HookListWithoutPagination
            items, headers = self.paged(call, hooks, link=False, total=False)
        else:
            items, headers = self.paged(call, hooks, link=False)
        return GiteaJSON([self.shapes.hook(h) for h in items], headers=headers)

    def create_hook(self, call: Call) -> Response:
        hook = self.service.create_hook(call.signed, call.json(), **self._hook_target(call))
        return GiteaJSON(self.shapes.hook(hook), status_code=201)

    def get_hook(self, call: Call) -> Response:
        hook = self.service.get_hook(call.doer, int(call.param("id")), **self._hook_target(call))
        return GiteaJSON(self.shapes.hook(hook))

    def edit_hook(self, call: Call) -> Response:
        hook = self.service.edit_hook(
            call.signed, int(call.param("id")), call.json(), **self._hook_target(call)
        )
        return GiteaJSON(self.shapes.hook(hook))

    def delete_hook(self, call: Call) -> Response:
        self.service.delete_hook(call.signed, int(call.param("id")), **self._hook_target(call))
        return Response(status_code=204)

    # -- route table ------------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        """(path, {method: (handler, scope category, reqToken)}) — the API surface in one place."""
        repo = "/api/v1/repos/{owner}/{repo}"
        table: list[tuple[str, dict[str, tuple[Handler, str | None, bool]]]] = [
            ("/api/v1/version", {"GET": (self.version, None, False)}),
            ("/api/v1/user", {"GET": (self.current_user, "user", True)}),
            ("/api/v1/admin/users", {"POST": (self.admin_create_user, "admin", True)}),
            (
                "/api/v1/users/{username}/tokens",
                {"GET": (self.list_tokens, "user", True), "POST": (self.create_token, "user", True)},
            ),
            (
                "/api/v1/orgs",
                {
                    "GET": (self.list_orgs, "organization", False),
                    "POST": (self.create_org, "organization", True),
                },
            ),
            (
                "/api/v1/orgs/{org}",
                {
                    "GET": (self.get_org, "organization", False),
                    "DELETE": (self.delete_org, "organization", True),
                },
            ),
            (
                "/api/v1/orgs/{org}/repos",
                {
                    "GET": (self.list_org_repos, "organization", False),
                    "POST": (self.create_org_repo, "organization", True),
                },
            ),
            (
                "/api/v1/orgs/{org}/hooks",
                {
                    "GET": (self.list_hooks, "organization", True),
                    "POST": (self.create_hook, "organization", True),
                },
            ),
            (
                "/api/v1/orgs/{org}/hooks/{id:int}",
                {
                    "GET": (self.get_hook, "organization", True),
                    "PATCH": (self.edit_hook, "organization", True),
                    "DELETE": (self.delete_hook, "organization", True),
                },
            ),
            (
                repo,
                {
                    "GET": (self.get_repo, "repository", False),
                    "DELETE": (self.delete_repo, "repository", True),
                },
            ),
            (
                f"{repo}/branches",
                {
                    "GET": (self.list_branches, "repository", False),
                    "POST": (self.create_branch, "repository", True),
                },
            ),
            (
                f"{repo}/branches/{{branch:path}}",
                {
                    "GET": (self.get_branch, "repository", False),
                    "DELETE": (self.delete_branch, "repository", True),
                },
            ),
            (
                f"{repo}/contents",
                {
                    "GET": (self.get_contents, "repository", False),
                    "POST": (self.change_files, "repository", True),
                },
            ),
            (
                f"{repo}/contents/{{filepath:path}}",
                {
                    "GET": (self.get_contents, "repository", False),
                    "POST": (self.create_file, "repository", True),
                    "PUT": (self.update_file, "repository", True),
                    "DELETE": (self.delete_file, "repository", True),
                },
            ),
            (f"{repo}/commits", {"GET": (self.list_commits, "repository", False)}),
            (f"{repo}/git/commits/{{sha}}", {"GET": (self.get_commit, "repository", False)}),
            (
                f"{repo}/hooks",
                {
                    "GET": (self.list_hooks, "repository", True),
                    "POST": (self.create_hook, "repository", True),
                },
            ),
            (
                f"{repo}/hooks/{{id:int}}",
                {
                    "GET": (self.get_hook, "repository", True),
                    "PATCH": (self.edit_hook, "repository", True),
                    "DELETE": (self.delete_hook, "repository", True),
                },
            ),
        ]
        # Teams, pull requests, reviews and branch protection live in their own module, which builds on
        # this one's plumbing (hence the import here rather than at the top).
        from catalyst_sim.backends.embedded.forge.api_pulls import PullsAPI

        table += PullsAPI(self).table(repo)
        routes: list[BaseRoute] = []
        for path, methods in table:
            for method, (handler, scope, token) in methods.items():
                routes.append(
                    Route(
                        path,
                        self.endpoint(handler, scope=scope, token=token),
                        methods=[method],
                        name=f"{method} {path}",
                    )
                )
        routes.append(Route("/api/healthz", self.healthz, methods=["GET"]))
        # Not API v1: the web route a ContentsResponse's download_url points at.
        routes.append(
            Route(
                "/{owner}/{repo}/raw/{kind}/{rest:path}",
                self.endpoint(self.raw_file, scope="repository"),
                methods=["GET"],
            )
        )
        return routes

    async def healthz(self, request: Request) -> Response:
        return JSONResponse(
            {"status": "pass", "description": "Gitea: Git with a cup of tea"},
            media_type="application/health+json",
        )

    def exception_handlers(self) -> dict[Any, Callable[[Request, Exception], Awaitable[Response]]]:
        async def not_found(request: Request, exc: Exception) -> Response:
            if isinstance(exc, HTTPException) and exc.status_code == 405:
                return GiteaJSON(
                    {"message": "Method Not Allowed", "url": self.shapes.swagger_url}, status_code=405
                )
            return self.error(NotFound())

        return {404: not_found, 405: not_found}


class AccessLog:
    """ASGI middleware recording method, path (never the query: it may hold a token), status, time."""

    def __init__(self, app: ASGIApp, service: ForgeService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 0}

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)  # type: ignore[arg-type]
        finally:
            path = scope.get("path", "")
            kind = "api" if path.startswith("/api/") else "git"
            self.service.log.record(
                kind,
                f"{scope.get('method')} {path}",
                status=status["code"],
                ms=round((time.perf_counter() - started) * 1000, 2),
            )


__all__ = ["AccessLog", "ForgeAPI", "Principal"]
