"""Dependency flattening (R-CAT-03/04, R-DEP-01..05, R-PROV-02, R-NAME-21, D-07, C-13)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from catalyst_sim.control.catalog.flatten import ExistingApplication, FlatPlan, app_name_problem, flatten
from catalyst_sim.control.catalog.registry import BlueprintRegistry
from catalyst_sim.model.base import CatalystError

from .conftest import broken

WP = {"domain": "marketing.acme.io", "adminEmail": "web@acme.io"}
PHARMACY = {"domain": "muscatpharmacy.shop.omantel.com", "adminEmail": "ahmed@muscatpharmacy.om"}
PG_MAIN = ExistingApplication("pg-main", "bp-postgres", "1.5.0", "acme-prod")


def edges(plan: FlatPlan) -> dict[str, list[str]]:
    return {n.name: n.depends_on for n in plan.nodes}


def registry_from(text: str) -> BlueprintRegistry:
    reg = BlueprintRegistry()
    reg.load_documents(yaml.safe_load_all(text), source="inline")
    return reg


def card(title: str) -> str:
    return f"{{title: {title}, summary: {title} for tests.}}"


# ----------------------------------------------------------------- R-PROV-02 golden plans


def test_golden_wordpress_without_existing_postgres(registry: BlueprintRegistry) -> None:
    plan = flatten(registry, "bp-wordpress", "^1", app_name="marketing-site", config=WP, organization="acme")
    assert plan.names == ["marketing-site-postgres", "marketing-site"]  # dependencies first
    assert [n.new for n in plan.nodes] == [True, True]
    site, db = plan.node("marketing-site"), plan.node("marketing-site-postgres")
    assert plan.root is site and site.role == "root" and db.role == "dependency"
    assert site.version == "1.3.0" and db.version == "1.5.0"  # ^1.4 never reaches 2.0.0
    assert site.depends_on == ["marketing-site-postgres"]
    assert site.dependencies == {"db": "marketing-site-postgres"}
    assert db.alias == "db" and db.path == "db" and db.range == "^1.4"
    # the parent's values, templated with the parent's name, then the dependency's own defaults
    assert db.config == {
        "databases": ["marketing-site"],
        "size": "medium",
        "instances": 1,
        "storage": "10Gi",
        "backups": {"schedule": "daily", "retentionDays": 14},
    }
    assert site.config["replicas"] == 2 and site.config["postgres"] == {"mode": "embedded"}
    [edge] = db.parents
    assert (edge.parent, edge.parent_blueprint, edge.kind, edge.range) == (
        "marketing-site",
        "bp-wordpress",
        "dependency",
        "^1.4",
    )
    assert [(s.path, s.blueprint) for s in plan.skipped] == [("cache", "bp-redis")]
    assert db.definition is not None and db.definition.version == "1.5.0"


def test_golden_wordpress_bound_to_an_existing_postgres(registry: BlueprintRegistry) -> None:
    plan = flatten(
        registry,
        "bp-wordpress",
        app_name="marketing-site",
        config=WP,
        existing=[PG_MAIN],
        bindings={"db": "pg-main"},
        environment="acme-prod",
    )
    assert [(n.name, n.new) for n in plan.nodes] == [("pg-main", False), ("marketing-site", True)]
    assert [n.name for n in plan.new_apps] == ["marketing-site"]
    pg = plan.node("pg-main")
    assert pg.role == "existing" and pg.version == "1.5.0" and pg.environment == "acme-prod"
    assert plan.node("marketing-site").depends_on == ["pg-main"]
    assert plan.node("marketing-site").dependencies == {"db": "pg-main"}
    assert pg.candidates == [PG_MAIN]
    assert pg.parent_names == ["marketing-site"]


def test_existing_postgres_is_offered_as_a_candidate_c13(registry: BlueprintRegistry) -> None:
    existing = [
        PG_MAIN,
        ExistingApplication("pg-analytics", "bp-postgres", "1.4.2", "acme-dev"),
        ExistingApplication("pg-next", "bp-postgres", "2.0.0", "acme-prod"),  # outside ^1.4
        ExistingApplication("cache", "bp-redis", "1.1.0", "acme-prod"),
    ]
    plan = flatten(
        registry,
        "bp-wordpress",
        app_name="marketing-site",
        config=WP,
        existing=existing,
        environment="acme-prod",
    )
    assert plan.names == ["marketing-site-postgres", "marketing-site"]  # no binding: a dedicated one
    candidates = [c.name for c in plan.node("marketing-site-postgres").candidates]
    assert candidates == ["pg-main", "pg-analytics"]  # Org scope, current Environment first, compatible only


def test_external_postgres_skips_the_dependency_and_binds_the_ref(registry: BlueprintRegistry) -> None:
    config = {**WP, "postgres": {"mode": "external", "ref": "pg-main"}}
    plan = flatten(
        registry,
        "bp-wordpress",
        app_name="marketing-site",
        config=config,
        existing=[PG_MAIN],
        environment="acme-prod",
    )
    assert [(n.name, n.new) for n in plan.nodes] == [("pg-main", False), ("marketing-site", True)]
    assert {s.path for s in plan.skipped} == {"db", "cache"}
    site = plan.node("marketing-site")
    assert site.depends_on == ["pg-main"] and site.dependencies == {"db": "pg-main"}
    assert plan.node("pg-main").parents[0].kind == "reference"


def test_external_postgres_requires_a_ref(registry: BlueprintRegistry) -> None:
    with pytest.raises(CatalystError) as err:
        flatten(
            registry,
            "bp-wordpress",
            app_name="marketing-site",
            config={**WP, "postgres": {"mode": "external"}},
        )
    [problem] = err.value.problems
    assert problem.field == "/postgres" and "'ref' is a required property" in problem.message


@pytest.mark.parametrize(
    ("existing", "needle"),
    [
        ([], "'nope', which is not an existing Application in the Organization (existing bp-postgres: none)"),
        (
            [ExistingApplication("nope", "bp-redis", "1.1.0")],
            "which is a bp-redis Application, not bp-postgres",
        ),
        (
            [ExistingApplication("nope", "bp-postgres", "2.0.0")],
            "runs bp-postgres 2.0.0; bp-wordpress needs '^1.4'",
        ),
        (
            [ExistingApplication("nope", "bp-postgres", "1.5.0", "acme-dev")],
            "requires the current Environment",
        ),
    ],
)
def test_external_ref_must_name_an_existing_postgres(
    registry: BlueprintRegistry, existing: list[Any], needle: str
) -> None:
    config = {**WP, "postgres": {"mode": "external", "ref": "nope"}}
    with pytest.raises(CatalystError) as err:
        flatten(
            registry,
            "bp-wordpress",
            app_name="marketing-site",
            config=config,
            existing=existing,
            environment="acme-prod",
        )
    assert needle in str(err.value)
    assert err.value.problems[0].field == "/postgres/ref"


def test_when_over_a_bare_path_adds_the_cache(registry: BlueprintRegistry) -> None:
    plan = flatten(registry, "bp-wordpress", app_name="blog", config={**WP, "cache": {"enabled": True}})
    assert plan.names == ["blog-postgres", "blog-redis", "blog"]
    assert plan.node("blog").dependencies == {"db": "blog-postgres", "cache": "blog-redis"}
    assert plan.node("blog-redis").config["maxMemory"] == "256mb"
    assert plan.node("blog-redis").version == "1.1.0"


def test_version_pin_of_the_root(registry: BlueprintRegistry) -> None:
    plan = flatten(registry, "bp-wordpress", "~1.2", app_name="legacy", config=WP)
    assert plan.version == "1.2.0" and plan.node("legacy").version == "1.2.0"
    assert plan.node("legacy-postgres").config["databases"] == ["legacy"]


# ----------------------------------------------------------------- R-CAT-04 bundle (JOURNEYS N1)


def test_pharmacy_bundle_yields_exactly_five_apps(registry: BlueprintRegistry) -> None:
    plan = flatten(
        registry,
        "bp-bundle-pharmacy",
        app_name="pharmacy",
        config=PHARMACY,
        organization="muscatpharmacy",
        environment="muscatpharmacy-prod",
    )
    assert plan.composite and plan.root is None
    assert sorted(plan.names) == [
        "erpnext",
        "pharmacy-mail",
        "shared-postgres",
        "shared-redis",
        "woocommerce",
    ]
    assert all(n.new for n in plan.nodes)
    assert plan.names[:2] == ["shared-postgres", "shared-redis"]  # backing services first
    assert edges(plan) == {
        "shared-postgres": [],
        "shared-redis": [],
        "erpnext": ["shared-postgres", "shared-redis"],
        "woocommerce": ["shared-postgres", "shared-redis"],
        "pharmacy-mail": ["shared-postgres"],
    }
    roles = {n.name: n.role for n in plan.nodes}
    assert roles == {
        "shared-postgres": "shared",
        "shared-redis": "shared",
        "erpnext": "component",
        "woocommerce": "component",
        "pharmacy-mail": "component",
    }
    assert plan.node("erpnext").dependencies == {"db": "shared-postgres", "queue": "shared-redis"}
    assert plan.node("pharmacy-mail").dependencies == {"store": "shared-postgres"}
    assert plan.warnings == [] and plan.skipped == []


def test_pharmacy_shared_postgres_intersects_ranges_and_merges_requests(registry: BlueprintRegistry) -> None:
    plan = flatten(registry, "bp-bundle-pharmacy", app_name="pharmacy", config=PHARMACY)
    pg = plan.node("shared-postgres")
    assert pg.version == "1.5.0"  # ^1.4 (bundle, erpnext, mail) ∩ ^1.5 (woocommerce)
    assert pg.range == ">=1.5.0 <2.0.0"
    assert pg.config["databases"] == ["erpnext", "woocommerce", "pharmacy-mail"]
    assert pg.config["size"] == "medium" and pg.config["backups"] == {
        "schedule": "daily",
        "retentionDays": 30,
    }
    parents = [(e.parent, e.kind, e.path) for e in pg.parents]
    assert parents == [
        (None, "component", "postgres"),
        ("erpnext", "dependency", "erpnext/db"),
        ("woocommerce", "dependency", "woocommerce/db"),
        ("pharmacy-mail", "dependency", "pharmacy-mail/store"),
    ]
    assert pg.parent_names == ["erpnext", "woocommerce", "pharmacy-mail"]
    redis = plan.node("shared-redis")
    assert redis.version == "1.1.0" and redis.config == {
        "maxMemory": "256mb",
        "persistence": True,
        "evictionPolicy": "noeviction",
    }


def test_pharmacy_children_get_the_bundle_config_templated(registry: BlueprintRegistry) -> None:
    plan = flatten(
        registry,
        "bp-bundle-pharmacy",
        app_name="pharmacy",
        config={**PHARMACY, "businessName": "Muscat Pharmacy", "currency": "OMR"},
    )
    erp = plan.node("erpnext").config
    assert erp["siteName"] == "erp.muscatpharmacy.shop.omantel.com"
    assert erp["company"] == "Muscat Pharmacy" and erp["workers"] == 2
    assert plan.node("pharmacy-mail").config["storage"] == {"backend": "postgres", "size": "20Gi"}
    assert plan.node("woocommerce").config["cache"] == {"enabled": True}


def test_pharmacy_bundle_config_is_validated(registry: BlueprintRegistry) -> None:
    with pytest.raises(CatalystError) as err:
        flatten(registry, "bp-bundle-pharmacy", app_name="pharmacy", config={"domain": "not a host"})
    assert {p.field for p in err.value.problems} == {"/adminEmail", "/domain"}


def test_pharmacy_shared_postgres_bound_to_an_existing_app(registry: BlueprintRegistry) -> None:
    plan = flatten(
        registry,
        "bp-bundle-pharmacy",
        app_name="pharmacy",
        config=PHARMACY,
        existing=[PG_MAIN],
        bindings={"postgres": "pg-main"},
    )
    assert sorted(n.name for n in plan.new_apps) == [
        "erpnext",
        "pharmacy-mail",
        "shared-redis",
        "woocommerce",
    ]
    assert plan.node("woocommerce").depends_on == ["pg-main", "shared-redis"]
    too_old = ExistingApplication("pg-main", "bp-postgres", "1.4.2")
    with pytest.raises(CatalystError) as err:
        flatten(
            registry,
            "bp-bundle-pharmacy",
            app_name="pharmacy",
            config=PHARMACY,
            existing=[too_old],
            bindings={"postgres": "pg-main"},
        )
    assert err.value.code == "Unsatisfiable"
    assert "woocommerce (bp-woocommerce) dependency 'woocommerce/db' needs bp-postgres '^1.5'" in str(
        err.value
    )


def test_bundle_with_disjoint_ranges_names_both_parents_d07() -> None:
    with pytest.raises(CatalystError) as err:
        flatten(broken("bundle-conflict"), "bp-bundle-conflict", app_name="x")
    text = str(err.value)
    assert err.value.code == "Unsatisfiable" and "(D-07)" in text
    assert "old (bp-old-client) ('^1')" in text and "new (bp-new-client) ('^2')" in text


# ----------------------------------------------------------------- errors


def test_cycle_is_printed() -> None:
    with pytest.raises(CatalystError) as err:
        flatten(broken("cycle"), "bp-cycle-a", app_name="loop")
    assert err.value.code == "DependencyCycle"
    assert "dependency cycle: bp-cycle-a -> bp-cycle-b -> bp-cycle-c -> bp-cycle-a" in str(err.value)
    assert "'cycle-b/cycle-c/back'" in str(err.value)


def test_unknown_dependency_names_blueprint_and_path() -> None:
    with pytest.raises(CatalystError) as err:
        flatten(broken("unknown-dependency"), "bp-orphan", app_name="orphan")
    assert err.value.code == "NotFound"
    assert "orphan (bp-orphan) dependency 'mq': unknown Blueprint 'bp-message-queue'" in str(err.value)


def test_unsatisfiable_range_lists_available_versions() -> None:
    with pytest.raises(CatalystError) as err:
        flatten(broken("unsatisfiable"), "bp-needs-new-lib", app_name="app")
    assert err.value.code == "Unsatisfiable"
    assert "app (bp-needs-new-lib) dependency 'lib': bp-lib: no version satisfies '^3'" in str(err.value)
    assert "available versions: 1.0.0, 2.1.0" in str(err.value)


def test_unknown_root(registry: BlueprintRegistry) -> None:
    with pytest.raises(CatalystError, match="unknown Blueprint 'bp-wordpres'; did you mean bp-wordpress"):
        flatten(registry, "bp-wordpres", app_name="x", config=WP)
    with pytest.raises(CatalystError, match=r"no version satisfies '\^9'"):
        flatten(registry, "bp-wordpress", "^9", app_name="x", config=WP)


@pytest.mark.parametrize(
    ("bindings", "existing", "needle", "code"),
    [
        ({"db": "ghost"}, [], "bound to 'ghost', which is not an existing Application", "NotFound"),
        (
            {"db": "cache"},
            [ExistingApplication("cache", "bp-redis", "1.1.0")],
            "which is a bp-redis Application, not bp-postgres",
            "Conflict",
        ),
        (
            {"db": "old"},
            [ExistingApplication("old", "bp-postgres", "2.0.0")],
            "runs bp-postgres 2.0.0; the dependency needs '^1.4' (>=1.4.0 <2.0.0)",
            "Unsatisfiable",
        ),
        (
            {"dbb": "pg-main"},
            [PG_MAIN],
            "binding 'dbb' matches no dependency of this install (dependency paths: cache, db)",
            "Invalid",
        ),
    ],
)
def test_binding_errors(
    registry: BlueprintRegistry, bindings: dict[str, str], existing: list[Any], needle: str, code: str
) -> None:
    with pytest.raises(CatalystError) as err:
        flatten(
            registry,
            "bp-wordpress",
            app_name="marketing-site",
            config=WP,
            existing=existing,
            bindings=bindings,
        )
    assert needle in str(err.value)
    assert (
        "marketing-site (bp-wordpress) dependency 'db' (bp-postgres)" in str(err.value) or code == "Invalid"
    )
    assert err.value.code == code


def test_binding_a_skipped_dependency_is_only_a_warning(registry: BlueprintRegistry) -> None:
    plan = flatten(
        registry,
        "bp-wordpress",
        app_name="marketing-site",
        config=WP,
        existing=[PG_MAIN],
        bindings={"db": "pg-main", "cache": "pg-main"},
    )
    assert any("binding 'cache' was not used" in w for w in plan.warnings)


def test_config_failures_r_cs_04_are_reported_together(registry: BlueprintRegistry) -> None:
    with pytest.raises(CatalystError) as err:
        flatten(
            registry,
            "bp-wordpress",
            app_name="marketing-site",
            config={"domain": "marketing.acme.io", "replicas": 0},
        )
    assert err.value.code == "Invalid"
    assert [(p.field, p.object) for p in err.value.problems] == [
        ("/adminEmail", "Application/marketing-site"),
        ("/replicas", "Application/marketing-site"),
    ]


def test_dependency_config_is_validated_too(tmp_path: Any) -> None:
    reg = registry_from(f"""
