"""What the vcluster chart does on a host cluster, emulated (R-NAME-09, R-ENVC-01).

The environment-controller installs a vcluster the way it would on a real host: a StatefulSet named
``{org}`` labelled ``app=vcluster`` in the namespace ``{org}``. When that StatefulSet is ready, the
virtual cluster's API comes up — here a new emulator cluster named by the qualified kube context
``{host-cluster}-{org}`` — and its kubeconfig is published as the Secret ``vc-{org}`` (key
``config``) next to it, as the real vcluster does. Deleting the StatefulSet removes the cluster.
"""

from __future__ import annotations

import base64
import contextlib
from typing import TYPE_CHECKING, Any

import yaml

from catalyst_sim.backends.embedded.kube.errors import ApiError
from catalyst_sim.backends.embedded.kube.store import Event

if TYPE_CHECKING:
    from catalyst_sim.backends.embedded.kube.server import Cluster, KubeEmulator

STATEFULSETS = ("apps", "statefulsets")
VCLUSTER_LABEL = ("app", "vcluster")


def vcluster_cluster_name(host: str, name: str) -> str:
    """The emulator cluster serving vcluster ``name`` on ``host``: the qualified context name."""
    return f"{host}-{name}"


class VClusterOperator:
    def __init__(self, emulator: KubeEmulator, host: Cluster) -> None:
        self.emulator = emulator
        self.host = host
        self.store = host._store
        self.secrets = self.store.registry.storage_type(("", "secrets"))
        self.store.add_reaction(self._react)

    def _react(self, event: Event) -> None:
        if event.gr != STATEFULSETS:
            return
        labels = (event.obj.get("metadata") or {}).get("labels") or {}
        if labels.get(VCLUSTER_LABEL[0]) != VCLUSTER_LABEL[1]:
            return
        if event.type == "DELETED":
            self.store.enqueue(self._teardown, (event.namespace, event.name))
        elif (event.obj.get("status") or {}).get("readyReplicas", 0) >= 1:
            self.store.enqueue(self._provision, (event.namespace, event.name))

    def _provision(self, key: tuple[str, str]) -> None:
        namespace, name = key
        cluster_name = vcluster_cluster_name(self.host.name, name)
        if cluster_name not in self.emulator.clusters:
            self.emulator.add_cluster(cluster_name)
        if self.store.find(self.secrets, namespace, f"vc-{name}") is not None:
            return
        config = self.emulator.kubeconfig_dict(cluster_name)
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"vc-{name}", "namespace": namespace,
                         "labels": {"app": "vcluster", "vcluster-name": name}},
            "type": "Opaque",
            "data": {"config": base64.b64encode(yaml.safe_dump(config).encode()).decode()},
        }
        with contextlib.suppress(ApiError):  # the namespace is being deleted: the vcluster goes with it
            self.store.create(self.secrets, namespace, body)

    def _teardown(self, key: tuple[str, str]) -> None:
        _, name = key
        cluster_name = vcluster_cluster_name(self.host.name, name)
        if cluster_name in self.emulator.clusters:
            self.emulator.remove_cluster(cluster_name)
