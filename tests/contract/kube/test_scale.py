"""Per-operation cost stays flat as a cluster grows: counted work, never wall time (noisy machines)."""

from __future__ import annotations

from typing import Any

from catalyst_sim.backends.embedded.kube.controllers import Controllers
from catalyst_sim.backends.embedded.kube.kubelet import Kubelet
from catalyst_sim.backends.embedded.kube.store import ClusterStore, Stats
from catalyst_sim.clock import VirtualClock

N = 5_000


def snapshot(stats: Stats) -> tuple[int, ...]:
    return (
        stats.reads,
        stats.writes,
        stats.removes,
        stats.watch_offers,
        stats.history_scanned,
        stats.list_scanned,
        stats.reactions,
    )


def cost(store: ClusterStore, operation: Any) -> tuple[int, ...]:
    before = snapshot(store.stats)
    operation()
    after = snapshot(store.stats)
    return tuple(b - a for a, b in zip(before, after, strict=True))


def test_create_get_update_delete_cost_does_not_grow_with_the_store() -> None:
    store = ClusterStore("scale", VirtualClock(), history_window=1_000)
    Controllers(store)
    Kubelet(store)
    configmaps = store.registry.lookup("", "v1", "configmaps")
    assert configmaps is not None
    received: list[str] = []
    store.watch(
        configmaps,
        "default",
        resource_version=str(store.resource_version),
        sink=lambda kind, obj: received.append(kind),
    )

    def body(i: int) -> dict[str, Any]:
        return {"metadata": {"name": f"cm-{i:05d}", "labels": {"i": str(i % 7)}}, "data": {"k": str(i)}}

    def costs_at(i: int) -> dict[str, tuple[int, ...]]:
        name = f"cm-{i:05d}"
        return {
            "create": cost(store, lambda: store.create(configmaps, "default", body(i))),
            "get": cost(store, lambda: store.get(configmaps, "default", name)),
            "update": cost(
                store,
                lambda: store.mutate(configmaps, "default", name, lambda o: {**o, "data": {"k": "changed"}}),
            ),
            "delete": cost(store, lambda: store.delete(configmaps, "default", name)),
        }

    early = costs_at(0)
    for i in range(1, N):
        store.create(configmaps, "default", body(i))
    late = costs_at(N)
    assert early == late, f"per-operation work grew with the store: {early} -> {late}"
    assert max(sum(c[:3]) for c in late.values()) <= 4  # objects touched per operation
    assert late["create"][3] == 1  # one watcher offered one event, whatever the store size
    assert len(received) == 2 * 3 + (N - 1)  # every create, update and delete reached the watcher
    assert len(store._history) == 1_000  # the watch history is bounded
    assert len(store.list(configmaps, "default").items) == N - 1  # cm-00000 and cm-05000 were deleted
    assert store.stats.reaction_errors == 0