apiVersion: catalyst.openova.io/v1alpha1
kind: Blueprint
metadata: {{name: bp-store}}
spec:
  version: 1.0.0
  card: {card("Store")}
  configSchema: {{type: object, properties: {{size: {{type: string, enum: [s, m]}}}}}}
---
apiVersion: catalyst.openova.io/v1alpha1
kind: Blueprint
metadata: {{name: bp-app}}
spec:
  version: 1.0.0
  card: {card("App")}
  depends: [{{blueprint: bp-store, alias: store, values: {{size: xl}}}}]
""")
    with pytest.raises(CatalystError) as err:
        flatten(reg, "bp-app", app_name="app")
    assert str(err.value).startswith("Application/app-store at /size:")
    plan = flatten(reg, "bp-app", app_name="app", validate=False)
    assert plan.node("app-store").config == {"size": "xl"}


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("Marketing", "not a DNS-1123 label"),
        ("shared-blueprints", "reserved"),
        ("a" * 64, "at most 63"),
        ("-x", "not a DNS-1123 label"),
    ],
)
def test_root_name_rule_d02(registry: BlueprintRegistry, name: str, needle: str) -> None:
    with pytest.raises(CatalystError, match=needle):
        flatten(registry, "bp-wordpress", app_name=name, config=WP)


def test_generated_names_are_checked(registry: BlueprintRegistry) -> None:
    assert app_name_problem("a" * 55) is None
    with pytest.raises(CatalystError, match="default name for dependency 'db' of bp-postgres"):
        flatten(registry, "bp-wordpress", app_name="a" * 55, config=WP)


def test_name_clashes_with_existing_apps(registry: BlueprintRegistry) -> None:
    with pytest.raises(CatalystError, match="'marketing-site' already exists in the Organization"):
        flatten(
            registry,
            "bp-wordpress",
            app_name="marketing-site",
            config=WP,
            existing=[ExistingApplication("marketing-site", "bp-wordpress", "1.3.0")],
        )
    with pytest.raises(CatalystError) as err:
        flatten(
            registry,
            "bp-wordpress",
            app_name="marketing-site",
            config=WP,
            existing=[ExistingApplication("marketing-site-postgres", "bp-postgres", "1.5.0")],
        )
    assert err.value.code == "Conflict" and "bind dependency 'db' to it" in str(err.value)
    with pytest.raises(CatalystError, match="shared-redis' already exists"):
        flatten(
            registry,
            "bp-bundle-pharmacy",
            app_name="pharmacy",
            config=PHARMACY,
            existing=[ExistingApplication("shared-redis", "bp-redis", "1.1.0")],
        )


def test_private_blueprints_only_for_their_org() -> None:
    from .conftest import DATA

    reg = BlueprintRegistry.from_directory(DATA / "blueprints-visibility")
    plan = flatten(reg, "bp-pharmacy-pos", app_name="pos", organization="muscatpharmacy")
    assert plan.names == ["pos-infra-agent", "pos"]
    with pytest.raises(CatalystError, match="unknown Blueprint 'bp-pharmacy-pos'"):
        flatten(reg, "bp-pharmacy-pos", app_name="pos", organization="acme")


def test_existing_apps_accept_mappings_and_prefer_the_current_environment(
    registry: BlueprintRegistry,
) -> None:
    existing = [
        {
            "name": "pg-main",
            "blueprint": {"name": "bp-postgres", "version": "2.0.0"},
            "environment": "acme-dev",
        },
        {"name": "pg-main", "blueprint": "bp-postgres", "version": "1.5.0", "environment": "acme-prod"},
    ]
    plan = flatten(
        registry,
        "bp-wordpress",
        app_name="marketing-site",
        config=WP,
        existing=existing,
        bindings={"db": "pg-main"},
        environment="acme-prod",
    )
    assert plan.node("pg-main").version == "1.5.0"


def test_plan_serializes(registry: BlueprintRegistry) -> None:
    plan = flatten(registry, "bp-bundle-pharmacy", app_name="pharmacy", config=PHARMACY)
    data = json.loads(json.dumps(plan.as_dict()))
    assert data["composite"] is True and len(data["nodes"]) == 5
    assert "definition" not in data["nodes"][0]


# ----------------------------------------------------------------- shared values and nesting


SHARED = """
apiVersion: catalyst.openova.io/v1alpha1
kind: Blueprint
metadata: {{name: bp-kv}}
spec:
  version: 1.0.0
  card: {kv}
  configSchema: {{type: object, properties: {{mode: {{type: string}}, keys: {{type: array, default: []}}}}}}
