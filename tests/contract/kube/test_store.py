"""API semantics of the emulator's object store, checked in-process (no HTTP, virtual clock)."""

from __future__ import annotations

from typing import Any

import pytest

from catalyst_sim.backends.embedded.kube.controllers import Controllers
from catalyst_sim.backends.embedded.kube.errors import ApiError
from catalyst_sim.backends.embedded.kube.patch import json_patch, merge_patch, strategic_merge
from catalyst_sim.backends.embedded.kube.resources import ResourceType
from catalyst_sim.backends.embedded.kube.selectors import parse_field_selector, parse_label_selector
from catalyst_sim.backends.embedded.kube.store import ClusterStore
from catalyst_sim.clock import VirtualClock


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def store(clock: VirtualClock) -> ClusterStore:
    created = ClusterStore("unit", clock, history_window=50)
    Controllers(created)
    return created


def rt(store: ClusterStore, group: str, plural: str) -> ResourceType:
    found = store.registry.storage_type((group, plural))
    assert found is not None
    return found


def cm(name: str, labels: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}, **extra}, "data": {"k": name}}


def deployment(name: str, replicas: int = 1, image: str = "nginx:1.25") -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": image}]},
            },
        },
    }


def code_of(call: Any) -> tuple[int, str]:
    with pytest.raises(ApiError) as info:
        call()
    return info.value.code, info.value.reason


# ---------------------------------------------------------------- identity, versions, scope


def test_create_assigns_identity_from_the_clock_and_a_global_resource_version(
    store: ClusterStore, clock: VirtualClock
) -> None:
    configmaps, secrets = rt(store, "", "configmaps"), rt(store, "", "secrets")
    first = store.create(configmaps, "default", cm("a"))
    clock.advance(90)
    second = store.create(secrets, "default", {"metadata": {"name": "s"}, "stringData": {"x": "y"}})
    assert first["metadata"]["creationTimestamp"] == "2026-11-24T09:00:00Z"
    assert second["metadata"]["creationTimestamp"] == "2026-11-24T09:01:30Z"
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    assert first["metadata"]["uid"] != second["metadata"]["uid"]
    assert "generation" not in first["metadata"]
    assert second["data"] == {"x": "eQ=="} and second["type"] == "Opaque" and "stringData" not in second
    assert store.create(rt(store, "apps", "deployments"), "default", deployment("d"))["metadata"]["generation"] == 1


def test_generate_name_namespaces_and_scope(store: ClusterStore) -> None:
    configmaps, namespaces = rt(store, "", "configmaps"), rt(store, "", "namespaces")
    made = store.create(configmaps, "default", {"metadata": {"generateName": "job-"}})
    assert made["metadata"]["name"].startswith("job-") and len(made["metadata"]["name"]) == 9
    assert code_of(lambda: store.create(configmaps, "missing", cm("x"))) == (404, "NotFound")
    assert code_of(lambda: store.create(configmaps, "default", {"metadata": {}})) == (422, "Invalid")
    assert code_of(lambda: store.create(configmaps, "default", cm("Bad_Name"))) == (422, "Invalid")
    assert code_of(
        lambda: store.create(configmaps, "default", cm("a")) and store.create(configmaps, "default", cm("a"))
    ) == (409, "AlreadyExists")
    ns = store.create(namespaces, "ignored", {"metadata": {"name": "team-a", "namespace": "x"}})
    assert "namespace" not in ns["metadata"] and ns["status"]["phase"] == "Active"
    assert ns["metadata"]["labels"]["kubernetes.io/metadata.name"] == "team-a"
    store.create(configmaps, "team-a", cm("a"))  # the same name in another namespace is another object
    assert store.get(configmaps, "team-a", "a")["metadata"]["namespace"] == "team-a"


