"""The engine's life: bootstrap, one App to Ready on virtual time, events, removal, clean stop."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from catalyst_sim.backends.embedded.forge import EmbeddedForge
from catalyst_sim.clock import VirtualClock
from catalyst_sim.control.catalog import BlueprintRegistry
from catalyst_sim.control.gitops import GitOpsEngine, advance, advance_until, advance_until_blocking

from .conftest import ENV_TYPE, SOVEREIGN, Events, Org, Ready, View


async def test_bootstrap_registers_flux_and_eso_types(engine: GitOpsEngine, view: View) -> None:
    """R-ENVC-01/03: flux-system, the Flux CRDs (with status subresources) and ESO's ExternalSecret."""
    assert engine.ready
    assert view.core.read_namespace("flux-system").metadata.labels["app.kubernetes.io/part-of"] == "flux"
    from kubernetes import client

    crds = client.ApiextensionsV1Api(view.core.api_client)
    names = {c.metadata.name: c for c in crds.list_custom_resource_definition().items}
    for name in ("gitrepositories.source.toolkit.fluxcd.io", "kustomizations.kustomize.toolkit.fluxcd.io",
                 "externalsecrets.external-secrets.io"):
        assert name in names
    ks_crd = names["kustomizations.kustomize.toolkit.fluxcd.io"]
    assert [v.name for v in ks_crd.spec.versions] == ["v1"] and ks_crd.spec.versions[0].subresources.status == {}
    assert [v.name for v in names["externalsecrets.external-secrets.io"].spec.versions] == ["v1beta1"]


async def test_redis_app_becomes_ready_only_as_virtual_time_passes(
    engine: GitOpsEngine, org: Org, view: View, until: Ready, events: Events
) -> None:
    org.install("bp-redis", "cache")
    await engine.add_application("cache", f"{org.name}/cache", "main")
    await engine.wait_idle()

    source = view.gitrepo("cache")
    assert source["spec"]["url"].endswith(f"/{org.name}/cache.git") and source["spec"]["ref"] == {"branch": "main"}
    assert source["spec"]["secretRef"]["name"]
    revision = source["status"]["artifact"]["revision"]
    assert revision.startswith("main@sha1:") and len(revision) == len("main@sha1:") + 40
    assert source["status"]["artifact"]["digest"].startswith("sha256:")
    assert source["status"]["conditions"][0]["reason"] == "Succeeded"

    ks = view.ks("cache")
    assert ks["spec"]["targetNamespace"] == "cache" and ks["spec"]["prune"] is True
    substitute = ks["spec"]["postBuild"]["substitute"]
    assert substitute["ENV_TYPE"] == ENV_TYPE and substitute["ENVIRONMENT"] == f"{org.name}-prod"
    assert substitute["ORGANIZATION"] == org.name and substitute["VCLUSTER"] == engine.identity.vcluster
    assert ks["metadata"]["labels"]["openova.io/blueprint"] == "bp-redis"
    # Applied, but pods need (virtual) time: progressing, naming what it waits for.
    ready = view.condition("cache")
    assert ready["status"] == "Unknown" and ready["reason"] == "Progressing"
    assert "StatefulSet/cache/cache" in ready["message"]
    assert view.condition("cache", "Reconciling")["status"] == "True"
    assert ks["status"]["lastAttemptedRevision"] == revision and "lastAppliedRevision" not in ks["status"]

    await until(lambda: view.ready("cache"))
    ks = view.ks("cache")
    assert ks["status"]["lastAppliedRevision"] == revision
    assert view.condition("cache")["reason"] == "ReconciliationSucceeded"
    assert view.condition("cache")["message"] == f"Applied revision: {revision}"
    assert not view.condition("cache", "Reconciling")
    assert ks["status"]["observedGeneration"] == ks["metadata"]["generation"]
    ids = [e["id"] for e in ks["status"]["inventory"]["entries"]]
    assert ids == sorted(ids)
    assert {"_cache__Namespace", "cache_cache__Service", "cache_cache_apps_StatefulSet",
            "cache_cache-credentials_external-secrets.io_ExternalSecret"} == set(ids)

    sts = view.apps.read_namespaced_stateful_set("cache", "cache")
    assert sts.status.ready_replicas == 1
    labels = sts.metadata.labels
    assert labels["openova.io/organization"] == org.name and labels["openova.io/sovereign"] == SOVEREIGN
    assert labels["openova.io/vcluster"] == engine.identity.vcluster
    assert labels["openova.io/host-cluster"] == "hz-fsn-rtz-prod"
    assert labels["openova.io/environment"] == f"{org.name}-prod"
    assert labels["openova.io/blueprint-version"] == "1.1.0"
    assert labels["kustomize.toolkit.fluxcd.io/name"] == "cache"
    assert labels["app.kubernetes.io/instance"] == "cache"
    assert sts.spec.template.metadata.labels["openova.io/environment"] == f"{org.name}-prod"
    external = view.custom.get_namespaced_custom_object("external-secrets.io", "v1beta1", "cache", "externalsecrets",
                                                        "cache-credentials")
    assert external["spec"]["data"][0]["remoteRef"]["key"] == f"org/{org.name}/env/{ENV_TYPE}/cache/credentials"
    assert external["metadata"]["labels"]["openova.io/environment"] == f"{org.name}-prod"

    # R-FLUX-04: CloudEvents-shaped outcomes.
    reconciled = [e for e in events if e["type"] == "io.fluxcd.kustomize.reconciled"]
    assert reconciled and reconciled[-1]["subject"] == "cache"
    event = reconciled[-1]
    assert event["specversion"] == "1.0" and event["environment"] == f"{org.name}-prod"
    assert event["data"]["revision"] == revision and event["data"]["ready"] == "True"
    assert event["data"]["reason"] == "ReconciliationSucceeded" and event["time"].endswith("Z")
    assert [e["type"] for e in events].index("io.fluxcd.kustomize.progressing") < events.index(event)
    assert len({e["id"] for e in events}) == len(events)


