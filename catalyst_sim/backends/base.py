"""The contract every backend fulfils: start a Sovereign, hand out its endpoints, stop it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from catalyst_sim.backends.endpoints import Endpoints
from catalyst_sim.clock import Clock

BACKENDS = ("embedded", "containers", "live")


class BackendUnavailable(RuntimeError):
    """This backend cannot run here; every scenario needing it is skipped with this reason."""


@dataclass(frozen=True)
class BackendOptions:
    run_dir: Path
    seed: int = 0
    target: Path | None = None  # the vendor's target file, for ``live``
    topology: str = "sme"


class Backend(Protocol):
    name: str
    clock: Clock

    def start(self) -> Endpoints: ...

    def reset(self) -> None:
        """Give the next scenario a clean Sovereign without restarting the infrastructure."""

    def evidence(self, directory: Path) -> None:
        """Write what a person needs to debug a failed scenario (DESIGN.md §5)."""

    def stop(self) -> None: ...


def create_backend(name: str, options: BackendOptions) -> Backend:
    if name == "embedded":
        from catalyst_sim.backends.embedded.sovereign import EmbeddedBackend

        return EmbeddedBackend(options)
    if name == "containers":
        from catalyst_sim.backends.containers import ContainersBackend

        return ContainersBackend(options)
    if name == "live":
        from catalyst_sim.backends.live import LiveBackend

        return LiveBackend(options)
    raise BackendUnavailable(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}")