def test_update_conflicts_on_a_stale_resource_version_and_404s_when_missing(store: ClusterStore) -> None:
    configmaps = rt(store, "", "configmaps")
    first = store.create(configmaps, "default", cm("a"))
    changed = dict(first, data={"k": "2"})
    second = store.update(configmaps, "default", "a", changed)
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    assert code_of(lambda: store.update(configmaps, "default", "a", dict(first, data={"k": "3"}))) == (
        409,
        "Conflict",
    )
    assert code_of(lambda: store.update(configmaps, "default", "nope", cm("nope"))) == (404, "NotFound")
    unconditional = cm("a")
    unconditional["data"] = {"k": "4"}
    assert store.update(configmaps, "default", "a", unconditional)["data"] == {"k": "4"}


def test_a_write_that_changes_nothing_keeps_the_resource_version(store: ClusterStore) -> None:
    configmaps = rt(store, "", "configmaps")
    first = store.create(configmaps, "default", cm("a"))
    again = store.update(configmaps, "default", "a", first)
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


def test_generation_moves_on_spec_changes_only_and_status_is_isolated(store: ClusterStore) -> None:
    deployments = rt(store, "apps", "deployments")
    store.create(deployments, "default", dict(deployment("d"), status={"replicas": 99}))
    created = store.get(deployments, "default", "d")
    assert created["metadata"]["generation"] == 1 and created["status"].get("replicas") != 99

    def relabel(obj: dict[str, Any]) -> dict[str, Any]:
        obj["metadata"]["labels"] = {"x": "y"}
        obj["status"] = {"replicas": 42}  # ignored: status only changes through /status
        return obj

    relabelled = store.mutate(deployments, "default", "d", relabel)
    assert relabelled["metadata"]["generation"] == 1 and relabelled["status"].get("replicas") != 42

    def rescale(obj: dict[str, Any]) -> dict[str, Any]:
        obj["spec"]["replicas"] = 3
        return obj

    assert store.mutate(deployments, "default", "d", rescale)["metadata"]["generation"] == 2

    def status_only(obj: dict[str, Any]) -> dict[str, Any]:
        obj["spec"]["replicas"] = 7  # ignored: /status never changes spec
        obj["status"] = {"observedGeneration": 2, "replicas": 3}
        return obj

    updated = store.mutate(deployments, "default", "d", status_only, subresource="status")
    assert updated["spec"]["replicas"] == 3 and updated["status"]["replicas"] == 3
    assert updated["metadata"]["generation"] == 2


# ---------------------------------------------------------------- selectors and paging


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("tier=web", ["a", "b"]),
        ("tier==web", ["a", "b"]),
        ("tier!=web", ["c", "d"]),
        ("tier in (web,db)", ["a", "b", "c"]),
        ("tier notin (web)", ["c", "d"]),
        ("env", ["a", "c"]),
        ("!env", ["b", "d"]),
        ("tier=web,env=prod", ["a"]),
        ("rank>1", ["b"]),
        ("", ["a", "b", "c", "d"]),
    ],
)
def test_label_selectors(store: ClusterStore, selector: str, expected: list[str]) -> None:
    configmaps = rt(store, "", "configmaps")
    store.create(configmaps, "default", cm("a", {"tier": "web", "env": "prod", "rank": "1"}))
    store.create(configmaps, "default", cm("b", {"tier": "web", "rank": "2"}))
    store.create(configmaps, "default", cm("c", {"tier": "db", "env": "dev"}))
    store.create(configmaps, "default", cm("d"))
    listed = store.list(configmaps, "default", labels=parse_label_selector(selector))
    assert [o["metadata"]["name"] for o in listed.items] == expected


@pytest.mark.parametrize("bad", ["tier in (web", "=web", "a b", "tier=we b", "x>y"])
def test_unparsable_label_selectors_are_bad_requests(bad: str) -> None:
    with pytest.raises(ApiError) as info:
        parse_label_selector(bad)
    assert info.value.code == 400