async def test_add_application_is_idempotent_and_remove_prunes_everything(
    engine: GitOpsEngine, org: Org, view: View, until: Ready, events: Events
) -> None:
    org.install("bp-redis", "cache")
    await engine.add_application("cache", f"{org.name}/cache", "main")
    await until(lambda: view.ready("cache"))
    generation = view.ks("cache")["metadata"]["generation"]
    await engine.add_application("cache", f"{org.name}/cache", "main")
    await engine.wait_idle()
    assert view.ready("cache") and view.ks("cache")["metadata"]["generation"] == generation
    assert engine.applications == {"cache": (f"{org.name}/cache", "main")}

    await engine.remove_application("cache")
    await engine.wait_idle()
    assert not view.exists("StatefulSet", "cache", "cache") and not view.exists("Service", "cache", "cache")
    from kubernetes import client

    with pytest.raises(client.ApiException) as gone:
        view.ks("cache")
    assert gone.value.status == 404
    assert engine.applications == {}
    assert events[-1]["type"] == "io.fluxcd.kustomize.deleted"


async def test_request_reconcile_is_thread_safe_and_settles(engine: GitOpsEngine, org: Org, view: View,
                                                            until: Ready, events: Events) -> None:
    org.install("bp-redis", "cache")
    await engine.add_application("cache", f"{org.name}/cache", "main")
    await until(lambda: view.ready("cache"))
    before = len([e for e in events if e["type"] == "io.fluxcd.kustomize.reconciled"])
    worker = threading.Thread(target=engine.request_reconcile)  # a webhook handler on another thread
    worker.start()
    worker.join()
    assert not engine.settled()
    await engine.wait_idle()
    assert engine.settled()
    assert len([e for e in events if e["type"] == "io.fluxcd.kustomize.reconciled"]) == before + 1


