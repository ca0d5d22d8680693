"""The Sovereign's CRs, stored as files in ``system/catalyst-config`` (R-CRD-02, R-NAME-13).

Git is the source of truth: every create is a commit in the Sovereign's Gitea through its API.
An in-memory index answers reads; ``load`` rebuilds it from the repo after a restart.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from catalyst_sim.clients.gitea import GiteaClient, GiteaError
from catalyst_sim.model.base import CatalystError, CatalystObject, NotFoundError, Problem
from catalyst_sim.model.loader import dump_yaml, load_objects

SYSTEM_ORG = "system"
CONFIG_REPO = "catalyst-config"
SYSTEM_REPOS = ("catalyst-config", "policy-bundle", "runbooks")
CONFIG_BRANCH = "main"
POLICIES_DIR = "policies/"
log = logging.getLogger(__name__)


def path_for(obj: CatalystObject) -> str:
    """Where a CR lives in catalyst-config; EnvironmentPolicy follows R-NAME-15."""
    name = obj.metadata.name
    match obj.kind:
        case "Sovereign":
            return "sovereign.yaml"
        case "Organization":
            return f"organizations/{name}.yaml"
        case "Environment":
            return f"environments/{name}.yaml"
        case "Application":
            environment = getattr(obj.spec, "environment")  # noqa: B009 - every Application has one
            return f"applications/{environment}/{name}.yaml"
        case "EnvironmentPolicy":
            return f"{POLICIES_DIR}{name}.yaml"
    raise ValueError(f"{obj.kind} is not stored in {CONFIG_REPO}")


class ConfigStore:
    def __init__(self, gitea: GiteaClient, author: str = "catalyst-control-plane") -> None:
        self.gitea = gitea
        self.author = author
        self._objects: dict[str, CatalystObject] = {}  # keyed by path in the repo
        self.problems: list[Problem] = []  # files skipped by the last load, each problem naming its file
        self._lock = threading.RLock()

    def ensure_layout(self) -> None:
        """Create the ``system`` Gitea Org and its three repos if this Sovereign has none yet."""
        try:
            self.gitea.get_org(SYSTEM_ORG)
        except GiteaError as exc:
            if exc.status != 404:
                raise
            self.gitea.create_org(SYSTEM_ORG, description="sovereign-admin scope (R-GIT-06)")
        for repo in SYSTEM_REPOS:
            try:
                self.gitea.get_repo(SYSTEM_ORG, repo)
            except GiteaError as exc:
                if exc.status != 404:
                    raise
                self.gitea.create_repo(SYSTEM_ORG, repo, private=True)
                self.gitea.commit_files(SYSTEM_ORG, repo, CONFIG_BRANCH,
                                        {"README.md": f"# {repo}\n\nManaged by Catalyst.\n"},
                                        message=f"Initialize {repo}")

    def load(self) -> None:
        """Rebuild the index from the repo (after a control-plane restart).

        Policies are left to the policy loader, which reports each one's problems through the API
        (R-EP). Any other file that does not parse is skipped and listed in ``problems``: one bad
        hand edit in Git must not keep the whole Sovereign from starting.
        """
        with self._lock:
            self._objects.clear()
            self.problems = []
            for path in self._walk(""):
                if not path.endswith(".yaml") or path.startswith(POLICIES_DIR):
                    continue
                text = self.gitea.read_file(SYSTEM_ORG, CONFIG_REPO, path, ref=CONFIG_BRANCH)
                try:
                    objects = load_objects(text, source=f"{SYSTEM_ORG}/{CONFIG_REPO}/{path}")
                except CatalystError as exc:
                    log.warning("skipping %s/%s/%s: %s", SYSTEM_ORG, CONFIG_REPO, path, exc)
                    self.problems.extend(exc.problems)
                    continue
                for obj in objects:
                    self._objects[path_for(obj)] = obj

    def _walk(self, directory: str) -> Iterable[str]:
        for entry in self.gitea.list_dir(SYSTEM_ORG, CONFIG_REPO, directory, ref=CONFIG_BRANCH):
            if entry["type"] == "dir":
                yield from self._walk(entry["path"])
            else:
                yield entry["path"]

    def put(self, *objects: CatalystObject, message: str) -> None:
        """Commit the objects in one commit, then index them (nothing is indexed if the commit fails)."""
        with self._lock:
            files = {path_for(obj): dump_yaml(obj) for obj in objects}
            self.gitea.commit_files(SYSTEM_ORG, CONFIG_REPO, CONFIG_BRANCH, files, message=message)
            for obj in objects:
                self._objects[path_for(obj)] = obj

    def find(self, kind: str, name: str) -> CatalystObject | None:
        """Organizations, Environments and policies by name (Applications: use ``list``)."""
        with self._lock:
            return next((o for o in self._objects.values() if o.kind == kind and o.metadata.name == name), None)

    def get(self, kind: str, name: str) -> CatalystObject:
        obj = self.find(kind, name)
        if obj is None:
            raise NotFoundError(f"{kind} {name!r} does not exist", object=f"{kind}/{name}")
        return obj

    def list(self, kind: str) -> list[CatalystObject]:
        with self._lock:
            return sorted((o for o in self._objects.values() if o.kind == kind), key=path_for)

    def forget(self) -> None:
        with self._lock:
            self._objects.clear()
