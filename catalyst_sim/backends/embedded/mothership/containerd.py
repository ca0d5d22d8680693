"""A node's containerd pulling images over the simulated network, per its k3s ``registries.yaml``.

k3s reads ``/etc/rancher/k3s/registries.yaml``; the simulated node keeps that file in the ConfigMap
``kube-system/k3s-registries`` (key ``registries.yaml``) of its cluster, which is what cloud-init
writes at handover and the cutover's ``registry-pivot`` DaemonSet rewrites. For an image, containerd
tries each mirror endpoint of the image's registry (with the mirror's ``rewrite`` rules applied to
the repository), then the registry itself, and the first that serves the manifest and every blob
with matching digests wins. The reason of each failed attempt goes into ``ErrImagePull``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import yaml

from catalyst_sim.backends.embedded.kube.images import parse_image
from catalyst_sim.backends.embedded.kube.store import ClusterStore

from .network import Network
from .oci import MANIFEST_TYPES, digest_of

REGISTRIES_NAMESPACE, REGISTRIES_CONFIGMAP, REGISTRIES_KEY = "kube-system", "k3s-registries", "registries.yaml"


def split_image(image: str) -> tuple[str, str, str]:
    """(registry, repository, reference) with Docker's defaults (``docker.io``, ``library/``, ``latest``)."""
    ref = parse_image(image)
    return ref.registry, ref.repository, ref.reference


def read_config(store: ClusterStore) -> dict[str, Any]:
    rt = store.registry.require("", "v1", "configmaps")
    found = store.find(rt, REGISTRIES_NAMESPACE, REGISTRIES_CONFIGMAP)
    text = ((found or {}).get("data") or {}).get(REGISTRIES_KEY, "")
    loaded = yaml.safe_load(text) if text else None
    return loaded if isinstance(loaded, dict) else {}


def pull_paths(image: str, config: dict[str, Any]) -> list[tuple[str, str]]:
    """(endpoint URL, repository) to try in order: each mirror, then the registry host itself."""
    registry, repository, _ = split_image(image)
    mirror = (config.get("mirrors") or {}).get(registry) or {}
    paths = []
    for endpoint in mirror.get("endpoint") or []:
        rewritten = repository
        for pattern, replacement in (mirror.get("rewrite") or {}).items():
            rewritten = re.sub(pattern, replacement.replace("$", "\\"), repository)
        paths.append((str(endpoint).rstrip("/"), rewritten))
    paths.append((f"https://{registry}", repository))
    return paths


def pull(network: Network, image: str, config: dict[str, Any]) -> tuple[str | None, str]:
    """(None, endpoint it came from) when pulled, else (every attempt's reason, "")."""
    _, _, reference = split_image(image)
    reasons = []
    for endpoint, repository in pull_paths(image, config):
        try:
            status, _, body = network.fetch(f"{endpoint}/v2/{repository}/manifests/{reference}",
                                            {"Accept": ", ".join(MANIFEST_TYPES)})
            if status != 200:
                reasons.append(f"{endpoint}: manifest answered {status}")
                continue
            document = json.loads(body)
            digests = [d["digest"] for d in [document.get("config", {}), *document.get("layers", [])]]
            for digest in digests:
                status, _, data = network.fetch(f"{endpoint}/v2/{repository}/blobs/{digest}")
                if status != 200 or digest_of(data) != digest:
                    raise ValueError(f"blob {digest} answered {status} or does not match its digest")
            return None, endpoint
        except Exception as exc:  # refused, reset, garbage: containerd tries the next endpoint
            reasons.append(f"{endpoint}: {exc or type(exc).__name__}")
    return "; ".join(reasons), ""


def image_puller(network: Network) -> Callable[[ClusterStore, str], str | None]:
    """The kubelet hook: read this node's registries.yaml now (a reload is just the next pull)."""

    def puller(store: ClusterStore, image: str) -> str | None:
        reason, _ = pull(network, image, read_config(store))
        return reason

    return puller
