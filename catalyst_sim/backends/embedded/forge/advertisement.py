"""A cache of ref advertisements (``GET info/refs?service=git-upload-pack``), keyed on the refs.

Flux polls every GitRepository once per interval, and a long stretch of virtual time ("72 hours
pass") means thousands of polls of repositories that have not moved. Each poll would start a
``git http-backend`` process to print the same advertisement again. The advertisement is a pure
function of the repository's refs (and of the request's protocol), so the first answer is kept
until a ref changes.

"Changed" is read from the file system, not from our own bookkeeping: the fingerprint is the
content of ``HEAD``, ``packed-refs`` and every loose ref, which is exactly the state of the refs (a
few dozen bytes per ref; reading them costs a fraction of a millisecond, a git process tens).
Whatever moved a ref — a push through ``http-backend``, an API commit, a merge, a reset by the
harness — changes the fingerprint, so no code path can forget to invalidate.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

Fingerprint = tuple[tuple[str, bytes], ...]
_MAX_ENTRIES = 4096


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):  # removed while we looked
        return None


def refs_fingerprint(repo: Path) -> Fingerprint:
    """(path, content) of HEAD, packed-refs and every loose ref of a bare repository."""
    entries: list[tuple[str, bytes]] = []
    for name in ("HEAD", "packed-refs"):
        content = _read(os.path.join(repo, name))
        if content is not None:
            entries.append((name, content))
    for directory, _, files in os.walk(repo / "refs"):
        for file in files:
            path = os.path.join(directory, file)
            content = _read(path)
            if content is not None and not file.endswith(".lock"):
                entries.append((path, content))
    return tuple(sorted(entries))


def refs_in(repo: Path, fingerprint: Fingerprint) -> dict[str, str]:
    """Every ref under ``refs/`` with the object it names, read from a :func:`refs_fingerprint`.

    The files backend's format (gitrepository-layout(5)): ``packed-refs`` holds ``<sha> <name>``
    lines (``#`` a header, ``^`` a peeled tag), a loose ref file holds ``<sha>`` or ``ref: <name>``
    and wins over its packed entry. What ``git for-each-ref`` prints, without starting git.
    """
    packed: dict[str, str] = {}
    loose: dict[str, str] = {}
    symbolic: dict[str, str] = {}
    root = os.path.join(repo, "")
    for path, content in fingerprint:
        text = content.decode(errors="replace")
        if path == "packed-refs":
            for line in text.splitlines():
                if line and line[0] not in "#^":
                    sha, _, name = line.partition(" ")
                    packed[name] = sha
        elif path.startswith(root):
            value = text.strip()
            if value.startswith("ref: "):
                symbolic[path[len(root):]] = value[5:]
            elif len(value) in (40, 64):
                loose[path[len(root):]] = value
    found = {**packed, **loose}
    for name, target in symbolic.items():  # for-each-ref shows a symbolic ref with its target's object
        for _ in range(5):
            target = symbolic.get(target, target)
        if target in found:
            found[name] = found[target]
    return found


class AdvertisementCache:
    """Responses to read-only ref advertisements, valid while the repository's refs are unchanged."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str, str], tuple[Fingerprint, object]] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, repo: Path, request_key: tuple[str, str]) -> tuple[Fingerprint, object | None]:
        """(the refs' fingerprint now, the cached response for it or ``None``)."""
        fingerprint = refs_fingerprint(repo)
        with self._lock:
            found = self._entries.get((str(repo), *request_key))
            if found is not None and found[0] == fingerprint:
                self.hits += 1
                return fingerprint, found[1]
            self.misses += 1
        return fingerprint, None

    def put(self, repo: Path, request_key: tuple[str, str], fingerprint: Fingerprint, response: object) -> None:
        with self._lock:
            if len(self._entries) >= _MAX_ENTRIES:
                self._entries.clear()
            self._entries[(str(repo), *request_key)] = (fingerprint, response)
