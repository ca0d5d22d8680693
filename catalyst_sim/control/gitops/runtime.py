"""What the reconcilers share: the engine's identity, its services and its scheduling hooks.

Reconcilers never own timers or threads themselves; they ask the engine through
:attr:`Runtime.schedule` (run ``what`` for ``app`` after some seconds *of the Clock*),
:attr:`Runtime.enqueue` (run it now) and :attr:`Runtime.offload` (run a blocking call on the
engine's executor). That keeps the settle protocol in one place (see :mod:`.engine`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from catalyst_sim.clock import Clock
from catalyst_sim.control.catalog import BlueprintRegistry
from catalyst_sim.control.gitops.artifacts import ArtifactStorage
from catalyst_sim.control.gitops.events import EventEmitter
from catalyst_sim.control.gitops.kube import Kube

# What a timer or queue key can ask for, per App.
SOURCE = "source"
KUSTOMIZATION = "ks"
HEALTH = "health"


@dataclass(frozen=True)
class Identity:
    """Where this Flux runs: the vcluster of one Organization's Environment (R-NAME-09)."""

    vcluster: str
    organization: str
    environment: str
    env_type: str
    sovereign: str | None = None
    host_cluster: str | None = None

    def variables(self) -> dict[str, str]:
        """The post-build variables every App repo may use (R-GIT-01's per-Environment values)."""
        return {
            "ENV_TYPE": self.env_type,
            "ENVIRONMENT": self.environment,
            "ORGANIZATION": self.organization,
            "VCLUSTER": self.vcluster,
        }

    def workload_labels(self) -> dict[str, str | None]:
        """R-NAME-23 labels that do not depend on the App (unknown ones are left out)."""
        return {
            "openova.io/sovereign": self.sovereign,
            "openova.io/organization": self.organization,
            "openova.io/environment": self.environment,
            "openova.io/vcluster": self.vcluster,
            "openova.io/host-cluster": self.host_cluster,
        }


@dataclass(frozen=True)
class Timing:
    """Seconds of the Clock between the engine's own polls and retries."""

    health_poll: float = 2.0  # how often a pending health check looks again
    dependency_retry: float = 30.0  # kustomize-controller's --requeue-dependency default


@dataclass
class Runtime:
    kube: Kube
    clock: Clock
    storage: ArtifactStorage
    catalog: BlueprintRegistry
    identity: Identity
    timing: Timing
    events: EventEmitter
    offload: Callable[..., Awaitable[Any]]
    schedule: Callable[[str, str, float], None]
    cancel: Callable[[str, str], None]
    enqueue: Callable[[str, str], None]

    async def write_status(self, obj: dict[str, Any], status: dict[str, Any]) -> dict[str, Any] | None:
        """Merge-patch ``status`` onto ``obj`` through its status subresource, unless nothing changed.

        Returns the object as the server now has it (``None`` if it was deleted meanwhile). Keys
        that ``status`` no longer has are removed explicitly (merge patch ``null``).
        """
        old = obj.get("status") or {}
        if old == status:
            return obj
        patch: dict[str, Any] = dict(status)
        for key in old:
            patch.setdefault(key, None)
        meta = obj["metadata"]
        return await self.offload(
            self.kube.patch_status, obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"), patch
        )