---
apiVersion: catalyst.openova.io/v1alpha1
kind: Blueprint
metadata: {{name: bp-left}}
spec:
  version: 1.0.0
  card: {left}
  depends:
    - {{blueprint: bp-kv, alias: kv, values: {{mode: "{left_mode}", keys: ["{{{{ .application.name }}}}"]}}}}
---
apiVersion: catalyst.openova.io/v1alpha1
kind: Blueprint
metadata: {{name: bp-right}}
spec:
  version: 1.0.0
  card: {right}
  depends:
    - {{blueprint: bp-kv, alias: kv, values: {{mode: "{right_mode}", keys: ["{{{{ .application.name }}}}"]}}}}
---
apiVersion: catalyst.openova.io/v1alpha1
kind: Blueprint
metadata: {{name: bp-duo}}
spec:
  version: 1.0.0
  card: {{title: Duo, summary: Two apps and a kv., category: composite}}
  depends:
    - {{blueprint: bp-left, alias: left}}
    - {{blueprint: bp-right, alias: right}}
    - {{blueprint: bp-kv, alias: kv, values: {bundle_values}}}
"""


def shared_registry(left: str, right: str, bundle_values: str = "{}") -> BlueprintRegistry:
    return registry_from(
        SHARED.format(
            kv=card("KV"),
            left=card("Left"),
            right=card("Right"),
            left_mode=left,
            right_mode=right,
            bundle_values=bundle_values,
        )
    )


def test_shared_values_union_lists() -> None:
    plan = flatten(shared_registry("fast", "fast"), "bp-duo", app_name="duo")
    assert plan.node("shared-kv").config == {"mode": "fast", "keys": ["left", "right"]}


def test_shared_scalar_conflict_between_children_fails_naming_both() -> None:
    with pytest.raises(CatalystError) as err:
        flatten(shared_registry("fast", "safe"), "bp-duo", app_name="duo")
    assert (
        "left (bp-left) and right (bp-right) ask the shared 'shared-kv' for conflicting values at mode"
        in str(err.value)
    )


def test_the_bundle_value_wins_with_a_warning() -> None:
    plan = flatten(shared_registry("fast", "safe", "{mode: balanced}"), "bp-duo", app_name="duo")
    assert plan.node("shared-kv").config["mode"] == "balanced"
    assert len(plan.warnings) == 2 and all(
        "the bundle sets 'balanced', which is kept" in w for w in plan.warnings
    )


def test_nested_bundle_shares_the_outer_service() -> None:
    reg = registry_from(f"""
