"""Kubernetes API server emulator with a simulated kubelet and controllers (DESIGN.md §3).

Moto-style: :mod:`.store` holds the API semantics, :mod:`.api` the HTTP surface, :mod:`.controllers`
and :mod:`.kubelet` the simulated control loops, :mod:`.server` the facade a backend uses.
"""

from .kubelet import KubeletBehaviour, PodStages
from .server import Cluster, KubeEmulator, KubeEmulatorError

__all__ = ["Cluster", "KubeEmulator", "KubeEmulatorError", "KubeletBehaviour", "PodStages"]
