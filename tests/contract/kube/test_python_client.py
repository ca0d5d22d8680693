"""The ``kubernetes`` Python client (typed and dynamic) against the emulator, over HTTPS."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, dynamic, watch
from kubernetes.client.rest import ApiException

from catalyst_sim.backends.embedded.kube import Cluster, KubeEmulator


@pytest.fixture
def api(kubeconfig: Path) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(config_file=str(kubeconfig))
    yield api_client
    api_client.close()


def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {check}")
        time.sleep(0.02)


def status_of(exc: ApiException) -> tuple[int, str]:
    import json

    body = json.loads(exc.body)
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure"
    assert body["code"] == exc.status
    return exc.status, body["reason"]


def configmap(name: str, **labels: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels or None), data={"k": name})


def test_typed_crud_conflicts_and_not_found(api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    created = v1.create_namespaced_config_map("default", configmap("a", team="x"))
    assert created.metadata.uid and created.metadata.resource_version and created.metadata.creation_timestamp
    stale = created.metadata.resource_version
    created.data = {"k": "2"}
    replaced = v1.replace_namespaced_config_map("a", "default", created)
    assert int(replaced.metadata.resource_version) > int(stale)
    created.metadata.resource_version = stale
    with pytest.raises(ApiException) as conflict:
        v1.replace_namespaced_config_map("a", "default", created)
    assert status_of(conflict.value) == (409, "Conflict")
    with pytest.raises(ApiException) as exists:
        v1.create_namespaced_config_map("default", configmap("a"))
    assert status_of(exists.value) == (409, "AlreadyExists")
    with pytest.raises(ApiException) as missing:
        v1.read_namespaced_config_map("nope", "default")
    assert status_of(missing.value) == (404, "NotFound")
    with pytest.raises(ApiException) as no_namespace:
        v1.create_namespaced_config_map("ghost", configmap("a"))
    assert status_of(no_namespace.value) == (404, "NotFound")
    patched = v1.patch_namespaced_config_map("a", "default", {"metadata": {"labels": {"env": "dev"}}})
    assert patched.metadata.labels == {"team": "x", "env": "dev"}
    v1.create_namespaced_config_map("default", configmap("b", team="y"))
    assert [c.metadata.name for c in v1.list_namespaced_config_map("default", label_selector="team").items] == [
        "a",
        "b",
    ]
    assert [c.metadata.name for c in v1.list_config_map_for_all_namespaces(field_selector="metadata.name=b").items] == [
        "b"
    ]
    deleted = v1.delete_namespaced_config_map("a", "default")
    assert deleted["status"] == "Success" and deleted["details"]["name"] == "a"
    with pytest.raises(ApiException) as gone:
        v1.read_namespaced_config_map("a", "default")
    assert gone.value.status == 404


def test_paging_with_limit_and_continue(api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    for i in range(7):
        v1.create_namespaced_config_map("default", configmap(f"cm-{i}"))
    page = v1.list_namespaced_config_map("default", limit=3)
    names = [c.metadata.name for c in page.items]
    assert page.metadata.remaining_item_count == 4
    while page.metadata._continue:
        page = v1.list_namespaced_config_map("default", limit=3, _continue=page.metadata._continue)
        names += [c.metadata.name for c in page.items]
    assert names == [f"cm-{i}" for i in range(7)]


def test_deployment_status_and_scale_subresource(api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]},
            },
        },
    }
    created = apps.create_namespaced_deployment("default", body)
    assert created.metadata.generation == 1 and created.spec.strategy.type == "RollingUpdate"
    ready = eventually(
        lambda: (d := apps.read_namespaced_deployment_status("web", "default")).status.available_replicas == 2 and d
    )
    assert ready.status.observed_generation == 1
    assert {c.type: c.status for c in ready.status.conditions} == {"Available": "True", "Progressing": "True"}
    scale = apps.read_namespaced_deployment_scale("web", "default")
    assert (scale.spec.replicas, scale.status.selector) == (2, "app=web")
    apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 3}})
    eventually(lambda: apps.read_namespaced_deployment("web", "default").status.available_replicas == 3)
    assert apps.read_namespaced_deployment("web", "default").metadata.generation == 2
    pods = client.CoreV1Api(api).list_namespaced_pod(
        "default", label_selector="app=web", field_selector="status.phase=Running"
    )
    assert len(pods.items) == 3
    apps.delete_namespaced_deployment("web", "default", body=client.V1DeleteOptions(propagation_policy="Foreground"))
    eventually(lambda: not client.CoreV1Api(api).list_namespaced_pod("default").items)


def test_watch_with_resource_version_and_timeout(api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    start = v1.create_namespaced_config_map("default", configmap("w0")).metadata.resource_version
    v1.create_namespaced_config_map("default", configmap("w1"))
    v1.delete_namespaced_config_map("w0", "default")
    # _request_timeout only guards against a hang: the server itself ends the stream at timeoutSeconds.
    events = [
        (e["type"], e["object"].metadata.name)
        for e in watch.Watch().stream(
            v1.list_namespaced_config_map, "default", resource_version=start, timeout_seconds=1, _request_timeout=30
        )
    ]
    assert events == [("ADDED", "w1"), ("DELETED", "w0")]


def test_watch_streams_live_changes(api: client.ApiClient, cluster: Cluster) -> None:
    import threading

    v1 = client.CoreV1Api(api)
    rv = v1.list_namespaced_config_map("default").metadata.resource_version
    seen: list[tuple[str, str]] = []
    w = watch.Watch()

    def consume() -> None:
        for event in w.stream(v1.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=5):
            seen.append((event["type"], event["object"].metadata.name))
            if len(seen) == 2:
                w.stop()

    thread = threading.Thread(target=consume)
    thread.start()
    writer = client.CoreV1Api(api)
    eventually(lambda: cluster.open_watches() == 1)
    writer.create_namespaced_config_map("default", configmap("live"))
    writer.patch_namespaced_config_map("live", "default", {"data": {"k": "changed"}})
    thread.join(10)
    assert seen == [("ADDED", "live"), ("MODIFIED", "live")]


def test_a_too_old_resource_version_is_410(emulator: KubeEmulator, tmp_path: Path) -> None:
    small = emulator.add_cluster("small-window", history_window=20)
    try:
        api_client = config.new_client_from_config(config_file=str(emulator.kubeconfig(small.name, tmp_path / "kc")))
        v1 = client.CoreV1Api(api_client)
        old = v1.create_namespaced_config_map("default", configmap("first")).metadata.resource_version
        for i in range(30):
            v1.create_namespaced_config_map("default", configmap(f"n{i}"))
        with pytest.raises(ApiException) as info:
            list(
                watch.Watch().stream(v1.list_namespaced_config_map, "default", resource_version=old, timeout_seconds=2)
            )
        assert info.value.status == 410 and "Expired" in str(info.value.reason)
        api_client.close()
    finally:
        emulator.remove_cluster(small.name)


def test_dynamic_client_with_a_crd_created_at_runtime(api: client.ApiClient) -> None:
    dyn = dynamic.DynamicClient(api)
    crds = dyn.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    crds.create(
        body={
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "blueprints.catalyst.openova.io"},
            "spec": {
                "group": "catalyst.openova.io",
                "scope": "Namespaced",
                "names": {
                    "plural": "blueprints",
                    "singular": "blueprint",
                    "kind": "Blueprint",
                    "shortNames": ["bp"],
                },
                "versions": [
                    {
                        "name": "v1alpha1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            }
                        },
                        "subresources": {"status": {}},
                    }
                ],
            },
        }
    )
    dyn = dynamic.DynamicClient(api)  # fresh discovery sees the new group
    blueprints = dyn.resources.get(api_version="catalyst.openova.io/v1alpha1", kind="Blueprint")
    assert blueprints.namespaced and "bp" in blueprints.short_names
    created = blueprints.create(
        namespace="default",
        body={
            "apiVersion": "catalyst.openova.io/v1alpha1",
            "kind": "Blueprint",
            "metadata": {"name": "bp1"},
            "spec": {"version": "1.0.0"},
            "status": {"phase": "ignored"},
        },
    )
    assert created.metadata.generation == 1 and created.get("status") is None
    patched = blueprints.patch(
        namespace="default",
        name="bp1",
        body={"spec": {"version": "1.1.0"}},
        content_type="application/merge-patch+json",
    )
    assert patched.metadata.generation == 2
    with_status = blueprints.status.patch(
        namespace="default",
        name="bp1",
        body={"status": {"phase": "Ready"}},
        content_type="application/merge-patch+json",
    )
    assert with_status.status.phase == "Ready" and with_status.metadata.generation == 2
    with pytest.raises(ApiException) as smp:  # custom resources do not take strategic merge patches
        blueprints.patch(
            namespace="default",
            name="bp1",
            body={"spec": {}},
            content_type="application/strategic-merge-patch+json",
        )
    assert smp.value.status == 415
    assert [i.metadata.name for i in blueprints.get(namespace="default").items] == ["bp1"]
    blueprints.delete(namespace="default", name="bp1")
    assert blueprints.get(namespace="default").items == []


def test_server_side_apply_adds_and_removes_the_managers_fields(api: client.ApiClient) -> None:
    dyn = dynamic.DynamicClient(api)
    configmaps = dyn.resources.get(api_version="v1", kind="ConfigMap")
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "ssa"},
        "data": {"a": "1", "b": "2"},
    }
    created = configmaps.server_side_apply(body=manifest, namespace="default", field_manager="catalyst")
    assert created.to_dict()["data"] == {"a": "1", "b": "2"}
    configmaps.patch(
        namespace="default",
        name="ssa",
        body={"data": {"other": "kept"}},
        content_type="application/merge-patch+json",
    )
    manifest["data"] = {"a": "1"}
    applied = configmaps.server_side_apply(body=manifest, namespace="default", field_manager="catalyst")
    assert applied.to_dict()["data"] == {"a": "1", "other": "kept"}


def test_tokens_authenticate_and_read_only_tokens_cannot_write(
    emulator: KubeEmulator, cluster: Cluster, tmp_path: Path
) -> None:
    reader = config.new_client_from_config(config_file=str(cluster.kubeconfig(tmp_path / "ro", read_only=True)))
    v1 = client.CoreV1Api(reader)
    assert [n.metadata.name for n in v1.list_namespace().items][:1] == ["default"]
    with pytest.raises(ApiException) as forbidden:
        v1.create_namespaced_config_map("default", configmap("x"))
    assert status_of(forbidden.value) == (403, "Forbidden")
    reader.close()
    wrong = tmp_path / "wrong"
    wrong.write_text((tmp_path / "ro").read_text().replace(cluster.read_only_token, "not-a-token"))
    stranger = config.new_client_from_config(config_file=str(wrong))
    with pytest.raises(ApiException) as unauthorized:
        client.CoreV1Api(stranger).list_namespace()
    assert status_of(unauthorized.value) == (401, "Unauthorized")
    stranger.close()
