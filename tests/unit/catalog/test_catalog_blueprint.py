"""The Blueprint kind (R-BP-01..07) and the real-shape normaliser (R-BP-08, C-12)."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from catalyst_sim.model.base import KINDS, CatalystError
from catalyst_sim.model.blueprint import Blueprint, normalize_blueprint, parse_blueprint

from .conftest import FIXTURES

MINIMAL: dict[str, Any] = {
    "apiVersion": "catalyst.openova.io/v1alpha1",
    "kind": "Blueprint",
    "metadata": {"name": "bp-demo"},
    "spec": {"version": "1.0.0", "card": {"title": "Demo", "summary": "A demo."}},
}


def doc(**spec: Any) -> dict[str, Any]:
    out = copy.deepcopy(MINIMAL)
    out["spec"].update(spec)
    return out


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(CatalystError) as err:
        parse_blueprint(data, source="x.yaml")
    return [f"{p.field}: {p.message}" for p in err.value.problems]


def test_registered_as_a_kind() -> None:
    assert KINDS["Blueprint"] is Blueprint


def test_minimal_blueprint_defaults() -> None:
    bp = parse_blueprint(MINIMAL)
    assert bp.name == "bp-demo" and bp.version == "1.0.0"
    assert bp.visibility == "listed"
    assert bp.spec.depends == [] and not bp.is_composite
    assert bp.ref() == "Blueprint/bp-demo@1.0.0"
    assert bp.short_name == "demo"


def test_version_at_metadata_is_accepted_c12() -> None:
    data = copy.deepcopy(MINIMAL)
    del data["spec"]["version"]
    data["metadata"]["version"] = "1.3.0"
    assert parse_blueprint(data).version == "1.3.0"


def test_version_problems() -> None:
    data = copy.deepcopy(MINIMAL)
    del data["spec"]["version"]
    assert any("needs a version" in p for p in problems_of(data))
    data["metadata"]["version"] = "1.0.0"
    data["spec"]["version"] = "1.0.1"
    assert any("disagree" in p for p in problems_of(data))
    assert any("semantic version" in p for p in problems_of(doc(version="1.0")))


def test_unknown_fields_are_errors_naming_the_field() -> None:
    data = doc(visiblity="listed", depends=[{"blueprint": "bp-redis", "aliass": "cache"}])
    data["spec"]["card"]["subtitle"] = "x"
    found = problems_of(data)
    assert "spec.visiblity: unknown field" in found
    assert "spec.depends[0].aliass: unknown field" in found
    assert "spec.card.subtitle: unknown field" in found


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda d: d["metadata"].update(name="wordpress"), "must be bp-<name>"),
        (lambda d: d["metadata"].update(name="bp-Word"), "must be bp-<name>"),
        (lambda d: d.update(apiVersion="catalyst.openova.io/v1"), "apiVersion"),
        (lambda d: d["spec"].update(visibility="public"), "visibility"),
        (lambda d: d["spec"]["card"].update(summary=""), "must not be empty"),
        (lambda d: d["spec"]["card"].pop("summary"), "summary (or tagline)"),
        (lambda d: d["spec"].update(placementSchema={"modes": ["everywhere"]}), "placementSchema.modes"),
        (
            lambda d: d["spec"].update(
                placementSchema={"modes": ["single-region"], "default": "active-active"}
            ),
            "not one of modes",
        ),
        (
            lambda d: d["spec"].update(
                placementSchema={"modes": ["active-active"], "minRegions": 3, "maxRegions": 2}
            ),
            "below minRegions",
        ),
        (lambda d: d["spec"].update(depends=[{"blueprint": "postgres"}]), "not a Blueprint name"),
        (lambda d: d["spec"].update(depends=[{"blueprint": "bp-a", "alias": "Db"}]), "DNS-1123"),
        (lambda d: d["spec"].update(depends=[{"blueprint": "bp-a"}, {"blueprint": "bp-a"}]), "share the key"),
        (
            lambda d: d["spec"].update(manifests={"source": {"kind": "OAM", "ref": "x"}}),
            "OAM is not supported",
        ),
        (lambda d: d["spec"].update(manifests={}), "needs a source"),
        (
            lambda d: d["spec"].update(manifests={"resources": [{"kind": "Service"}]}),
            "not a Kubernetes object",
        ),
        (
            lambda d: d["spec"].update(
                manifests={"source": {"kind": "HelmChart", "ref": "x"}, "overlays": {"huge": {}}}
            ),
            "overlays",
        ),
        (lambda d: d["spec"].update(rotation=[{"kind": "k", "name": "n", "ttl": "3 months"}]), "duration"),
        (lambda d: d["spec"].update(secrets=[{"name": "db", "path": "x", "keys": []}]), "secrets[0].keys"),
        (lambda d: d["spec"]["card"].update(category="composite"), "must depend on"),
    ],
)
def test_shape_errors(mutate: Any, needle: str) -> None:
    data = copy.deepcopy(MINIMAL)
    mutate(data)
    assert any(needle in p for p in problems_of(data)), problems_of(data)


def test_composite_carries_no_manifests() -> None:
    data = doc(depends=[{"blueprint": "bp-a"}], manifests={"source": {"kind": "HelmChart", "ref": "x"}})
    data["spec"]["card"]["category"] = "composite"
    assert any("carries no manifests" in p for p in problems_of(data))


def test_documented_wordpress_shape_parses() -> None:
    """Our own rendition of the BLUEPRINT-AUTHORING §3 shape (metadata.version, tagline, source)."""
    data = {
        "apiVersion": "catalyst.openova.io/v1alpha1",
        "kind": "Blueprint",
        "metadata": {"name": "bp-site", "version": "1.3.0"},
        "spec": {
            "card": {
                "title": "Site",
                "tagline": "A CMS",
                "category": "cms",
                "tags": ["cms"],
                "screenshots": ["a.png"],
                "license": "MIT",
                "documentation": "https://x",
            },
            "visibility": "listed",
            "owner": {"team": "apps", "contact": "apps@example.org"},
            "configSchema": {"type": "object"},
            "placementSchema": {
                "modes": ["single-region", "active-active", "active-hotstandby"],
                "minRegions": 1,
                "maxRegions": 5,
            },
            "depends": [
                {
                    "blueprint": "bp-postgres",
                    "version": "^1.4",
                    "alias": "db",
                    "when": "{{ .config.postgres.mode == 'embedded' }}",
                    "values": {"databases": ["{{ .application.name }}"], "size": "medium"},
                }
            ],
            "manifests": {
                "source": {"kind": "HelmChart", "ref": "oci://x/bp-site:1.3.0"},
                "overlays": {"small": {"replicas": 1}, "large": {"replicas": 5}},
            },
            "upgrades": {"from": ["1.2.x"], "blocks": ["1.0.x"]},
            "rotation": [{"kind": "oauth-client-secret", "name": "site-client", "ttl": "90d"}],
            "observability": {"metrics": "prometheus", "logs": "stdout", "traces": "otlp"},
            "outputs": {"connectionSecret": "x"},
            "dynamicSecrets": True,
        },
    }
    bp = parse_blueprint(data)
    assert bp.version == "1.3.0"
    assert bp.spec.card.text == "A CMS"
    assert bp.spec.upgrades is not None and bp.spec.upgrades.from_ == ["1.2.x"]
    assert bp.spec.depends[0].key == "db"
    assert bp.overlay_values() == {"small": {"replicas": 1}, "large": {"replicas": 5}}


def test_placement_problems() -> None:
    bp = parse_blueprint(doc(placementSchema={"modes": ["single-region", "active-active"], "maxRegions": 3}))
    placement = bp.spec.placementSchema
    assert placement is not None
    assert placement.problems("single-region", 1) == []
    assert placement.problems("active-active", 2) == []
    assert any("not supported" in p for p in placement.problems("active-hotstandby", 2))
    assert any("above maxRegions" in p for p in placement.problems("active-active", 4))
    assert any("at least two regions" in p for p in placement.problems("active-active", 1))


def test_normaliser_accepts_real_file_shapes_with_warnings() -> None:
    real = {
        "apiVersion": "catalyst.openova.io/v1",
        "kind": "Blueprint",
        "metadata": {"name": "log-shipper", "labels": {"x": "y"}},
        "spec": {
            "version": "1.0.0",
            "card": {
                "title": "Log shipper",
                "family": "insights",
                "description": "Ships logs.",
                "docs": "https://x",
            },
            "manifests": {"chart": "./chart"},
            "depends": ["bp-object-store", {"blueprint": "metrics-store", "version": "^1.0"}],
        },
    }
    bp, warnings = normalize_blueprint(real, source="real.yaml")
    assert bp.name == "bp-log-shipper"
    assert bp.apiVersion == "catalyst.openova.io/v1alpha1"
    assert [d.blueprint for d in bp.spec.depends] == ["bp-object-store", "bp-metrics-store"]
    assert bp.spec.depends[0].version == "*"
    assert bp.spec.manifests is not None and bp.spec.manifests.source is not None
    assert bp.spec.manifests.source.ref == "./chart"
    assert bp.spec.card.summary == "Ships logs."
    fields = {w.field for w in warnings}
    assert {
        "apiVersion",
        "metadata.name",
        "spec.depends[0]",
        "spec.depends[1].blueprint",
        "spec.manifests.chart",
        "spec.card.summary",
        "spec.visibility",
    } <= fields
    assert all(w.source == "real.yaml" for w in warnings)
    assert real["metadata"]["name"] == "log-shipper"  # the input is not modified


def test_normaliser_still_rejects_real_errors() -> None:
    data = doc(bogus=1)
    data["apiVersion"] = "catalyst.openova.io/v1"
    with pytest.raises(CatalystError, match="unknown field"):
        normalize_blueprint(data)
    with pytest.raises(CatalystError, match="expected a mapping"):
        normalize_blueprint(["not", "a", "mapping"])


def test_normaliser_accepts_strict_documents_without_warnings() -> None:
    bp, warnings = normalize_blueprint(doc(visibility="unlisted"))
    assert bp.visibility == "unlisted" and warnings == []


def test_every_fixture_is_strict() -> None:
    count = 0
    for path in sorted(FIXTURES.glob("*.yaml")):
        for data in yaml.safe_load_all(path.read_text()):
            parse_blueprint(data, source=str(path))
            count += 1
    assert count >= 11


SPEC_DIR = Path(os.environ.get("CATALYST_SPEC_DIR", "/work/shared/spec"))
REAL_FILES = sorted((SPEC_DIR / "reference" / "yaml").glob("**/blueprint*.yaml"))


@pytest.mark.skipif(
    not REAL_FILES, reason="reference blueprint.yaml files not available (set CATALYST_SPEC_DIR)"
)
def test_every_reference_blueprint_normalizes_r_bp_08() -> None:
    """R-BP-08: every upstream blueprint.yaml parses through the normaliser (read in place, never copied)."""
    for path in REAL_FILES:
        for data in yaml.safe_load_all(path.read_text()):
            if data:
                bp, _ = normalize_blueprint(data, source=str(path))
                assert bp.name.startswith("bp-")
