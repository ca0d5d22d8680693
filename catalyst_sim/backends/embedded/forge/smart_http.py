"""``git clone``/``fetch``/``push`` over smart HTTP, served by the real ``git http-backend``.

Git itself speaks the protocol (v0 and v2, side-band, shallow, filters): we only do what Gitea's
``routers/web/repo/githttp.go`` does around it — authenticate (basic auth; an access token as the
password is what ``http://user:token@host/org/repo.git`` sends), check the repository permission,
run the CGI with ``GIT_PROJECT_ROOT``/``PATH_INFO``/``QUERY_STRING``/``REMOTE_USER``/… and map its
``Status:`` header to the HTTP status.

Chunked request bodies: git switches to ``Transfer-Encoding: chunked`` above ``http.postBuffer``
(1 MiB). The ASGI server hands us the de-chunked bytes; we buffer them and give the CGI an exact
``CONTENT_LENGTH`` (INFRA-NOTES: a 5 MB push fails when the chunked body reaches http-backend raw).
Request and response bodies are buffered in memory, which is fine for the repositories a scenario
pushes; streaming would only matter for very large packs.

After a ``git-receive-pack`` the refs are snapshotted again (under the repository lock, taken
before the first snapshot) and the difference becomes Gitea's push/create/delete webhooks.

Branch protection is enforced where Gitea enforces it, in the pre-receive hook: before running the
CGI we read the ref commands at the head of the receive-pack request (pkt-lines up to the flush),
ask the forge which protected branches this pusher may update, and pass the verdicts to the bare
repo's ``pre-receive`` hook in ``CATALYST_FORGE_RULES``. The hook refuses the whole push with
Gitea's message, which the git client prints as ``remote: Gitea: Not allowed to push to protected
branch main`` next to ``[remote rejected] (pre-receive hook declined)``; no ref moves.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import subprocess
import zlib
from dataclasses import dataclass

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from catalyst_sim.backends.embedded.forge.advertisement import AdvertisementCache
from catalyst_sim.backends.embedded.forge.bare import BareRepo, git_env
from catalyst_sim.backends.embedded.forge.errors import ForgeError
from catalyst_sim.backends.embedded.forge.models import (
    AccessMode,
    AccessToken,
    Repository,
    User,
    scope_allows,
)
from catalyst_sim.backends.embedded.forge.service import ForgeService

_SMART_PATHS = ("info/refs", "git-upload-pack", "git-receive-pack", "HEAD")
_HOP_BY_HOP = {"connection", "transfer-encoding", "keep-alive", "content-length"}


@dataclass
class CGIResult:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    stderr: str


def receive_pack_commands(body: bytes, content_encoding: str = "") -> list[tuple[str, str, str]]:
    """(old, new, ref) for each command of a receive-pack request: the pkt-lines before the first
    flush, skipping ``shallow`` lines; capabilities follow a NUL on the first command."""
    if content_encoding.lower() in ("gzip", "x-gzip"):
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError, zlib.error):
            return []
    commands: list[tuple[str, str, str]] = []
    offset = 0
    while offset + 4 <= len(body):
        try:
            length = int(body[offset : offset + 4], 16)
        except ValueError:
            break
        if length == 0:  # flush: the pack (or push options) follows
            break
        if length < 4:
            break
        line = body[offset + 4 : offset + length].split(b"\0", 1)[0].rstrip(b"\n")
        offset += length
        parts = line.decode(errors="replace").split(" ")
        if len(parts) == 3 and len(parts[0]) == len(parts[1]) == 40:
            commands.append((parts[0], parts[1], parts[2]))
    return commands


def _unauthorized() -> Response:
    return PlainTextResponse(
        "Unauthorized\n", status_code=401, headers={"WWW-Authenticate": 'Basic realm="Gitea"'}
    )


class SmartHTTP:
    def __init__(self, service: ForgeService) -> None:
        self.service = service
        self.advertisements = AdvertisementCache()

    def routes(self) -> list[BaseRoute]:
        methods = ["GET", "POST"]
        return [
            Route("/{owner}/{repo}.git/{rest:path}", self.handle, methods=methods),
            Route("/{owner}/{repo}/info/refs", self.handle, methods=methods),
            Route("/{owner}/{repo}/git-upload-pack", self.handle, methods=methods),
            Route("/{owner}/{repo}/git-receive-pack", self.handle, methods=methods),
        ]

    def _credentials(self, request: Request) -> tuple[User, AccessToken | None] | None:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic" and value:
            try:
                login, _, password = base64.b64decode(value.strip()).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise ForgeError("bad basic auth") from None
            return self.service.state.authenticate_basic(login, password)
        if scheme.lower() in ("token", "bearer") and value:
            return self.service.state.authenticate_token(value.strip())
        return None

    async def handle(self, request: Request) -> Response:
        owner = request.path_params["owner"]
        name = request.path_params["repo"]
        rest = request.path_params.get("rest") or request.url.path.rsplit(f"/{name}/", 1)[-1]
        if name.endswith(".git"):
            name = name[:-4]
        service_param = request.query_params.get("service", "")
        push = rest == "git-receive-pack" or (rest == "info/refs" and service_param == "git-receive-pack")
        if rest not in _SMART_PATHS and not rest.startswith("objects/"):
            return PlainTextResponse("Not found\n", status_code=404)

        try:
            creds = self._credentials(request)
        except ForgeError:
            return _unauthorized()
        user, token = creds if creds else (None, None)

        repo = self.service.state.get_repo(owner, name)
        mode = self.service.state.access_mode(user, repo) if repo else AccessMode.NONE
        public_pull = repo is not None and not push and mode >= AccessMode.READ
        if not public_pull and user is None:
            return _unauthorized()
        if repo is None or mode < AccessMode.READ:
            return PlainTextResponse("Repository not found\n", status_code=404)
        if push and mode < AccessMode.WRITE:
            return PlainTextResponse("User permission denied\n", status_code=403)
        if token is not None and not scope_allows(token.scopes, "repository", push):
            needed = "write:repository" if push else "read:repository"
            return PlainTextResponse(
                f"token does not have at least one of required scope(s): [{needed}]\n", status_code=403
            )

        body = await request.body() if request.method == "POST" else b""
        env = self._cgi_env(request, repo, rest, user, len(body))
        if push and rest == "git-receive-pack":
            assert user is not None
            chunked = "chunked" in request.headers.get("transfer-encoding", "").lower()
            self.service.log.record(
                "git", "receive-pack request", repo=repo.full_name, bytes=len(body), chunked=chunked
            )
            commands = receive_pack_commands(body, request.headers.get("content-encoding", ""))
            verdicts = self.service.pulls.push_rules(repo, user, [ref for _, _, ref in commands])
            if verdicts:
                env["CATALYST_FORGE_RULES"] = "\n".join(f"{ref} {verdict}" for ref, verdict in verdicts)
                self.service.log.record(
                    "git",
                    "protected branches in push",
                    repo=repo.full_name,
                    pusher=user.login,
                    verdicts=dict(verdicts),
                )
            result = await anyio.to_thread.run_sync(self._receive_pack, repo, user, env, body)
        elif rest == "info/refs" and service_param == "git-upload-pack" and request.method == "GET":
            result = await anyio.to_thread.run_sync(self._advertise, repo, env)
        else:
            result = await anyio.to_thread.run_sync(self._run_backend, env, body)
        if result.status >= 500:
            self.service.log.record(
                "error",
                "git http-backend failed",
                repo=repo.full_name,
                path=rest,
                status=result.status,
                stderr=result.stderr[-2000:],
            )
        headers = [(k, v) for k, v in result.headers if k.lower() not in _HOP_BY_HOP]
        response = Response(content=result.body, status_code=result.status)
        for key, value in headers:
            response.headers.append(key, value)
        return response

    def _cgi_env(
        self, request: Request, repo: Repository, rest: str, user: User | None, length: int
    ) -> dict[str, str]:
        relative = repo.path.relative_to(self.service.root).as_posix()
        env = git_env(
            {
                "GIT_PROJECT_ROOT": str(self.service.root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "PATH_INFO": f"/{relative}/{rest}",
                "QUERY_STRING": request.url.query,
                "REQUEST_METHOD": request.method,
                "CONTENT_TYPE": request.headers.get("content-type", ""),
                "REMOTE_ADDR": request.client.host if request.client else "127.0.0.1",
                "SERVER_PROTOCOL": "HTTP/1.1",
                "GATEWAY_INTERFACE": "CGI/1.1",
            }
        )
        if request.method == "POST":
            env["CONTENT_LENGTH"] = str(length)
        if user is not None:
            env["REMOTE_USER"] = user.login
            env["GIT_COMMITTER_NAME"] = user.login
            env["GIT_COMMITTER_EMAIL"] = user.email
        for header, variable in (
            ("content-encoding", "HTTP_CONTENT_ENCODING"),
            ("git-protocol", "HTTP_GIT_PROTOCOL"),
        ):
            value = request.headers.get(header)
            if value:
                env[variable] = value
        return env

    def _run_backend(self, env: dict[str, str], body: bytes) -> CGIResult:
        proc = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, timeout=300, check=False
        )
        return parse_cgi(proc.stdout, proc.stderr.decode(errors="replace"), proc.returncode)

    def _advertise(self, repo: Repository, env: dict[str, str]) -> CGIResult:
        """The upload-pack ref advertisement, from the cache while the refs have not moved."""
        key = (env.get("QUERY_STRING", ""), env.get("HTTP_GIT_PROTOCOL", ""))
        fingerprint, cached = self.advertisements.get(repo.path, key)
        if isinstance(cached, CGIResult):
            return cached
        result = self._run_backend(env, b"")
        if result.status == 200:
            self.advertisements.put(repo.path, key, fingerprint, result)
        return result

    def _receive_pack(self, repo: Repository, user: User, env: dict[str, str], body: bytes) -> CGIResult:
        bare = BareRepo(repo.path)
        with repo.lock:
            before = bare.refs()
            result = self._run_backend(env, body)
            after = bare.refs()
        if before != after:
            self.service.after_receive_pack(repo, user, before, after)
        return result


def parse_cgi(stdout: bytes, stderr: str, returncode: int) -> CGIResult:
    """Split CGI output into status, headers and body; a ``Status:`` header sets the status."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        head, found, body = stdout.partition(separator)
        if found:
            break
    else:
        status = 500 if returncode else 200
        return CGIResult(status=status, headers=[("Content-Type", "text/plain")], body=stdout, stderr=stderr)
    status = 200
    headers: list[tuple[str, str]] = []
    for line in head.decode("latin-1").splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not key:
            continue
        if key.lower() == "status":
            try:
                status = int(value.split()[0])
            except (ValueError, IndexError):
                status = 500
            continue
        headers.append((key, value))
    return CGIResult(status=status, headers=headers, body=body, stderr=stderr)