def test_field_selectors(store: ClusterStore) -> None:
    pods, namespaces, configmaps = (
        rt(store, "", "pods"),
        rt(store, "", "namespaces"),
        rt(store, "", "configmaps"),
    )
    store.create(namespaces, "", {"metadata": {"name": "other"}})
    for ns in ("default", "other"):
        store.create(configmaps, ns, cm("same"))
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    store.create(pods, "default", pod)
    getters = pods.field_getters()
    assert [
        o["metadata"]["name"]
        for o in store.list(pods, None, fields=parse_field_selector("status.phase=Pending", getters)).items
    ] == ["p"]
    assert store.list(pods, None, fields=parse_field_selector("status.phase!=Pending", getters)).items == []
    by_ns = store.list(
        configmaps,
        None,
        fields=parse_field_selector("metadata.name=same,metadata.namespace!=default", configmaps.field_getters()),
    )
    assert [o["metadata"]["namespace"] for o in by_ns.items] == ["other"]
    with pytest.raises(ApiError) as info:
        parse_field_selector("spec.nodeName=x", configmaps.field_getters())
    assert info.value.code == 400 and "field label not supported" in info.value.message


def test_paging_serves_a_consistent_snapshot(store: ClusterStore) -> None:
    configmaps = rt(store, "", "configmaps")
    for i in range(10):
        store.create(configmaps, "default", cm(f"cm-{i:02d}"))
    first = store.list(configmaps, "default", limit=4)
    assert [o["metadata"]["name"] for o in first.items] == [f"cm-{i:02d}" for i in range(4)]
    assert first.remaining == 6 and first.continue_token
    store.delete(configmaps, "default", "cm-05")  # changes after the first page ...
    store.create(configmaps, "default", cm("cm-04a"))
    names = [o["metadata"]["name"] for o in first.items]
    token = first.continue_token
    while token:
        page = store.list(configmaps, "default", limit=4, continue_token=token)
        assert page.resource_version == first.resource_version  # ... are invisible: one snapshot
        names += [o["metadata"]["name"] for o in page.items]
        token = page.continue_token
    assert names == [f"cm-{i:02d}" for i in range(10)]


def test_an_evicted_continue_token_is_410_expired(clock: VirtualClock) -> None:
    store = ClusterStore("paging", clock, snapshot_cache=1)
    configmaps = rt(store, "", "configmaps")
    for i in range(5):
        store.create(configmaps, "default", cm(f"c{i}"))
    token = store.list(configmaps, "default", limit=2).continue_token
    store.list(configmaps, "default", limit=1)  # a second paginated list evicts the first snapshot
    assert code_of(lambda: store.list(configmaps, "default", limit=2, continue_token=token)) == (
        410,
        "Expired",
    )
    assert code_of(lambda: store.list(configmaps, "default", continue_token="garbage")) == (400, "BadRequest")


# ---------------------------------------------------------------- watch


def collect(store: ClusterStore, rtype: ResourceType, **kw: Any) -> tuple[list[tuple[str, str]], Any]:
    events: list[tuple[str, str]] = []
    watcher, initial, _ = store.watch(
        rtype, "default", sink=lambda kind, obj: events.append((kind, obj["metadata"]["name"])), **kw
    )
    events[:0] = [(kind, obj["metadata"]["name"]) for kind, obj in initial]
    return events, watcher


def test_watch_replays_history_and_follows_selector_transitions(store: ClusterStore) -> None:
    configmaps = rt(store, "", "configmaps")
    start = store.create(configmaps, "default", cm("a", {"team": "x"}))["metadata"]["resourceVersion"]
    store.create(configmaps, "default", cm("b", {"team": "x"}))
    events, watcher = collect(store, configmaps, resource_version=start, labels=parse_label_selector("team=x"))
    assert events == [("ADDED", "b")]

    def leave(obj: dict[str, Any]) -> dict[str, Any]:
        obj["metadata"]["labels"] = {"team": "y"}
        return obj

    store.mutate(configmaps, "default", "a", leave)  # leaves the selection: DELETED
    store.create(configmaps, "default", cm("c", {"team": "y"}))  # never matches: nothing
    store.mutate(configmaps, "default", "c", lambda o: {**o, "metadata": {**o["metadata"], "labels": {"team": "x"}}})
    store.delete(configmaps, "default", "b")
    assert events == [("ADDED", "b"), ("DELETED", "a"), ("ADDED", "c"), ("DELETED", "b")]
    store.unwatch(watcher)
    store.create(configmaps, "default", cm("d", {"team": "x"}))
    assert len(events) == 4


