"""dependsOn (R-FLUX-03, R-PROV-01(6,7)): dependents wait — pending, not failed — and cycles stall."""

from __future__ import annotations

import time

from catalyst_sim.clock import VirtualClock
from catalyst_sim.control.gitops import GitOpsEngine, advance_until
from catalyst_sim.control.provisioning.manifests import AppManifestInput

from .conftest import SOVEREIGN, Events, Org, Ready, View


async def test_dependent_is_pending_until_its_dependency_is_ready_then_applies(
    engine: GitOpsEngine, org: Org, view: View, clock: VirtualClock, events: Events
) -> None:
    assert org.install("bp-wordpress", "blog", {"domain": "blog.acme.io", "adminEmail": "web@acme.io"}) == [
        "blog-postgres", "blog"]
    # The dependent first, so it meets a dependency that does not even exist yet.
    await engine.add_application("blog", f"{org.name}/blog", "main")
    await engine.wait_idle()
    ready = view.condition("blog")
    assert (ready["status"], ready["reason"]) == ("False", "DependencyNotReady")
    assert "blog-postgres" in ready["message"]
    assert view.ks("blog")["spec"]["dependsOn"] == [{"name": "blog-postgres"}]

    await engine.add_application("blog-postgres", f"{org.name}/blog-postgres", "main")
    await engine.wait_idle()
    ready = view.condition("blog")
    assert ready == {**ready, "status": "False", "reason": "DependencyNotReady",
                     "message": "dependency 'flux-system/blog-postgres' is not ready"}
    assert view.condition("blog", "Reconciling")["status"] == "True"  # pending is in progress, not failed
    assert not view.condition("blog", "Stalled")
    assert not view.exists("Deployment", "blog", "blog")

    order: list[str] = []

    def observe() -> bool:
        postgres_ready, blog_exists = view.ready("blog-postgres"), view.exists("Deployment", "blog", "blog")
        assert postgres_ready or not blog_exists, "blog was applied before blog-postgres was Ready"
        for name, seen in (("blog-postgres", postgres_ready), ("blog-applied", blog_exists)):
            if seen and name not in order:
                order.append(name)
        return view.ready("blog")

    await advance_until(clock, [engine], observe, limit=300)
    assert order == ["blog-postgres", "blog-applied"]
    deployment = view.apps.read_namespaced_deployment("blog", "blog")
    assert deployment.status.available_replicas == 2
    env = {e.name: e.value for e in deployment.spec.template.spec.containers[0].env}
    assert env["WORDPRESS_DB_HOST"] == "blog-postgres.blog-postgres.svc"
    pending = [e for e in events if e["type"] == "io.fluxcd.kustomize.pending" and e["subject"] == "blog"]
    assert pending and pending[-1]["data"]["reason"] == "DependencyNotReady"


async def test_a_depends_on_cycle_stalls_naming_the_cycle(engine: GitOpsEngine, org: Org, view: View,
                                                          until: Ready, events: Events) -> None:
    definition = org.catalog.get("bp-redis", "1.1.0")
    for app, dep in (("alpha", "beta"), ("beta", "alpha")):
        org.publish(AppManifestInput(
            sovereign=SOVEREIGN, organization=org.name, app=app, blueprint="bp-redis", version="1.1.0",
            config={"maxMemory": "64mb", "evictionPolicy": "allkeys-lru"},
            config_schema=definition.spec.configSchema or {}, depends_on=(dep,)))
        await engine.add_application(app, f"{org.name}/{app}", "main")
    await engine.wait_idle()
    for app, cycle in (("alpha", "alpha -> beta -> alpha"), ("beta", "beta -> alpha -> beta")):
        stalled = view.condition(app, "Stalled")
        assert stalled["status"] == "True" and stalled["reason"] == "DependencyCycle"
        assert cycle in stalled["message"]
        assert view.condition(app)["status"] == "False"
    assert not view.exists("StatefulSet", "alpha", "alpha")
    assert any(e["type"] == "io.fluxcd.kustomize.stalled" and e["subject"] == "alpha" for e in events)


async def test_pharmacy_bundle_reconciles_in_dependency_order(engine: GitOpsEngine, org: Org, view: View,
                                                              clock: VirtualClock) -> None:
    """The bundle-sized case (5 Apps, two shared backing services); numbers are printed, not asserted."""
    apps = org.install("bp-bundle-pharmacy", "pharmacy",
                       {"domain": "muscatpharmacy.shop.example.com", "adminEmail": "ahmed@example.com"})
    assert sorted(apps) == ["erpnext", "pharmacy-mail", "shared-postgres", "shared-redis", "woocommerce"]
    started_wall, started_virtual = time.perf_counter(), clock.now()
    for app in reversed(apps):  # dependents first: ordering must come from dependsOn, not from us
        await engine.add_application(app, f"{org.name}/{app}", "main")
    ready_at: dict[str, float] = {}

    def all_ready() -> bool:
        for app in apps:
            if app not in ready_at and view.ready(app):
                ready_at[app] = (clock.now() - started_virtual).total_seconds()
        return len(ready_at) == len(apps)

    await advance_until(clock, [engine], all_ready, limit=600)
    wall = time.perf_counter() - started_wall
    for dependent in ("erpnext", "woocommerce", "pharmacy-mail"):
        assert ready_at[dependent] > ready_at["shared-postgres"]
    assert ready_at["erpnext"] > ready_at["shared-redis"]
    print(f"\npharmacy bundle: 5 Apps Ready after {max(ready_at.values()):.0f}s virtual, {wall:.2f}s wall; "
          f"per App (virtual s): {dict(sorted(ready_at.items(), key=lambda kv: kv[1]))}")
