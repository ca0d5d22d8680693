"""Loading, validation, lookup and visibility of the Blueprint registry (R-CAT-01/02, R-BP-03)."""

from __future__ import annotations

import copy
import textwrap
from pathlib import Path

import pytest

from catalyst_sim.control.catalog.registry import BlueprintRegistry, check_blueprint
from catalyst_sim.model.base import CatalystError, NotFoundError
from catalyst_sim.model.blueprint import parse_blueprint

from .conftest import BROKEN, DATA, FIXTURES


def load_problems(path: Path, **kwargs: object) -> list[str]:
    with pytest.raises(CatalystError) as err:
        BlueprintRegistry.from_directory(path, **kwargs)  # type: ignore[arg-type]
    return [str(p) for p in err.value.problems]


def test_fixture_catalog_loads(registry: BlueprintRegistry) -> None:
    assert registry.names() == [
        "bp-bundle-pharmacy",
        "bp-erpnext",
        "bp-postgres",
        "bp-redis",
        "bp-stalwart",
        "bp-valkey",  # Helm-kind: bp-valkey/blueprint.yaml beside its chart, whose YAML is not read here
        "bp-woocommerce",
        "bp-wordpress",
    ]
    assert registry.versions("bp-postgres") == ["1.4.2", "1.5.0", "2.0.0"]
    assert registry.versions("bp-wordpress") == ["1.2.0", "1.3.0"]  # multi-document file
    assert registry.warnings == []
    assert len(registry) == 12


def test_lookup_by_range(registry: BlueprintRegistry) -> None:
    assert registry.resolve("bp-postgres", "^1.4").version == "1.5.0"
    assert registry.resolve("bp-postgres", "~1.4").version == "1.4.2"
    assert registry.resolve("bp-postgres", "*").version == "2.0.0"
    assert registry.latest("bp-postgres").version == "2.0.0"
    assert registry.get("bp-postgres", "1.4.2").version == "1.4.2"
    with pytest.raises(CatalystError) as err:
        registry.resolve("bp-postgres", "^3")
    assert err.value.code == "Unsatisfiable"
    assert "'^3'" in str(err.value) and "1.4.2, 1.5.0, 2.0.0" in str(err.value)
    with pytest.raises(NotFoundError, match=r"no version 9\.9\.9"):
        registry.get("bp-postgres", "9.9.9")


def test_unknown_blueprint_suggests_close_names(registry: BlueprintRegistry) -> None:
    with pytest.raises(NotFoundError, match=r"unknown Blueprint 'bp-postgress'; did you mean bp-postgres\?"):
        registry.resolve("bp-postgress", "^1")


def test_catalog_cards_are_the_latest_listed_versions(registry: BlueprintRegistry) -> None:
    cards = {bp.name: bp.version for bp in registry.catalog()}
    assert cards["bp-postgres"] == "2.0.0" and cards["bp-wordpress"] == "1.3.0"
    assert cards["bp-bundle-pharmacy"] == "1.0.0"


def test_visibility_r_bp_03() -> None:
    reg = BlueprintRegistry.from_directory(DATA / "blueprints-visibility")
    assert [b.name for b in reg.catalog(organization="acme")] == ["bp-public-site"]
    assert [b.name for b in reg.catalog(organization="muscatpharmacy")] == [
        "bp-pharmacy-pos",
        "bp-public-site",
    ]
    # unlisted: not on the grid, but installable and findable by exact name
    assert reg.resolve("bp-infra-agent", "^1", organization="acme").name == "bp-infra-agent"
    assert [b.name for b in reg.search("bp-infra-agent", organization="acme")] == ["bp-infra-agent"]
    assert [b.name for b in reg.search("infra", organization="acme")] == []
    # private: another Org cannot tell it exists
    with pytest.raises(NotFoundError, match="unknown Blueprint 'bp-pharmacy-pos'"):
        reg.resolve("bp-pharmacy-pos", "*", organization="acme")
    assert "bp-pharmacy-pos" not in reg.names(organization="acme")
    assert reg.resolve("bp-pharmacy-pos", "*", organization="muscatpharmacy").visibility == "private"


def test_private_blueprint_owner_comes_from_the_load_source(tmp_path: Path) -> None:
    (tmp_path / "bp-x.yaml").write_text(
        textwrap.dedent("""\
        apiVersion: catalyst.openova.io/v1alpha1
        kind: Blueprint
        metadata: {name: bp-x}
        spec: {version: 1.0.0, card: {title: X, summary: Private.}, visibility: private}
        """)
    )
    problems = load_problems(tmp_path)
    assert any("spec.owner.organization" in p and "owning Organization" in p for p in problems)
    reg = BlueprintRegistry.from_directory(tmp_path, organization="acme")
    assert reg.resolve("bp-x", organization="acme").name == "bp-x"
    with pytest.raises(NotFoundError):
        reg.resolve("bp-x", organization="globex")


