"""A cache of ref advertisements (``GET info/refs?service=git-upload-pack``), keyed on the refs.

Flux polls every GitRepository once per interval, and a long stretch of virtual time ("72 hours
pass") means thousands of polls of repositories that have not moved. Each poll would start a
``git http-backend`` process to print the same advertisement again. The advertisement is a pure
function of the repository's refs (and of the request's protocol), so the first answer is kept
until a ref changes.

"Changed" is read from the file system, not from our own bookkeeping: git updates a ref by
writing ``<ref>.lock`` and renaming it over the ref, so every update gives the ref file a new inode
(``packed-refs`` likewise). Whatever moved a ref — a push through ``http-backend``, an API commit, a
merge, a reset by the harness — changes the fingerprint, and no code path can forget to invalidate.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

Fingerprint = tuple[tuple[str, int, int, int], ...]
_MAX_ENTRIES = 4096


def refs_fingerprint(repo: Path) -> Fingerprint:
    """(path, inode, mtime, size) of HEAD, packed-refs and every loose ref of a bare repository."""
    entries: list[tuple[str, int, int, int]] = []
    for name in ("HEAD", "packed-refs"):
        try:
            st = os.stat(repo / name)
        except FileNotFoundError:
            continue
        entries.append((name, st.st_ino, st.st_mtime_ns, st.st_size))
    for directory, _, files in os.walk(repo / "refs"):
        for file in files:
            path = os.path.join(directory, file)
            try:
                st = os.stat(path)
            except FileNotFoundError:  # removed while we walked: the next poll sees it
                continue
            entries.append((path, st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(sorted(entries))


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
