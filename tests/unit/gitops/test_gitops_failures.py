"""What goes wrong, and how it reads: failed health checks name the object and the kubelet's reason;
terminal build errors stall one App without holding up the others."""

from __future__ import annotations

import yaml

from catalyst_sim.backends.embedded.kube import Cluster
from catalyst_sim.clock import VirtualClock
from catalyst_sim.control.gitops import GitOpsEngine, advance

from .conftest import Events, Org, Ready, View


async def test_an_image_that_cannot_be_pulled_fails_the_health_check_naming_the_reason(
    engine: GitOpsEngine, org: Org, view: View, cluster: Cluster, clock: VirtualClock, until: Ready,
    events: Events
) -> None:
    cluster.inject_image_pull_failure(lambda image: "/redis:" in image)
    org.install("bp-redis", "cache")
    await engine.add_application("cache", f"{org.name}/cache", "main")
    await advance(clock, [engine], 20)
    ready = view.condition("cache")
    assert (ready["status"], ready["reason"]) == ("Unknown", "Progressing")  # within the timeout: still hoping
    assert "StatefulSet/cache/cache" in ready["message"] and "pod cache-0" in ready["message"]
    assert "ImagePullBackOff" in ready["message"] or "ErrImagePull" in ready["message"]

    await until(lambda: view.condition("cache")["status"] == "False", limit=120)
    ready = view.condition("cache")
    assert ready["reason"] == "HealthCheckFailed"
    assert ready["message"].startswith("health check failed after 1m0s: timeout waiting for: [StatefulSet/cache/cache")
    assert "ImagePullBackOff" in ready["message"] and "harbor.local/library/redis:7.4" in ready["message"]
    assert view.condition("cache", "Healthy")["status"] == "False"
    assert not view.condition("cache", "Stalled")  # the registry may come back: retried, not stalled
    status = view.ks("cache")["status"]
    assert "lastAppliedRevision" not in status and status["lastAttemptedRevision"].startswith("main@sha1:")
    failed = [e for e in events if e["type"] == "io.fluxcd.kustomize.failed"]
    assert failed and failed[-1]["data"]["reason"] == "HealthCheckFailed"

    # The image becomes pullable again: the retry at the interval (and the kubelet's back-off) heal it.
    cluster.inject_image_pull_failure(lambda image: False)
    await until(lambda: view.ready("cache"), limit=400, step=5)


def broken_variants(org: Org) -> dict[str, tuple[dict[str, str | None], str, str]]:
    """App -> (files to commit over a healthy bp-redis repo, expected reason, text in the message)."""
    files = org.apps["healthy"]

    def edit(path: str, change: object) -> str:
        doc = yaml.safe_load(files[path])
        change(doc)  # type: ignore[operator]
        return yaml.safe_dump(doc, sort_keys=False)

    def drop_max_memory(doc: dict) -> None:
        doc["config"].pop("maxMemory")

    def pin_unknown(doc: dict) -> None:
        doc["metadata"]["labels"]["openova.io/blueprint-version"] = "9.9.9"

    unknown_kind = "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: x\nspec: {}\n"
    return {
        "malformed": ({"values.yaml": "config: [unclosed\n  maxMemory: 1gb\n"}, "BuildFailed", "values.yaml"),
        "untemplated": ({"values.yaml": edit("values.yaml", drop_max_memory)}, "BuildFailed", "maxMemory"),
        "unpinned": ({"kustomization.yaml": edit("kustomization.yaml", pin_unknown)}, "BuildFailed", "9.9.9"),
        "unserved": ({"secrets/monitor.yaml": unknown_kind}, "BuildFailed", 'no matches for kind "ServiceMonitor"'),
    }


async def test_terminal_build_errors_stall_one_app_while_another_becomes_ready(
    engine: GitOpsEngine, org: Org, view: View, until: Ready, events: Events
) -> None:
    org.install("bp-redis", "healthy")
    variants = broken_variants(org)
    for app, (changes, _, _) in variants.items():
        org.install("bp-redis", app)
        org.commit(app, {path: text.replace("healthy", app) if text else None for path, text in changes.items()})
    for app in [*variants, "healthy"]:
        await engine.add_application(app, f"{org.name}/{app}", "main")
    await until(lambda: view.ready("healthy"))
    for app, (_, reason, text) in variants.items():
        stalled, ready = view.condition(app, "Stalled"), view.condition(app)
        assert stalled.get("status") == "True", (app, view.ks(app)["status"])
        assert stalled["reason"] == reason and ready["reason"] == reason and ready["status"] == "False"
        assert text in ready["message"], (app, ready["message"])
        assert not view.exists("StatefulSet", app, app), f"{app} was (half-)applied"
        assert view.ks(app)["status"]["lastAttemptedRevision"].startswith("main@sha1:")
    assert {e["subject"] for e in events if e["type"] == "io.fluxcd.kustomize.stalled"} == set(variants)

    # A fix is just another commit: the stalled App recovers at the next reconcile.
    org.commit("malformed", {"values.yaml": org.apps["healthy"]["values.yaml"].replace("healthy", "malformed")})
    engine.request_reconcile("malformed")
    await until(lambda: view.ready("malformed"))
    assert not view.condition("malformed", "Stalled")