apiVersion: catalyst.openova.io/v1alpha1
kind: Blueprint
metadata: {{name: bp-cache}}
spec: {{version: 1.2.0, card: {card("Cache")}}}
---
apiVersion: catalyst.openova.io/v1alpha1
kind: Blueprint
metadata: {{name: bp-worker}}
spec:
  version: 1.0.0
  card: {card("Worker")}
  depends: [{{blueprint: bp-cache, version: ^1, alias: cache}}]
---
apiVersion: catalyst.openova.io/v1alpha1
kind: Blueprint
metadata: {{name: bp-inner}}
spec:
  version: 1.0.0
  card: {{title: Inner, summary: Inner bundle., category: composite}}
  depends: [{{blueprint: bp-worker, alias: jobs}}]
---
apiVersion: catalyst.openova.io/v1alpha1
kind: Blueprint
metadata: {{name: bp-outer}}
spec:
  version: 1.0.0
  card: {{title: Outer, summary: Outer bundle., category: composite}}
  depends:
    - {{blueprint: bp-inner, alias: suite}}
    - {{blueprint: bp-cache, version: ^1.1, alias: cache}}
""")
    plan = flatten(reg, "bp-outer", app_name="outer")
    assert plan.names == ["shared-cache", "jobs"]
    assert plan.node("jobs").depends_on == ["shared-cache"] and plan.node("jobs").path == "suite/jobs"


def test_a_bundle_is_not_a_dependency_of_an_app() -> None:
    reg = registry_from(f"""
