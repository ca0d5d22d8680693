"""The GitRepository reconciler (source-controller's part of Flux, R-FLUX-02).

Each pass: read the GitRepository and its ``secretRef`` through the API, ask the remote for the
branch head, and — only when that head differs from the stored artifact — fetch into the mirror
and archive the tree as a new artifact. The status then says, as Flux's does,
``Ready=True/Succeeded "stored artifact for revision 'main@sha1:…'"`` with ``status.artifact``, or
``Ready=False/GitOperationFailed`` (plus ``FetchFailed``) while keeping the last good artifact, so
Kustomizations go on serving the last revision that worked. The next pass is one ``spec.interval``
later on the Clock.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from catalyst_sim.control.gitops import conditions as c
from catalyst_sim.control.gitops.artifacts import revision_of
from catalyst_sim.control.gitops.crds import FLUX_NAMESPACE, SOURCE_API
from catalyst_sim.control.gitops.git import Credentials, GitError, GitMirror, remote_refs
from catalyst_sim.control.gitops.kube import KubeError
from catalyst_sim.control.gitops.runtime import SOURCE, Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceResult:
    artifact: dict[str, Any] | None  # status.artifact after this pass
    changed: bool  # a new artifact was stored in this pass
    ready: bool


class SourceReconciler:
    def __init__(self, rt: Runtime, mirrors: Path, git_home: Path) -> None:
        self.rt = rt
        self.mirrors = mirrors
        self.git_home = git_home
        self.http = httpx.Client()  # ref listings on kept-alive connections; closed with the engine

    def close(self) -> None:
        self.http.close()

    def mirror(self, name: str) -> GitMirror:
        return GitMirror(self.mirrors / f"{name}.git", home=self.git_home)

    async def reconcile(self, name: str) -> SourceResult | None:
        rt = self.rt
        repo = await rt.offload(rt.kube.get, SOURCE_API, "GitRepository", name, FLUX_NAMESPACE)
        if repo is None:
            return None
        spec, status = repo.get("spec") or {}, dict(repo.get("status") or {})
        generation = int(repo["metadata"].get("generation", 1))
        try:
            interval = c.parse_duration(spec.get("interval"), 60.0)
        except c.DurationError as exc:
            await self._failed(repo, status, generation, c.GIT_OPERATION_FAILED, str(exc))
            return SourceResult(status.get("artifact"), False, False)
        rt.schedule(SOURCE, name, interval)
        current = status.get("artifact") if isinstance(status.get("artifact"), dict) else None
        if spec.get("suspend"):
            return SourceResult(current, False, c.status_of(repo) == "True")
        url = str(spec.get("url") or "")
        branch = str((spec.get("ref") or {}).get("branch") or "master")
        try:
            credentials = await rt.offload(self._credentials, spec.get("secretRef"))
        except KubeError as exc:
            await self._failed(repo, status, generation, c.AUTHENTICATION_FAILED, exc.message)
            return SourceResult(current, False, False)
        try:
            artifact, changed = await rt.offload(self._fetch, name, url, branch, credentials, current)
        except GitError as exc:
            reason = c.AUTHENTICATION_FAILED if exc.auth else c.GIT_OPERATION_FAILED
            message = f"failed to checkout and determine revision: unable to clone '{url}': {exc.message}"
            await self._failed(repo, status, generation, reason, message)
            return SourceResult(current, False, False)
        now = rt.clock.now()
        message = f"stored artifact for revision '{artifact['revision']}'"
        conds = c.drop(status.get("conditions"), c.FETCH_FAILED, c.RECONCILING, c.STALLED)
        conds = c.put(conds, c.ARTIFACT_IN_STORAGE, "True", c.SUCCEEDED, message, generation=generation, now=now)
        conds = c.put(conds, c.READY, "True", c.SUCCEEDED, message, generation=generation, now=now)
        await rt.write_status(repo, {**status, "artifact": artifact, "conditions": conds,
                                     "observedGeneration": generation})
        if changed:
            rt.events.source(name, "artifact", revision=artifact["revision"], ready="True", reason=c.SUCCEEDED,
                             message=message)
        return SourceResult(artifact, changed, True)

    async def _failed(self, repo: dict[str, Any], status: dict[str, Any], generation: int, reason: str,
                      message: str) -> None:
        now = self.rt.clock.now()
        was = c.get(status.get("conditions"), c.READY)
        conds = c.put(status.get("conditions"), c.FETCH_FAILED, "True", reason, message, generation=generation,
                      now=now)
        conds = c.put(conds, c.READY, "False", reason, message, generation=generation, now=now)
        await self.rt.write_status(repo, {**status, "conditions": conds, "observedGeneration": generation})
        if not was or was.get("message") != message or was.get("status") != "False":
            artifact = status.get("artifact") or {}
            self.rt.events.source(repo["metadata"]["name"], "failed", revision=str(artifact.get("revision", "")),
                                  ready="False", reason=reason, message=message)

    # ------------------------------------------------------------------ blocking parts

    def _credentials(self, secret_ref: dict[str, Any] | None) -> Credentials | None:
        if not secret_ref or not secret_ref.get("name"):
            return None
        secret = self.rt.kube.get("v1", "Secret", str(secret_ref["name"]), FLUX_NAMESPACE)
        if secret is None:
            raise KubeError(404, "NotFound", f"secrets \"{secret_ref['name']}\" not found")
        data = secret.get("data") or {}

        def field(key: str) -> str:
            return base64.b64decode(data.get(key) or "").decode()

        if "password" in data or "username" in data:
            return Credentials(field("username") or "git", field("password"))
        if "bearerToken" in data:
            return Credentials(field("bearerToken"), "")
        return None

    def _fetch(self, name: str, url: str, branch: str, credentials: Credentials | None,
               current: dict[str, Any] | None) -> tuple[dict[str, Any], bool]:
        """(status.artifact, whether it is new). A mirror that has never fetched skips listing the
        remote's refs: it has to fetch anyway, and the fetch itself says where the branch is."""
        mirror = self.mirror(name)
        if mirror.exists():
            head = remote_refs(self.http, url, credentials).get(f"refs/heads/{branch}")
            if head is None:
                raise GitError(f"couldn't find remote ref \"refs/heads/{branch}\"")
            if (current and current.get("revision") == revision_of(branch, head)
                    and self.rt.storage.exists(str(current.get("path", "")))):
                return current, False
            sha = head if mirror.has(head) else mirror.fetch(url, branch, credentials)
        else:
            sha = mirror.fetch(url, branch, credentials)
        revision = revision_of(branch, sha)
        if current and current.get("revision") == revision and self.rt.storage.exists(str(current.get("path", ""))):
            return current, False
        artifact = self.rt.storage.store(FLUX_NAMESPACE, name, revision, mirror.archive(sha), self.rt.clock.now())
        return artifact.as_status(), True
