"""The ``containers`` backend: kind host clusters and Gitea/NATS/OpenBao/Toxiproxy containers.

Not built yet. Every scenario is skipped with the reason below, never passed.
"""

from __future__ import annotations

from pathlib import Path

from catalyst_sim.backends.base import BackendOptions, BackendUnavailable
from catalyst_sim.backends.endpoints import Endpoints
from catalyst_sim.clock import WallClock

NOT_BUILT = (
    "the containers backend (kind host clusters via pytest-kind, Gitea/NATS/OpenBao/Toxiproxy "
    "via testcontainers) is not implemented yet in catalyst-sim; run with --catalyst-backend embedded"
)


class ContainersBackend:
    name = "containers"

    def __init__(self, options: BackendOptions) -> None:
        self.options = options
        self.clock = WallClock()

    def start(self) -> Endpoints:
        raise BackendUnavailable(NOT_BUILT)

    def reset(self) -> None:
        raise BackendUnavailable(NOT_BUILT)

    def evidence(self, directory: Path) -> None:
        return None

    def stop(self) -> None:
        return None
