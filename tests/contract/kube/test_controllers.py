"""Simulated kubelet and controllers on the virtual clock: nothing moves until time is advanced."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from catalyst_sim.backends.embedded.kube.controllers import Controllers, condition
from catalyst_sim.backends.embedded.kube.images import parse_image
from catalyst_sim.backends.embedded.kube.kubelet import Kubelet, KubeletBehaviour, PodStages, split_image
from catalyst_sim.backends.embedded.kube.resources import ResourceType
from catalyst_sim.backends.embedded.kube.store import ClusterStore
from catalyst_sim.clock import VirtualClock

STAGES = PodStages(schedule=0.5, pull=2.0, start=1.0, ready=1.0, complete=3.0, crash_after=2.0)


@dataclass
class Sim:
    clock: VirtualClock
    store: ClusterStore
    kubelet: Kubelet

    def rt(self, group: str, plural: str) -> ResourceType:
        found = self.store.registry.storage_type((group, plural))
        assert found is not None
        return found

    def get(self, group: str, plural: str, name: str, namespace: str = "default") -> dict[str, Any]:
        return self.store.get(self.rt(group, plural), namespace, name)

    def pods(self, namespace: str = "default") -> list[dict[str, Any]]:
        return self.store.list(self.rt("", "pods"), namespace).items

    def create(self, group: str, plural: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.store.create(self.rt(group, plural), "default", body)


def make_sim(seed: int | None = None) -> Sim:
    clock = VirtualClock()
    store = ClusterStore("sim", clock, seed=seed)
    Controllers(store)
    kubelet = Kubelet(store, KubeletBehaviour(stages=STAGES))
    return Sim(clock, store, kubelet)


@pytest.fixture
def sim() -> Sim:
    made = make_sim()
    yield made
    assert made.store.stats.reaction_errors == 0, made.store.stats.last_error
    made.store.close()


def workload(name: str, replicas: int = 3, image: str = "nginx:1.25", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": image}]},
            },
            **spec,
        },
    }


def container_state(pod: dict[str, Any]) -> dict[str, Any]:
    return pod["status"]["containerStatuses"][0]


def test_a_deployment_becomes_available_only_as_virtual_time_passes(sim: Sim) -> None:
    sim.create("apps", "deployments", workload("web"))
    status = sim.get("apps", "deployments", "web")["status"]
    assert status.get("availableReplicas", 0) == 0 and status["replicas"] == 3
    assert [p["status"]["phase"] for p in sim.pods()] == ["Pending"] * 3
    sim.clock.advance(3)  # scheduled at 0.5, pulled at 2.5, started at 3.5: not yet
    assert sim.get("apps", "deployments", "web")["status"].get("availableReplicas", 0) == 0
    sim.clock.advance(2)  # ready at 4.5
    dep = sim.get("apps", "deployments", "web")
    status = dep["status"]
    assert (status["availableReplicas"], status["readyReplicas"], status["updatedReplicas"]) == (3, 3, 3)
    assert status["observedGeneration"] == dep["metadata"]["generation"]
    assert condition(status["conditions"], "Available")["status"] == "True"
    assert condition(status["conditions"], "Progressing")["reason"] == "NewReplicaSetAvailable"
    rs = sim.store.list(sim.rt("apps", "replicasets"), "default").items
    assert len(rs) == 1 and rs[0]["metadata"]["labels"]["pod-template-hash"] in rs[0]["metadata"]["name"]
    pod = sim.pods()[0]
    assert pod["metadata"]["name"].startswith(rs[0]["metadata"]["name"] + "-")
    assert pod["spec"]["nodeName"] == "sim-node-1" and pod["status"]["podIP"].startswith("10.244.")
    assert container_state(pod)["state"]["running"]["startedAt"] == "2026-11-24T09:00:03Z"
    assert sim.store.stats.reaction_errors == 0


def test_a_rolling_update_respects_max_unavailable_and_max_surge(sim: Sim) -> None:
    sim.create(
        "apps",
        "deployments",
        workload(
            "web",
            replicas=4,
            strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}},
        ),
    )
    sim.clock.advance(10)
    seen: list[tuple[int, int]] = []

    def record(kind: str, obj: dict[str, Any]) -> None:
        status = obj.get("status") or {}
        seen.append((status.get("availableReplicas", 0), status.get("replicas", 0)))

    sim.store.watch(
        sim.rt("apps", "deployments"),
        "default",
        resource_version=str(sim.store.resource_version),
        sink=record,
    )

    def new_image(obj: dict[str, Any]) -> dict[str, Any]:
        obj["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.26"
        return obj

    sim.store.mutate(sim.rt("apps", "deployments"), "default", "web", new_image)
    for _ in range(40):
        sim.clock.advance(0.5)
    dep = sim.get("apps", "deployments", "web")
    assert dep["metadata"]["generation"] == 2 and dep["status"]["observedGeneration"] == 2
    assert dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert len(seen) > 5
    assert all(available >= 3 for available, _ in seen)  # never below replicas - maxUnavailable
    assert all(total <= 5 for _, total in seen)  # never above replicas + maxSurge
    replicasets = {
        r["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: r["spec"]["replicas"]
        for r in sim.store.list(sim.rt("apps", "replicasets"), "default").items
    }
    assert replicasets == {"1": 0, "2": 4}
    assert {p["spec"]["containers"][0]["image"] for p in sim.pods()} == {"nginx:1.26"}
    assert condition(dep["status"]["conditions"], "Progressing")["reason"] == "NewReplicaSetAvailable"


def test_recreate_stops_old_pods_before_starting_new_ones(sim: Sim) -> None:
    sim.create("apps", "deployments", workload("db", replicas=2, strategy={"type": "Recreate"}))
    sim.clock.advance(10)

    def new_image(obj: dict[str, Any]) -> dict[str, Any]:
        obj["spec"]["template"]["spec"]["containers"][0]["image"] = "postgres:17"
        return obj

    sim.store.mutate(sim.rt("apps", "deployments"), "default", "db", new_image)
    images = {p["spec"]["containers"][0]["image"] for p in sim.pods()}
    assert images == {"postgres:17"}  # old pods gone (no grace period configured) before new ones exist
    sim.clock.advance(10)
    assert sim.get("apps", "deployments", "db")["status"]["availableReplicas"] == 2


def test_unknown_images_back_off_and_the_progress_deadline_expires(sim: Sim) -> None:
    sim.create(
        "apps",
        "deployments",
        workload("bad", replicas=1, image="nginx:does-not-exist", progressDeadlineSeconds=60),
    )
    sim.clock.advance(2.6)
    state = container_state(sim.pods()[0])["state"]
    assert state["waiting"]["reason"] == "ErrImagePull"
    sim.clock.advance(1)
    state = container_state(sim.pods()[0])["state"]
    assert state["waiting"]["reason"] == "ImagePullBackOff"
    assert 'Back-off pulling image "nginx:does-not-exist"' in state["waiting"]["message"]
    dep = sim.get("apps", "deployments", "bad")
    assert condition(dep["status"]["conditions"], "Available")["status"] == "False"
    assert condition(dep["status"]["conditions"], "Progressing")["status"] == "True"
    sim.clock.advance(70)
    progressing = condition(sim.get("apps", "deployments", "bad")["status"]["conditions"], "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert sim.pods()[0]["status"]["phase"] == "Pending"
    reasons = {e["reason"] for e in sim.store.list(sim.rt("", "events"), "default").items}
    assert {"Failed", "BackOff", "ScalingReplicaSet", "SuccessfulCreate"} <= reasons


def test_images_outside_the_known_registries_fail_to_pull(sim: Sim) -> None:
    sim.kubelet.behaviour.known_registries = frozenset({"ghcr.io"})
    sim.create(
        "",
        "pods",
        {
            "metadata": {"name": "ok"},
            "spec": {"containers": [{"name": "c", "image": "ghcr.io/openova/catalyst:1.0"}]},
        },
    )
    sim.create(
        "",
        "pods",
        {"metadata": {"name": "nope"}, "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}},
    )
    sim.clock.advance(10)
    assert sim.get("", "pods", "ok")["status"]["phase"] == "Running"
    assert container_state(sim.get("", "pods", "nope"))["state"]["waiting"]["reason"] in (
        "ErrImagePull",
        "ImagePullBackOff",
    )
    assert split_image("nginx") == ("docker.io", "library/nginx", "latest")
    assert split_image("localhost:5000/a/b:1@sha256:x") == ("localhost:5000", "a/b", "1")
    # containerd pulls the digest when there is one, else the tag (what the mothership's mirrors serve)
    assert parse_image("localhost:5000/a/b:1@sha256:x").reference == "sha256:x"
    assert parse_image("ghcr.io/acme/shop").reference == "latest"


def test_crashing_containers_loop_with_growing_restart_counts(sim: Sim) -> None:
    sim.kubelet.behaviour.crashes = lambda pod, container: container["image"].startswith("crashy")
    sim.create("", "pods", {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "crashy:1"}]}})
    sim.clock.advance(6)  # started at 3.5, crashed at 5.5
    status = container_state(sim.get("", "pods", "p"))
    assert status["restartCount"] == 1 and status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert status["lastState"]["terminated"]["exitCode"] == 1
    restarts = [status["restartCount"]]
    for _ in range(4):
        sim.clock.advance(60)
        restarts.append(container_state(sim.get("", "pods", "p"))["restartCount"])
    assert restarts == sorted(restarts) and restarts[-1] > restarts[0]
    pod = sim.get("", "pods", "p")
    assert pod["status"]["phase"] == "Running" and condition(pod["status"]["conditions"], "Ready")["status"] == "False"


def test_repeated_events_are_aggregated_not_multiplied(sim: Sim) -> None:
    sim.create("", "pods", {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x:crashloop"}]}})
    sim.clock.advance(6 * 3600)  # six virtual hours of crash looping at the 300 s back-off cap
    restarts = container_state(sim.get("", "pods", "p"))["restartCount"]
    assert restarts > 60
    events = sim.store.list(sim.rt("", "events"), "default").items
    assert len(events) < 10
    backoff = next(e for e in events if e["reason"] == "BackOff")
    assert backoff["count"] >= restarts - 1 and backoff["lastTimestamp"] > backoff["firstTimestamp"]


def test_the_default_crash_rule_is_the_crashloop_tag(sim: Sim) -> None:
    sim.create(
        "",
        "pods",
        {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox:crashloop"}]}},
    )
    sim.clock.advance(6)
    assert container_state(sim.get("", "pods", "p"))["state"]["waiting"]["reason"] == "CrashLoopBackOff"


def test_a_statefulset_creates_ordered_pods_and_scales_down_from_the_top(sim: Sim) -> None:
    sim.create("apps", "statefulsets", workload("db", replicas=3, serviceName="db"))
    assert [p["metadata"]["name"] for p in sim.pods()] == ["db-0"]
    sim.clock.advance(5)
    assert [p["metadata"]["name"] for p in sim.pods()] == ["db-0", "db-1"]
    sim.clock.advance(10)
    names = [p["metadata"]["name"] for p in sim.pods()]
    assert names == ["db-0", "db-1", "db-2"]
    pod = sim.get("", "pods", "db-2")
    assert pod["spec"]["hostname"] == "db-2" and pod["spec"]["subdomain"] == "db"
    assert pod["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == "2"
    status = sim.get("apps", "statefulsets", "db")["status"]
    assert (status["readyReplicas"], status["currentRevision"]) == (3, status["updateRevision"])

    def shrink(obj: dict[str, Any]) -> dict[str, Any]:
        obj["spec"]["replicas"] = 1
        return obj

    sim.store.mutate(sim.rt("apps", "statefulsets"), "default", "db", shrink)
    sim.clock.advance(1)
    assert [p["metadata"]["name"] for p in sim.pods()] == ["db-0"]


def test_a_job_runs_to_completion(sim: Sim) -> None:
    job = {
        "metadata": {"name": "migrate"},
        "spec": {
            "completions": 2,
            "parallelism": 1,
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "migrate:1"}]}},
        },
    }
    sim.create("batch", "jobs", job)
    created = sim.get("batch", "jobs", "migrate")
    assert (
        created["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"] == created["metadata"]["uid"]
    )
    sim.clock.advance(10)
    assert sim.get("batch", "jobs", "migrate")["status"]["succeeded"] == 1
    sim.clock.advance(10)
    status = sim.get("batch", "jobs", "migrate")["status"]
    assert status["succeeded"] == 2 and status["completionTime"]
    assert condition(status["conditions"], "Complete")["status"] == "True"
    assert [p["status"]["phase"] for p in sim.pods()] == ["Succeeded", "Succeeded"]


def test_a_failing_job_stops_at_its_backoff_limit(sim: Sim) -> None:
    sim.kubelet.behaviour.crashes = lambda pod, container: True
    job = {
        "metadata": {"name": "broken"},
        "spec": {
            "backoffLimit": 1,
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "m:1"}]}},
        },
    }
    sim.create("batch", "jobs", job)
    sim.clock.advance(60)
    status = sim.get("batch", "jobs", "broken")["status"]
    failed = condition(status["conditions"], "Failed")
    assert failed["status"] == "True" and failed["reason"] == "BackoffLimitExceeded"
    assert status["failed"] == 2 and len(sim.pods()) == 2


def test_deleting_a_deployment_collects_its_replicasets_and_pods(sim: Sim) -> None:
    sim.create("apps", "deployments", workload("web", replicas=2))
    sim.clock.advance(10)
    sim.store.delete(sim.rt("apps", "deployments"), "default", "web")
    assert sim.store.list(sim.rt("apps", "replicasets"), "default").items == []
    assert sim.pods() == []


def test_graceful_pod_termination_follows_the_terminate_stage(sim: Sim) -> None:
    sim.kubelet.set_stages(terminate=5.0)
    sim.create("", "pods", {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "n:1"}]}})
    sim.clock.advance(10)
    pod, removed = sim.store.delete(sim.rt("", "pods"), "default", "p")
    assert not removed and pod["metadata"]["deletionGracePeriodSeconds"] == 30
    sim.clock.advance(4)
    assert sim.store.find(sim.rt("", "pods"), "default", "p") is not None
    sim.clock.advance(2)
    assert sim.store.find(sim.rt("", "pods"), "default", "p") is None


def test_the_same_seed_gives_the_same_names_and_uids() -> None:
    def run() -> list[tuple[str, str]]:
        made = make_sim(seed=7)
        made.create("apps", "deployments", workload("web", replicas=2))
        made.clock.advance(10)
        out = [(p["metadata"]["name"], p["metadata"]["uid"]) for p in made.pods()]
        made.store.close()
        return out

    assert run() == run()
