"""Fixtures for the Kubernetes emulator's contract tests: a served emulator, clusters, real clients.

One emulator per module (wall clock, pod stages of a few tens of milliseconds so controller
outcomes arrive quickly); one fresh cluster per test, removed afterwards. kubectl is the venv's
real kubectl 1.37 with its discovery cache in a temporary directory.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from catalyst_sim.backends.embedded.kube import Cluster, KubeEmulator, KubeletBehaviour, PodStages
from catalyst_sim.clock import WallClock

KUBECTL = Path(sys.executable).parent / "kubectl"
FAST = PodStages(
    schedule=0.0,
    pull=0.02,
    start=0.02,
    ready=0.02,
    complete=0.05,
    crash_after=0.05,
    backoff_initial=0.2,
    backoff_max=1.0,
)


def emulator_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "catalyst-sim:kube-emulator"]


@pytest.fixture(scope="module")
def emulator() -> Iterator[KubeEmulator]:
    before = len(emulator_threads())
    kube = KubeEmulator(WallClock(), bookmark_interval=0.2, behaviour=lambda: KubeletBehaviour(stages=FAST))
    with kube:
        yield kube
    assert len(emulator_threads()) == before, "the emulator's server thread outlived stop()"


@pytest.fixture
def cluster(emulator: KubeEmulator, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:50].strip("-")
    created = emulator.add_cluster(name)
    yield created
    assert created.stats.reaction_errors == 0, created.stats.last_error
    emulator.remove_cluster(name)


@pytest.fixture
def kubeconfig(emulator: KubeEmulator, cluster: Cluster, tmp_path: Path) -> Path:
    return emulator.kubeconfig(cluster.name, tmp_path / "kubeconfig")


Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def make_kubectl(kubeconfig: Path, cache: Path) -> Kubectl:
    env = dict(os.environ, KUBECACHEDIR=str(cache), HOME=str(cache))

    def run(
        *args: str, stdin: str | None = None, check: bool = True, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(KUBECTL), "--kubeconfig", str(kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    return run


@pytest.fixture
def kubectl(kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return make_kubectl(kubeconfig, tmp_path_factory.mktemp("kubectl-cache"))