def test_watch_without_a_version_starts_with_synthetic_adds(store: ClusterStore) -> None:
    configmaps = rt(store, "", "configmaps")
    store.create(configmaps, "default", cm("a"))
    events, _ = collect(store, configmaps)
    assert events == [("ADDED", "a")]


def test_a_version_older_than_the_window_is_410_expired(store: ClusterStore) -> None:
    configmaps = rt(store, "", "configmaps")
    old = store.create(configmaps, "default", cm("first"))["metadata"]["resourceVersion"]
    for i in range(60):  # the window holds 50 events
        store.create(configmaps, "default", cm(f"n{i}"))
    with pytest.raises(ApiError) as info:
        collect(store, configmaps, resource_version=old)
    assert (info.value.code, info.value.reason) == (410, "Expired")
    assert "too old resource version" in info.value.message
    recent = store.list(configmaps, "default").resource_version
    events, _ = collect(store, configmaps, resource_version=str(recent))
    assert events == []


# ---------------------------------------------------------------- deletion


def test_finalizers_hold_deletion_until_the_last_one_is_removed(store: ClusterStore, clock: VirtualClock) -> None:
    configmaps = rt(store, "", "configmaps")
    store.create(configmaps, "default", cm("held", finalizers=["example.com/a", "example.com/b"]))
    events, _ = collect(store, configmaps, resource_version=str(store.resource_version))
    clock.advance(5)
    obj, removed = store.delete(configmaps, "default", "held")
    assert not removed and obj["metadata"]["deletionTimestamp"] == "2026-11-24T09:00:05Z"

    def add_finalizer(o: dict[str, Any]) -> dict[str, Any]:
        o["metadata"]["finalizers"].append("example.com/c")
        return o

    assert code_of(lambda: store.mutate(configmaps, "default", "held", add_finalizer)) == (422, "Invalid")

    def drop(name: str) -> Any:
        return lambda o: {
            **o,
            "metadata": {
                **o["metadata"],
                "finalizers": [f for f in o["metadata"]["finalizers"] if f != name],
            },
        }

    store.mutate(configmaps, "default", "held", drop("example.com/a"))
    assert store.find(configmaps, "default", "held") is not None
    store.mutate(configmaps, "default", "held", drop("example.com/b"))
    assert store.find(configmaps, "default", "held") is None
    assert [kind for kind, _ in events] == ["MODIFIED", "MODIFIED", "MODIFIED", "DELETED"]


def owned(name: str, owner: dict[str, Any]) -> dict[str, Any]:
    meta = owner["metadata"]
    return cm(
        name,
        ownerReferences=[
            {
                "apiVersion": owner["apiVersion"],
                "kind": owner["kind"],
                "name": meta["name"],
                "uid": meta["uid"],
            }
        ],
    )