async def test_stop_leaves_no_tasks_threads_or_timers(
    cluster: object, kubeconfig: Path, forge: EmbeddedForge, catalog: BlueprintRegistry, clock: VirtualClock,
    org: Org, tmp_path: Path, view: View
) -> None:
    engine = GitOpsEngine(
        vcluster="acme", organization=org.name, environment=f"{org.name}-prod", env_type=ENV_TYPE,
        kubeconfig=kubeconfig, gitea_url=forge.url, gitea_token=forge.token, catalog=catalog, clock=clock,
        workdir=tmp_path / "engine",
    )
    await engine.start()
    org.install("bp-redis", "cache")
    await engine.add_application("cache", f"{org.name}/cache", "main")
    await advance(clock, [engine], 3)
    assert any(t.name.startswith(engine.thread_name) for t in threading.enumerate())
    await engine.stop()
    assert not [t for t in threading.enumerate() if t.name.startswith(engine.thread_name)]
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("gitops:")]
    assert not engine._timers and engine.settled()
    status = view.ks("cache")["status"]
    clock.advance(600)  # timers that were pending must not fire into a stopped engine
    await asyncio.sleep(0.01)
    assert view.ks("cache")["status"] == status
    with pytest.raises(RuntimeError):
        await engine.add_application("other", f"{org.name}/other", "main")


async def test_a_missing_repo_is_a_git_failure_not_a_crash(engine: GitOpsEngine, org: Org, view: View,
                                                           clock: VirtualClock, events: Events) -> None:
    await engine.add_application("ghost", f"{org.name}/ghost", "main")
    await engine.wait_idle()
    ready = next(c for c in view.gitrepo("ghost")["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] in ("GitOperationFailed", "AuthenticationFailed")
    assert engine._gitea_token not in ready["message"]
    assert view.condition("ghost")["reason"] == "ArtifactFailed"
    assert any(e["type"] == "io.fluxcd.source.failed" for e in events)
    # Once the repo exists, the next source interval picks it up.
    org.install("bp-redis", "ghost")
    elapsed = await advance_until(clock, [engine], lambda: view.ready("ghost"), step=5, limit=300)
    assert elapsed >= 60  # not before the source's interval came round


async def test_an_engine_on_its_own_thread_is_driven_with_the_blocking_settle_protocol(
    kubeconfig: Path, forge: EmbeddedForge, catalog: BlueprintRegistry, clock: VirtualClock, org: Org,
    tmp_path: Path, view: View
) -> None:
    """The control plane runs on a server thread's loop; pytest-bdd steps drive time from another."""
    loop = asyncio.new_event_loop()
    server = threading.Thread(target=loop.run_forever, name="control-plane-loop", daemon=True)
    server.start()

    def on_loop(coro: object) -> object:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(30)  # type: ignore[arg-type]

    engine = GitOpsEngine(
        vcluster=f"hz-fsn-rtz-prod-{org.name}", organization=org.name, environment=f"{org.name}-prod",
        env_type=ENV_TYPE, kubeconfig=kubeconfig, gitea_url=forge.url, gitea_token=forge.token, catalog=catalog,
        clock=clock, workdir=tmp_path / "engine",
    )

    def drive() -> float:
        on_loop(engine.start())
        org.install("bp-redis", "cache")
        on_loop(engine.add_application("cache", f"{org.name}/cache", "main"))
        return advance_until_blocking(clock, [engine], lambda: view.ready("cache"), limit=120)

    try:
        elapsed = await asyncio.to_thread(drive)  # this test's own loop stays free, like a bdd step's thread
        assert 0 < elapsed <= 120 and engine.settled()
        with pytest.raises(RuntimeError):
            on_loop(_wait_settled_on_loop(engine))
    finally:
        on_loop(engine.stop())
        loop.call_soon_threadsafe(loop.stop)
        server.join(5)
        loop.close()


async def _wait_settled_on_loop(engine: GitOpsEngine) -> bool:
    return engine.wait_settled(1.0)  # must refuse: it would block the loop the engine runs on
