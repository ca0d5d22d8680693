"""Put a cluster into the handed-over state (end of Phase 1), in-process and in milliseconds.

This is harness housekeeping like creating the cluster itself: the objects of
:func:`~catalyst_sim.control.sovereignty.tethers.handed_over_objects` go straight into the
emulated cluster's store, Flux objects already Ready as they were at handover, and the node's
containerd pulls images over the simulated network per its ``registries.yaml``.
"""

from __future__ import annotations

from typing import Any

from catalyst_sim.backends.embedded.kube.server import Cluster
from catalyst_sim.control.sovereignty.tethers import crds, handed_over_objects

from .containerd import image_puller
from .network import Network

FLUX_KINDS = ("GitRepository", "Kustomization", "HelmRepository", "HelmRelease")


def hand_over(cluster: Cluster, network: Network) -> None:
    store = cluster.endpoint.store
    crd_type = store.registry.require("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    for crd in crds():
        if store.find(crd_type, "", crd["metadata"]["name"]) is None:
            store.create(crd_type, "", crd)
    now = store.timestamp()
    for obj in handed_over_objects():
        group, _, version = obj["apiVersion"].rpartition("/")
        rt = store.registry.by_kind(group, version, obj["kind"])
        assert rt is not None, obj["kind"]
        namespace = obj["metadata"].get("namespace", "")
        if rt.namespaced and store.find(rt, namespace, obj["metadata"]["name"]) is not None:
            continue
        if not rt.namespaced and store.find(rt, "", obj["metadata"]["name"]) is not None:
            continue
        body = dict(obj)
        if body.get("kind") == "Secret" and "stringData" in body:
            import base64

            body["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in body.pop("stringData").items()}
        created = store.create(rt, namespace, body)
        if obj["kind"] in FLUX_KINDS:
            generation = created["metadata"].get("generation")

            def ready(current: dict[str, Any], generation: Any = generation) -> dict[str, Any]:
                current["status"] = {"observedGeneration": generation, "conditions": [
                    {"type": "Ready", "status": "True", "reason": "Succeeded", "message": "ready at handover",
                     "lastTransitionTime": now, "observedGeneration": generation}]}
                return current

            store.mutate(rt, namespace, obj["metadata"]["name"], ready, subresource="status")
    cluster.behaviour.image_puller = image_puller(network)
