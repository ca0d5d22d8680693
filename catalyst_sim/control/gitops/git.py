"""Fetching an App repo the way source-controller does: the real ``git`` over smart HTTP.

One bare mirror per GitRepository under the engine's work directory keeps fetches incremental:
the remote's refs first (one ``GET info/refs`` round trip, read in-process as source-controller's
go-git does; nothing else happens when the branch head is the artifact we already have), then
``fetch`` of that one branch into the mirror, then ``archive`` of the tree at the fetched commit.
Credentials come from the GitRepository's ``secretRef`` and reach git as an ``http.extraHeader``
through ``GIT_CONFIG_*`` environment variables, so they never appear in a process listing, a URL in
``.git/config`` or an error message.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx

_SHA = re.compile(r"^[0-9a-f]{40}$")


class GitError(Exception):
    """A git operation that failed; ``message`` is safe to put into a status condition."""

    def __init__(self, message: str, *, auth: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.auth = auth


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def header(self) -> str:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return f"Authorization: Basic {token}"


class GitMirror:
    """A bare mirror of one remote repository."""

    def __init__(self, path: Path, *, home: Path, timeout: float = 60.0) -> None:
        self.path = path
        self.home = home
        self.timeout = timeout

    def _env(self, credentials: Credentials | None) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "/bin/false",
            "LANG": "C",
            "LC_ALL": "C",
        }
        if credentials is not None:
            env.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="http.extraHeader",
                       GIT_CONFIG_VALUE_0=credentials.header())
        return env

    def _git(self, *args: str, credentials: Credentials | None = None) -> bytes:
        try:
            # Protocol v0, as go-git (Flux's source-controller) speaks it: a fetch is the ref advertisement
            # (which the forge answers from its cache) and one upload-pack POST; v2 adds an ls-refs POST.
            result = subprocess.run(
                ["git", "-c", "credential.helper=", "-c", "protocol.version=0", *args],
                env=self._env(credentials),
                capture_output=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise GitError(f"git {args[0]} timed out after {self.timeout:g}s") from None
        if result.returncode != 0:
            stderr = result.stderr.decode(errors="replace").strip()
            auth = "401" in stderr or "403" in stderr or "Authentication failed" in stderr
            raise GitError(stderr.splitlines()[-1] if stderr else f"git {args[0]} exited {result.returncode}",
                           auth=auth)
        return result.stdout

    def exists(self) -> bool:
        """Whether the mirror has fetched at least once (so ``ls-remote`` can save a fetch)."""
        heads = self.path / "refs" / "heads"
        return (self.path / "packed-refs").is_file() or (heads.is_dir() and any(heads.iterdir()))

    def ensure(self) -> None:
        if not (self.path / "HEAD").exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._git("init", "--bare", "--quiet", str(self.path))

    def fetch(self, url: str, branch: str, credentials: Credentials | None) -> str:
        """Fetch ``branch`` into the mirror (only the objects it lacks) and return its new head.

        The head is re-read from the mirror rather than trusted from ``ls-remote``: the branch may
        have moved in between, and the artifact must be exactly what was fetched.
        """
        self.ensure()
        self._git("--git-dir", str(self.path), "fetch", "--quiet", "--no-tags", "--force", url,
                  f"+refs/heads/{branch}:refs/heads/{branch}", credentials=credentials)
        sha = self._git("--git-dir", str(self.path), "rev-parse", f"refs/heads/{branch}").decode().strip()
        if not _SHA.match(sha):
            raise GitError(f"fetched refs/heads/{branch} but could not resolve it")
        return sha

    def has(self, sha: str) -> bool:
        if not (self.path / "HEAD").exists():
            return False
        try:
            self._git("--git-dir", str(self.path), "cat-file", "-e", f"{sha}^{{commit}}")
        except GitError:
            return False
        return True

    def archive(self, sha: str) -> bytes:
        """The tree at ``sha`` as an uncompressed tar (what the artifact is made of)."""
        return self._git("--git-dir", str(self.path), "archive", "--format=tar", sha)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def remote_refs(http: httpx.Client, url: str, credentials: Credentials | None, *,
                timeout: float = 60.0) -> dict[str, str]:
    """Every ref of a smart-HTTP remote (ref -> object id), from ``GET info/refs`` in protocol v0.

    No process is started: a poll of an unchanged repository is one request on a kept-alive
    connection. Failures read like git's, and never contain the credentials.
    """
    headers = {"User-Agent": "git/catalyst-sim-source-controller"}
    if credentials is not None:
        headers["Authorization"] = credentials.header().partition(": ")[2]
    endpoint = f"{url.rstrip('/')}/info/refs"
    try:
        response = http.get(endpoint, params={"service": "git-upload-pack"}, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise GitError(f"unable to access '{url}': {type(exc).__name__}: {exc}") from None
    if response.status_code in (401, 403):
        raise GitError(f"Authentication failed for '{url}'", auth=True)
    if response.status_code == 404:
        raise GitError(f"repository '{url}' not found")
    if response.status_code != 200:
        raise GitError(f"unable to access '{url}': The requested URL returned error: {response.status_code}")
    return parse_advertisement(response.content)


def parse_advertisement(body: bytes) -> dict[str, str]:
    """Refs of a v0 upload-pack advertisement: pkt-lines ``<sha> <ref>[\\0caps]``, after the
    ``# service=`` header and its flush; ``^{}`` peeled tags are skipped."""
    refs: dict[str, str] = {}
    offset = 0
    while offset + 4 <= len(body):
        try:
            length = int(body[offset:offset + 4], 16)
        except ValueError:
            raise GitError("malformed ref advertisement from the remote") from None
        if length == 0:
            offset += 4
            continue
        if length < 4 or offset + length > len(body):
            raise GitError("malformed ref advertisement from the remote")
        line = body[offset + 4:offset + length].split(b"\0", 1)[0].rstrip(b"\n").decode(errors="replace")
        offset += length
        if line.startswith("#"):
            continue
        sha, _, ref = line.partition(" ")
        if _SHA.match(sha) and ref.startswith("refs/") and not ref.endswith("^{}"):
            refs[ref] = sha
    return refs