apiVersion: catalyst.openova.io/v1alpha1
kind: Blueprint
metadata: {{name: bp-leaf}}
spec: {{version: 1.0.0, card: {card("Leaf")}}}
---
apiVersion: catalyst.openova.io/v1alpha1
kind: Blueprint
metadata: {{name: bp-pack}}
spec:
  version: 1.0.0
  card: {{title: Pack, summary: A bundle., category: composite}}
  depends: [{{blueprint: bp-leaf}}]
---
apiVersion: catalyst.openova.io/v1alpha1
kind: Blueprint
metadata: {{name: bp-user}}
spec:
  version: 1.0.0
  card: {card("User")}
  depends: [{{blueprint: bp-pack}}]
""")
    with pytest.raises(CatalystError, match="bp-pack is a composite Blueprint"):
        flatten(reg, "bp-user", app_name="user")
    plan = flatten(reg, "bp-pack", app_name="p")
    assert plan.names == ["leaf"]  # a component without alias is named after its Blueprint


# ----------------------------------------------------------------- fixture manifests render from a plan


def _manifest_context(node: Any) -> dict[str, Any]:
    """The values.yaml shape the provisioning service writes (application, config, dependencies)."""
    deps = {
        k: {"application": v, "connectionSecret": f"{v}-connection"} for k, v in node.dependencies.items()
    }
    application = {"name": node.name, "blueprint": node.blueprint, "version": node.version}
    return {
        "values": {"application": application, "config": node.config, "dependencies": deps},
        "application": application,
    }


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


@pytest.mark.parametrize(
    ("blueprint", "config", "existing"),
    [
        ("bp-wordpress", WP, []),
        ("bp-wordpress", {**WP, "postgres": {"mode": "external", "ref": "pg-main"}}, [PG_MAIN]),
        ("bp-wordpress", {**WP, "cache": {"enabled": True}}, []),
        ("bp-bundle-pharmacy", PHARMACY, []),
    ],
)
def test_fixture_manifests_render_for_every_new_app(
    registry: BlueprintRegistry, blueprint: str, config: dict[str, Any], existing: list[Any]
) -> None:
    from catalyst_sim.control.catalog.expressions import render_template

    plan = flatten(registry, blueprint, app_name="site", config=config, existing=existing)
    for node in plan.new_apps:
        bp = node.definition
        assert bp is not None and bp.spec.manifests is not None
        ctx = _manifest_context(node)
        objects = render_template(bp.spec.manifests.resources, ctx)
        secrets = render_template([s.path for s in bp.spec.secrets], ctx)
        assert not [s for s in _strings([objects, secrets]) if "{{" in s or "}}" in s]
        kinds = [o["kind"] for o in objects]
        assert "Service" in kinds and ({"Deployment", "StatefulSet"} & set(kinds))
        for obj in objects:
            labels = obj["metadata"]["labels"]
            assert labels["app.kubernetes.io/name"] == node.name
            assert labels["openova.io/blueprint"] == node.blueprint
            assert labels["openova.io/blueprint-version"] == node.version
            if obj["kind"] in {"Deployment", "StatefulSet"}:
                assert isinstance(obj["spec"]["replicas"], int)
                images = [c["image"] for c in obj["spec"]["template"]["spec"]["containers"]]
                assert all(i.startswith("harbor.local/library/") for i in images)
