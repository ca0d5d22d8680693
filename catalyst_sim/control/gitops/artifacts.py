"""source-controller's artifact storage: one ``.tar.gz`` per fetched revision.

The Kustomization reconciler builds from the artifact named in the GitRepository's status — never
from the mirror — so the two controllers are coupled only through the API, as in Flux: a
Kustomization always builds exactly the revision the source reports. Archives are written with a
fixed mtime, so the same tree always has the same ``sha256`` digest. Only the newest two artifacts
of a source are kept (Flux's garbage collection default keeps a couple for consumers mid-download).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import tarfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from catalyst_sim.control.gitops.conditions import rfc3339

STORAGE_HOST = "source-controller.flux-system.svc.cluster.local."
KEEP = 2


class ArtifactError(Exception):
    pass


@dataclass(frozen=True)
class Artifact:
    revision: str  # "<branch>@sha1:<sha>"
    path: str  # relative to the storage root
    url: str
    digest: str  # "sha256:<hex>"
    size: int
    last_update_time: str

    def as_status(self) -> dict[str, object]:
        return {
            "revision": self.revision,
            "path": self.path,
            "url": self.url,
            "digest": self.digest,
            "size": self.size,
            "lastUpdateTime": self.last_update_time,
        }


def revision_of(branch: str, sha: str) -> str:
    return f"{branch}@sha1:{sha}"


def sha_of(revision: str) -> str:
    return revision.rpartition("sha1:")[2]


class ArtifactStorage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _dir(self, namespace: str, name: str) -> Path:
        return self.root / "gitrepository" / namespace / name

    def store(self, namespace: str, name: str, revision: str, tar: bytes, now: datetime) -> Artifact:
        sha = sha_of(revision)
        data = gzip.compress(tar, mtime=0)
        relative = f"gitrepository/{namespace}/{name}/{sha}.tar.gz"
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
        self._collect(namespace, name, keep=target.name)
        return Artifact(
            revision=revision,
            path=relative,
            url=f"http://{STORAGE_HOST}/{relative}",
            digest=f"sha256:{hashlib.sha256(data).hexdigest()}",
            size=len(data),
            last_update_time=rfc3339(now),
        )

    def exists(self, relative: str) -> bool:
        return bool(relative) and (self.root / relative).is_file()

    def open(self, relative: str, digest: str | None = None) -> dict[str, bytes]:
        """Path -> content of every regular file in the artifact (links and directories skipped)."""
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root.resolve()) or not path.is_file():
            raise ArtifactError(f"artifact {relative!r} is not in storage")
        data = path.read_bytes()
        if digest and digest != f"sha256:{hashlib.sha256(data).hexdigest()}":
            raise ArtifactError(f"artifact {relative!r} does not match its digest {digest}")
        files: dict[str, bytes] = {}
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
                for member in archive.getmembers():
                    if not member.isreg():
                        continue
                    handle = archive.extractfile(member)
                    if handle is not None:
                        files[member.name.removeprefix("./")] = handle.read()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ArtifactError(f"artifact {relative!r} is unreadable: {exc}") from None
        return files

    def _collect(self, namespace: str, name: str, keep: str) -> None:
        archives = sorted(self._dir(namespace, name).glob("*.tar.gz"), key=lambda p: p.stat().st_mtime_ns)
        for old in [p for p in archives if p.name != keep][: max(0, len(archives) - KEEP)]:
            old.unlink(missing_ok=True)

    def remove(self, namespace: str, name: str) -> None:
        shutil.rmtree(self._dir(namespace, name), ignore_errors=True)
