"""Git is the source of truth: new commits apply (at the interval or on request), removed objects are
pruned, and manual edits in the cluster are reverted at the next interval (drift correction)."""

from __future__ import annotations

import yaml
from kubernetes import client

from catalyst_sim.clock import VirtualClock
from catalyst_sim.control.gitops import GitOpsEngine, advance, advance_until

from .conftest import Org, Ready, View


def values_with(org: Org, app: str, **config: object) -> str:
    values = yaml.safe_load(org.apps[app]["values.yaml"])
    values["config"].update(config)
    text = yaml.safe_dump(values, sort_keys=False)
    org.apps[app]["values.yaml"] = text
    return text


async def test_a_commit_applies_at_the_next_interval_or_at_once_on_request(
    engine: GitOpsEngine, org: Org, view: View, clock: VirtualClock, until: Ready
) -> None:
    org.install("bp-postgres", "db")
    await engine.add_application("db", f"{org.name}/db", "main")
    await until(lambda: view.ready("db"))
    first = view.ks("db")["status"]["lastAppliedRevision"]
    assert view.apps.read_namespaced_stateful_set("db", "db").spec.replicas == 1

    sha = org.commit("db", {"values.yaml": values_with(org, "db", replicas=2)}, "two instances")
    await advance(clock, [engine], 30, step=5)  # half an interval: nothing happens yet
    assert view.gitrepo("db")["status"]["artifact"]["revision"] == first
    assert view.apps.read_namespaced_stateful_set("db", "db").spec.replicas == 1
    await until(lambda: view.ks("db")["status"].get("lastAppliedRevision") == f"main@sha1:{sha}", limit=120)
    assert view.apps.read_namespaced_stateful_set("db", "db").status.ready_replicas == 2
    assert view.ready("db")

    # The overlay for this env_type wins over values.yaml; a webhook-style nudge applies it now.
    overlay = yaml.safe_load(org.apps["db"]["overlays/prod/values.yaml"])
    overlay["config"] = {"replicas": 3}
    sha = org.commit("db", {"overlays/prod/values.yaml": yaml.safe_dump(overlay)}, "prod runs three")
    engine.request_reconcile("db")
    await engine.wait_idle()  # no time has passed
    status = view.ks("db")["status"]
    assert status["lastAttemptedRevision"] == f"main@sha1:{sha}"
    assert view.apps.read_namespaced_stateful_set("db", "db").spec.replicas == 3
    ready = view.condition("db")
    assert ready["status"] == "Unknown" and ready["reason"] == "Progressing"  # an update rolling out
    await until(lambda: view.ks("db")["status"].get("lastAppliedRevision") == f"main@sha1:{sha}", limit=120)
    assert view.ready("db")


async def test_an_object_removed_from_the_repo_is_pruned(engine: GitOpsEngine, org: Org, view: View,
                                                         until: Ready) -> None:
    org.install("bp-redis", "cache")
    await engine.add_application("cache", f"{org.name}/cache", "main")
    await until(lambda: view.ready("cache"))

    def external_secrets() -> list[str]:
        found = view.custom.list_namespaced_custom_object("external-secrets.io", "v1beta1", "cache",
                                                          "externalsecrets")
        return [item["metadata"]["name"] for item in found["items"]]

    assert external_secrets() == ["cache-credentials"]
    sha = org.commit("cache", {"secrets/external-secrets.yaml": None}, "no credentials")
    engine.request_reconcile("cache")
    await until(lambda: view.ks("cache")["status"].get("lastAppliedRevision") == f"main@sha1:{sha}")
    assert external_secrets() == []
    ids = {e["id"] for e in view.ks("cache")["status"]["inventory"]["entries"]}
    assert "cache_cache-credentials_external-secrets.io_ExternalSecret" not in ids
    assert "cache_cache_apps_StatefulSet" in ids


async def test_a_manual_edit_is_reverted_at_the_next_interval(engine: GitOpsEngine, org: Org, view: View,
                                                              clock: VirtualClock, until: Ready) -> None:
    org.install("bp-postgres", "db")
    await engine.add_application("db", f"{org.name}/db", "main")
    await until(lambda: view.ready("db"))
    revision = view.ks("db")["status"]["lastAppliedRevision"]
    # kubectl scale/patch by a person: a merge patch with another field manager.
    view.apps.patch_namespaced_stateful_set("db", "db", {"spec": {"replicas": 3}, "metadata": {
        "labels": {"hand-made": "yes"}}})
    await engine.wait_idle()
    assert view.apps.read_namespaced_stateful_set("db", "db").spec.replicas == 3
    await advance_until(clock, [engine], lambda: view.apps.read_namespaced_stateful_set("db", "db").spec.replicas == 1,
                        step=5, limit=90)
    sts = view.apps.read_namespaced_stateful_set("db", "db")
    assert sts.metadata.labels["hand-made"] == "yes"  # a field Git does not set is left alone
    assert view.ks("db")["status"]["lastAppliedRevision"] == revision
    await until(lambda: view.ready("db") and view.apps.read_namespaced_stateful_set("db", "db").status.replicas == 1)


async def test_a_branch_change_repoints_the_source(engine: GitOpsEngine, org: Org, view: View,
                                                   until: Ready) -> None:
    org.install("bp-redis", "cache")
    org.gitea.create_branch(org.name, "cache", "staging", source="main")
    await engine.add_application("cache", f"{org.name}/cache", "main")
    await until(lambda: view.ready("cache"))
    org.gitea.commit_files(org.name, "cache", "staging", {"values.yaml": values_with(org, "cache", maxMemory="512mb")},
                           message="staging only")
    await engine.add_application("cache", f"{org.name}/cache", "staging")
    await until(lambda: view.ks("cache")["status"].get("lastAppliedRevision", "").startswith("staging@sha1:"))
    args = view.apps.read_namespaced_stateful_set("cache", "cache").spec.template.spec.containers[0].args
    assert "512mb" in args
    assert view.gitrepo("cache")["spec"]["ref"] == {"branch": "staging"}
    try:
        view.core.read_namespace("cache")
    except client.ApiException as exc:  # pragma: no cover - the namespace must survive a re-point
        raise AssertionError("the App's namespace was pruned by a branch change") from exc