@pytest.mark.parametrize("policy", ["Background", "Foreground", "Orphan"])
def test_owner_reference_cascades(store: ClusterStore, policy: str) -> None:
    configmaps = rt(store, "", "configmaps")
    owner = store.create(configmaps, "default", cm("owner"))
    child = store.create(configmaps, "default", owned("child", owner))
    store.create(configmaps, "default", owned("grandchild", child))
    other = store.create(configmaps, "default", cm("other-owner"))
    shared = owned("shared", owner)
    shared["metadata"]["ownerReferences"].append(
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "other-owner", "uid": other["metadata"]["uid"]}
    )
    store.create(configmaps, "default", shared)
    store.delete(configmaps, "default", "owner", propagation=policy)
    assert store.find(configmaps, "default", "owner") is None
    remaining = {o["metadata"]["name"] for o in store.list(configmaps, "default").items}
    if policy == "Orphan":
        assert {"child", "grandchild", "shared"} <= remaining
        assert "ownerReferences" not in store.get(configmaps, "default", "child")["metadata"]
    else:
        assert "child" not in remaining and "grandchild" not in remaining
        survivor = store.get(configmaps, "default", "shared")  # another owner still exists
        assert [r["name"] for r in survivor["metadata"]["ownerReferences"]] == ["other-owner"]


def test_foreground_deletion_waits_for_blocking_dependents(store: ClusterStore) -> None:
    configmaps = rt(store, "", "configmaps")
    owner = store.create(configmaps, "default", cm("owner"))
    store.create(
        configmaps,
        "default",
        dict(
            owned("child", owner),
            metadata={**owned("child", owner)["metadata"], "finalizers": ["example.com/keep"]},
        ),
    )
    obj, removed = store.delete(configmaps, "default", "owner", propagation="Foreground")
    assert not removed and "foregroundDeletion" in obj["metadata"]["finalizers"]
    assert store.get(configmaps, "default", "child")["metadata"]["deletionTimestamp"]
    store.mutate(configmaps, "default", "child", lambda o: {**o, "metadata": {**o["metadata"], "finalizers": []}})
    assert store.find(configmaps, "default", "child") is None
    assert store.find(configmaps, "default", "owner") is None


def test_namespace_deletion_removes_content_and_refuses_new_content(store: ClusterStore) -> None:
    namespaces, configmaps = rt(store, "", "namespaces"), rt(store, "", "configmaps")
    store.create(namespaces, "", {"metadata": {"name": "doomed"}})
    store.create(configmaps, "doomed", cm("plain"))
    store.create(configmaps, "doomed", cm("held", finalizers=["example.com/keep"]))
    ns, removed = store.delete(namespaces, "", "doomed")
    assert not removed and ns["status"]["phase"] == "Terminating"
    assert store.find(configmaps, "doomed", "plain") is None
    assert code_of(lambda: store.create(configmaps, "doomed", cm("late"))) == (403, "Forbidden")
    store.mutate(configmaps, "doomed", "held", lambda o: {**o, "metadata": {**o["metadata"], "finalizers": []}})
    assert store.find(namespaces, "", "doomed") is None


def test_delete_preconditions(store: ClusterStore) -> None:
    configmaps = rt(store, "", "configmaps")
    store.create(configmaps, "default", cm("a"))
    assert code_of(lambda: store.delete(configmaps, "default", "a", preconditions={"uid": "nope"})) == (
        409,
        "Conflict",
    )
    assert code_of(lambda: store.delete(configmaps, "default", "missing")) == (404, "NotFound")


# ---------------------------------------------------------------- CRDs


def crd(scope: str = "Namespaced") -> dict[str, Any]:
    return {
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": scope,
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
            "versions": [
                {"name": "v1", "served": True, "storage": True, "subresources": {"status": {}}},
                {"name": "v1beta1", "served": True, "storage": False},
            ],
        },
    }


def test_crds_register_and_unregister_their_types(store: ClusterStore) -> None:
    crds = rt(store, "apiextensions.k8s.io", "customresourcedefinitions")
    created = store.create(crds, "", crd())
    assert {c["type"] for c in created["status"]["conditions"]} == {"Established", "NamesAccepted"}
    widgets = store.registry.lookup("example.com", "v1", "widgets")
    assert widgets is not None and widgets.namespaced and widgets.status
    assert store.registry.lookup("example.com", "v1beta1", "widgets") is not None
    assert dict(store.registry.groups())["example.com"] == ["v1", "v1beta1"]
    store.create(widgets, "default", {"metadata": {"name": "w"}, "spec": {"size": 1}, "status": {"x": 1}})
    assert "status" not in store.get(widgets, "default", "w")  # status subresource: dropped on create
    store.delete(crds, "", "widgets.example.com")
    assert store.registry.lookup("example.com", "v1", "widgets") is None
    store.create(crds, "", crd("Cluster"))
    widgets = store.registry.lookup("example.com", "v1", "widgets")
    assert widgets is not None and not widgets.namespaced
    assert store.list(widgets, None).items == []  # instances died with their definition