def test_invalid_yaml_names_file_and_line() -> None:
    problems = load_problems(BROKEN / "invalid-yaml")
    assert len(problems) == 1
    assert "bp-broken.yaml" in problems[0] and "invalid YAML (line" in problems[0]


def test_unknown_fields_name_file_object_and_field() -> None:
    problems = load_problems(BROKEN / "unknown-field")
    assert any("bp-typo.yaml: Blueprint/bp-typo at spec.visiblity: unknown field" in p for p in problems)
    assert any("at spec.depends[0].aliass: unknown field" in p for p in problems)


def test_semantic_problems_are_all_reported_together() -> None:
    problems = load_problems(BROKEN / "bad-semantics")
    joined = "\n".join(problems)
    assert "spec.configSchema.properties.replicas.default" in joined
    assert "spec.configSchema.properties.mode.enumm: unknown JSON Schema keyword" in joined
    assert "spec.depends[0].version: version range '^one'" in joined
    assert "spec.depends[1].when" in joined and "function calls are not supported" in joined
    assert "spec.depends[1].values" in joined and "unknown root '.secrets'" in joined
    assert all("bp-bad-expressions.yaml" in p for p in problems)


def test_loading_is_all_or_nothing(tmp_path: Path) -> None:
    good = (FIXTURES / "bp-erpnext.yaml").read_text()
    (tmp_path / "a.yaml").write_text(good)
    (tmp_path / "b.yaml").write_text("kind: Blueprint\nmetadata: {name: bp-y}\nspec: {}\n")
    reg = BlueprintRegistry()
    with pytest.raises(CatalystError):
        reg.load_directory(tmp_path)
    assert len(reg) == 0


def test_duplicate_versions_are_rejected(tmp_path: Path) -> None:
    text = (FIXTURES / "bp-erpnext.yaml").read_text()
    (tmp_path / "one.yaml").write_text(text)
    (tmp_path / "two.yaml").write_text(text)
    problems = load_problems(tmp_path)
    assert any("bp-erpnext 1.0.0 is defined twice (also in" in p and "one.yaml" in p for p in problems)


def test_other_kinds_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "env.yaml").write_text(
        "apiVersion: catalyst.openova.io/v1alpha1\nkind: Environment\nmetadata: {name: acme-prod}\n"
    )
    assert any("expected kind Blueprint, got 'Environment'" in p for p in load_problems(tmp_path))


def test_missing_directory() -> None:
    with pytest.raises(CatalystError, match="does not exist"):
        BlueprintRegistry.from_directory(DATA / "no-such-dir")


def test_lenient_mode_loads_real_shapes_with_warnings() -> None:
    problems = load_problems(DATA / "blueprints-realshape")
    assert any("unknown field" in p or "apiVersion" in p for p in problems)
    reg = BlueprintRegistry.from_directory(DATA / "blueprints-realshape", lenient=True)
    assert reg.names() == ["bp-log-shipper", "bp-metrics-store", "bp-object-store"]
    assert any("normalized" in w.message for w in reg.warnings)


def test_add_and_check(registry: BlueprintRegistry) -> None:
    reg = BlueprintRegistry()
    bp = registry.get("bp-redis", "1.1.0")
    reg.add(bp, source="memory")
    assert reg.latest("bp-redis").version == "1.1.0"
    with pytest.raises(CatalystError, match="already registered"):
        reg.add(bp)
    data = bp.model_dump(by_alias=True, exclude_none=True)
    broken = copy.deepcopy(data)
    broken["spec"]["depends"] = [{"blueprint": "bp-redis", "version": "*"}]
    assert any("depends on itself" in p.message for p in check_blueprint(parse_blueprint(broken)))
    broken = copy.deepcopy(data)
    broken["spec"]["manifests"]["resources"][0]["metadata"]["name"] = "{{ .config.x }}"
    assert any("unknown root '.config'" in p.message for p in check_blueprint(parse_blueprint(broken)))


def test_api_conveniences(registry: BlueprintRegistry) -> None:
    assert registry.get("bp-postgres").version == "2.0.0"  # latest
    assert registry.get("bp-postgres", "^1").version == "1.5.0"  # a range
    assert registry.get("bp-postgres", "1.4.2").version == "1.4.2"  # exact
    assert [b.name for b in registry.list()] == [b.name for b in registry.catalog()]
    assert len(BlueprintRegistry.load(FIXTURES)) == len(registry)