def test_invalid_crd_is_422(store: ClusterStore) -> None:
    crds = rt(store, "apiextensions.k8s.io", "customresourcedefinitions")
    bad = crd()
    bad["metadata"]["name"] = "wrong.example.com"
    assert code_of(lambda: store.create(crds, "", bad)) == (422, "Invalid")


# ---------------------------------------------------------------- patches


def test_strategic_merge_patch_merges_keyed_lists_and_honours_directives() -> None:
    live = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "app", "image": "a:1", "env": [{"name": "A", "value": "1"}, {"name": "B"}]},
                        {"name": "side", "image": "s:1"},
                    ],
                    "volumes": [{"name": "v1", "emptyDir": {}}],
                }
            }
        },
        "metadata": {"finalizers": ["x"], "labels": {"keep": "1", "drop": "1"}},
    }
    patch = {
        "metadata": {
            "labels": {"drop": None},
            "finalizers": ["y"],
            "$deleteFromPrimitiveList/finalizers": ["x"],
        },
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "side"}, {"name": "app"}],
                    "containers": [
                        {"name": "app", "image": "a:2", "env": [{"name": "B", "$patch": "delete"}]},
                        {"name": "side", "$patch": "delete"},
                    ],
                    "volumes": [{"$patch": "replace"}, {"name": "v2", "configMap": {"name": "c"}}],
                }
            }
        },
    }
    merged = strategic_merge(live, patch, "Deployment")
    spec = merged["spec"]["template"]["spec"]
    assert spec["containers"] == [{"name": "app", "image": "a:2", "env": [{"name": "A", "value": "1"}]}]
    assert spec["volumes"] == [{"name": "v2", "configMap": {"name": "c"}}]
    assert merged["metadata"] == {"finalizers": ["y"], "labels": {"keep": "1"}}
    reordered = strategic_merge(
        live,
        {
            "spec": {
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [{"name": "side"}, {"name": "app"}],
                        "containers": [{"name": "app"}],
                    }
                }
            }
        },
        "Deployment",
    )
    assert [c["name"] for c in reordered["spec"]["template"]["spec"]["containers"]] == ["side", "app"]
    retained = strategic_merge(
        {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}},
        {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}},
        "Deployment",
    )
    assert retained["spec"]["strategy"] == {"type": "Recreate"}


def test_merge_and_json_patch() -> None:
    doc = {"a": {"b": 1, "c": [1, 2]}, "d": "x"}
    assert merge_patch(doc, {"a": {"b": None, "c": [3]}, "e": 1}) == {"a": {"c": [3]}, "d": "x", "e": 1}
    patched = json_patch(
        doc,
        [
            {"op": "add", "path": "/a/c/-", "value": 3},
            {"op": "remove", "path": "/d"},
            {"op": "replace", "path": "/a/b", "value": 2},
            {"op": "copy", "from": "/a/b", "path": "/f"},
            {"op": "move", "from": "/f", "path": "/g"},
            {"op": "test", "path": "/g", "value": 2},
        ],
    )
    assert patched == {"a": {"b": 2, "c": [1, 2, 3]}, "g": 2}
    assert doc == {"a": {"b": 1, "c": [1, 2]}, "d": "x"}  # inputs are never mutated
    with pytest.raises(ApiError) as info:
        json_patch(doc, [{"op": "test", "path": "/d", "value": "y"}])
    assert info.value.code == 422
