"""A simulated node agent (KWOK-style): pods move through stages on the cluster's clock.

Each pod goes scheduled → ContainerCreating (pulling) → Running (started) → Ready, one timer per
stage, with durations from :class:`PodStages` (per cluster, changeable at any time). Pods of Jobs
(``restartPolicy`` Never/OnFailure) run for ``complete`` seconds and succeed. Failures are injected
by rules on :class:`KubeletBehaviour`:

* an image whose pull fails — by default a tag in ``missing_tags`` (``:does-not-exist``) or, when
  ``known_registries`` is set, a registry not in it — waits in ``ErrImagePull`` then
  ``ImagePullBackOff``, retried with the kubelet's doubling back-off (10 s … 300 s);
* a container that crashes — by default a tag in ``crash_tags`` (``:crashloop``) — runs
  ``crash_after`` seconds, exits 1, and restarts in ``CrashLoopBackOff`` with a growing
  ``restartCount`` (or fails the pod when ``restartPolicy: Never``).

With a :class:`~catalyst_sim.clock.VirtualClock` nothing moves until the clock is advanced, and an
``advance()`` returns with every due stage applied; with a wall clock the same timers fire in real
time. Status is written through the store's ``/status`` path, like a real kubelet.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from .controllers import condition, record_event
from .images import parse_image
from .patch import clone
from .store import ClusterStore, Event

ImageRule = Callable[[str], bool]
# Pulls an image over the (simulated) network as the node's containerd would: None when it was
# pulled, else the reason it was not (shown in ErrImagePull). Gets the node's store to read its config.
ImagePuller = Callable[["ClusterStore", str], "str | None"]
CrashRule = Callable[[dict[str, Any], dict[str, Any]], bool]


@dataclass(frozen=True)
class PodStages:
    """Seconds (of the cluster's clock) each stage takes."""

    schedule: float = 0.0  # created → bound to the node (PodScheduled)
    pull: float = 1.0  # ContainerCreating: pulling images
    start: float = 0.5  # image present → container running
    ready: float = 0.5  # running → readiness probe passes
    complete: float = 1.0  # run-to-completion containers (Jobs) → exit 0
    crash_after: float = 1.0  # a crashing container runs this long, then exits 1
    terminate: float = 0.0  # graceful deletion → gone (0: deleted pods vanish at once)
    backoff_initial: float = 10.0
    backoff_max: float = 300.0


def split_image(image: str) -> tuple[str, str, str]:
    """(registry, repository, tag) the way container runtimes read an image reference."""
    ref = parse_image(image)
    return ref.registry, ref.repository, ref.tag or ("" if ref.digest else "latest")


@dataclass
class KubeletBehaviour:
    """Stage timings and failure rules of one cluster's simulated kubelet.

    ``image_pull_fails``/``crashes`` override the tag/registry defaults when set. Adjusting any
    field takes effect for stages scheduled from then on.
    """

    stages: PodStages = field(default_factory=PodStages)
    known_registries: frozenset[str] | None = None
    missing_tags: frozenset[str] = frozenset({"does-not-exist"})
    crash_tags: frozenset[str] = frozenset({"crashloop"})
    image_pull_fails: ImageRule | None = None
    image_puller: ImagePuller | None = None
    crashes: CrashRule | None = None
    node_name: str = "sim-node-1"

    def pull_fails(self, image: str) -> bool:
        if self.image_pull_fails is not None:
            return self.image_pull_fails(image)
        registry, _, tag = split_image(image)
        if tag in self.missing_tags:
            return True
        return self.known_registries is not None and registry not in self.known_registries

    def crashes_now(self, pod: dict[str, Any], container: dict[str, Any]) -> bool:
        if self.crashes is not None:
            return self.crashes(pod, container)
        return split_image(str(container.get("image", "")))[2] in self.crash_tags


@dataclass
class _Container:
    name: str
    image: str
    state: dict[str, Any] = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: dict[str, Any] = field(default_factory=dict)
    ready: bool = False
    started: bool = False
    restarts: int = 0
    pull_attempts: int = 0
    container_id: str = ""
    seq: int = 0  # bumps whenever a step is scheduled: only the latest pending step may run


@dataclass
class _PodRun:
    uid: str
    namespace: str
    name: str
    restart_policy: str
    containers: dict[str, _Container]
    generation: int = 0  # bumps on every transition: stale timers recognise themselves
    scheduled: bool = False


class Kubelet:
    """Drives every pod of one cluster; owns the node object it pretends to be."""

    def __init__(self, store: ClusterStore, behaviour: KubeletBehaviour | None = None) -> None:
        self.store = store
        self.behaviour = behaviour or KubeletBehaviour()
        self.pods_rt = store.registry.require("", "v1", "pods")
        self.nodes_rt = store.registry.require("", "v1", "nodes")
        self._runs: dict[tuple[str, str], _PodRun] = {}
        self._lock = threading.RLock()
        self._ip = 1
        self.apply_behaviour()
        self._create_node()
        store.add_reaction(self._react)

    # ------------------------------------------------------------------ configuration

    def apply_behaviour(self) -> None:
        self.store.graceful_pod_deletion = self.behaviour.stages.terminate > 0

    def set_stages(self, **durations: float) -> PodStages:
        with self.store.lock:
            self.behaviour.stages = replace(self.behaviour.stages, **durations)
            self.apply_behaviour()
            return self.behaviour.stages

    def _create_node(self) -> None:
        name = self.behaviour.node_name
        if self.store.find(self.nodes_rt, "", name) is not None:
            return
        now = self.store.timestamp()
        node = {
            "metadata": {
                "name": name,
                "labels": {
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "node-role.kubernetes.io/control-plane": "",
                    "type": "kwok",
                },
            },
            "spec": {"podCIDR": "10.244.0.0/24"},
        }
        created = self.store.create(self.nodes_rt, "", node)

        def status(current: dict[str, Any]) -> dict[str, Any]:
            current["status"] = {
                "capacity": {"cpu": "32", "memory": "256Gi", "pods": "1000", "ephemeral-storage": "1Ti"},
                "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "1000", "ephemeral-storage": "1Ti"},
                "conditions": [
                    {
                        "type": t,
                        "status": "False",
                        "reason": f"Kubelet Has{r}",
                        "message": m,
                        "lastHeartbeatTime": now,
                        "lastTransitionTime": now,
                    }
                    for t, r, m in (
                        ("MemoryPressure", "SufficientMemory", "kubelet has sufficient memory"),
                        ("DiskPressure", "NoDiskPressure", "kubelet has no disk pressure"),
                        ("PIDPressure", "SufficientPID", "kubelet has sufficient PID available"),
                    )
                ]
                + [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "KubeletReady",
                        "message": "kubelet is posting ready status",
                        "lastHeartbeatTime": now,
                        "lastTransitionTime": now,
                    }
                ],
                "addresses": [
                    {"type": "InternalIP", "address": "10.0.0.1"},
                    {"type": "Hostname", "address": name},
                ],
                "nodeInfo": {
                    "kubeletVersion": "v1.37.0",
                    "containerRuntimeVersion": "catalyst-sim://1",
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                    "osImage": "catalyst-sim",
                    "kernelVersion": "6.1.0",
                    "kubeProxyVersion": "",
                    "machineID": "",
                    "systemUUID": "",
                    "bootID": "",
                },
            }
            return current

        self.store.mutate(
            self.nodes_rt,
            "",
            created["metadata"]["name"],
            status,
            subresource="status",
        )

    # ------------------------------------------------------------------ events

    def _react(self, event: Event) -> None:
        if event.gr != ("", "pods"):
            return
        key = (event.namespace, event.name)
        meta = event.obj["metadata"]
        if event.type == "DELETED":
            self._runs.pop(key, None)
            return
        run = self._runs.get(key)
        if event.type == "ADDED" or run is None or run.uid != meta["uid"]:
            if (event.obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                return
            spec = event.obj.get("spec") or {}
            run = _PodRun(
                meta["uid"],
                event.namespace,
                event.name,
                spec.get("restartPolicy", "Always"),
                {c["name"]: _Container(c["name"], str(c.get("image", ""))) for c in spec.get("containers") or []},
            )
            self._runs[key] = run
            self._schedule(run, self.behaviour.stages.schedule, self._bind)
            return
        if meta.get("deletionTimestamp") and (event.old or {}).get("metadata", {}).get("deletionTimestamp") is None:
            grace = int(meta.get("deletionGracePeriodSeconds") or 0)
            self._schedule(run, min(self.behaviour.stages.terminate, grace) if grace else 0, self._kill)
            return
        images = {c["name"]: str(c.get("image", "")) for c in (event.obj.get("spec") or {}).get("containers") or []}
        for name, image in images.items():  # an image update restarts the container with the new image
            container = run.containers.get(name)
            if container is not None and container.image != image and run.scheduled:
                container.image = image
                container.pull_attempts = 0
                container.state = {"waiting": {"reason": "ContainerCreating"}}
                container.ready = container.started = False
                self._schedule_container(run, self.behaviour.stages.pull, self._pulled, name)

    def _schedule(self, run: _PodRun, seconds: float, step: Callable[[_PodRun], None]) -> None:
        run.generation += 1
        expected = (run.uid, run.generation)

        def fire(key: tuple[str, str]) -> None:
            current = self._runs.get(key)
            if current is None or (current.uid, current.generation) != expected:
                return  # superseded by a later transition or the pod is gone
            step(current)

        self.store.after(seconds, fire, (run.namespace, run.name))

    def _schedule_container(
        self, run: _PodRun, seconds: float, step: Callable[[_PodRun, str], None], name: str
    ) -> None:
        uid = run.uid
        container = run.containers[name]
        container.seq += 1
        marker = container.seq

        def fire(key: tuple[str, str, str, int]) -> None:
            current = self._runs.get(key[:2])
            if current is None or current.uid != uid:
                return
            now = current.containers.get(name)
            if now is None or now.seq != marker:
                return
            step(current, name)

        self.store.after(seconds, fire, (run.namespace, run.name, name, marker))

    # ------------------------------------------------------------------ stages

    def _pod(self, run: _PodRun) -> dict[str, Any] | None:
        pod = self.store.find(self.pods_rt, run.namespace, run.name)
        if pod is None or pod["metadata"]["uid"] != run.uid:
            return None
        return pod

    def _bind(self, run: _PodRun) -> None:
        pod = self._pod(run)
        if pod is None:
            return
        node = self.behaviour.node_name

        def bind(current: dict[str, Any]) -> dict[str, Any]:
            current["spec"]["nodeName"] = node
            return current

        if not (pod.get("spec") or {}).get("nodeName"):
            self.store.mutate(self.pods_rt, run.namespace, run.name, bind)
        run.scheduled = True
        self._ip += 1
        ip = f"10.244.{(self._ip >> 8) & 255}.{self._ip & 255}"
        now = self.store.timestamp()

        def status(current: dict[str, Any]) -> dict[str, Any]:
            st = current.setdefault("status", {})
            st.update(
                {
                    "phase": "Pending",
                    "hostIP": "10.0.0.1",
                    "hostIPs": [{"ip": "10.0.0.1"}],
                    "podIP": ip,
                    "podIPs": [{"ip": ip}],
                    "startTime": now,
                }
            )
            st["conditions"] = [
                {
                    "type": "PodReadyToStartContainers",
                    "status": "False",
                    "lastProbeTime": None,
                    "lastTransitionTime": now,
                },
                {"type": "Initialized", "status": "True", "lastProbeTime": None, "lastTransitionTime": now},
                {
                    "type": "Ready",
                    "status": "False",
                    "lastProbeTime": None,
                    "lastTransitionTime": now,
                    "reason": "ContainersNotReady",
                    "message": f"containers with unready status: [{' '.join(run.containers)}]",
                },
                {
                    "type": "ContainersReady",
                    "status": "False",
                    "lastProbeTime": None,
                    "lastTransitionTime": now,
                    "reason": "ContainersNotReady",
                    "message": f"containers with unready status: [{' '.join(run.containers)}]",
                },
                {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": now},
            ]
            st["containerStatuses"] = self._container_statuses(run)
            return current

        pod = self.store.mutate(
            self.pods_rt,
            run.namespace,
            run.name,
            status,
            subresource="status",
        )
        record_event(
            self.store,
            pod,
            "Normal",
            "Scheduled",
            f"Successfully assigned {run.namespace}/{run.name} to {node}",
            "default-scheduler",
        )
        for name, container in run.containers.items():
            record_event(self.store, pod, "Normal", "Pulling", f'Pulling image "{container.image}"', "kubelet")
            self._schedule_container(run, self.behaviour.stages.pull, self._pulled, name)

    def _pulled(self, run: _PodRun, name: str) -> None:
        pod = self._pod(run)
        if pod is None:
            return
        container = run.containers[name]
        container.pull_attempts += 1
        reason = "not found" if self.behaviour.pull_fails(container.image) else None
        if reason is None and self.behaviour.image_puller is not None:
            reason = self.behaviour.image_puller(self.store, container.image)
        if reason is not None:
            code = "NotFound" if reason == "not found" else "Unknown"
            container.state = {
                "waiting": {
                    "reason": "ErrImagePull",
                    "message": f"rpc error: code = {code} desc = failed to pull and unpack image "
                    f'"{_qualified(container.image)}": {reason}',
                }
            }
            self._publish(run)
            record_event(
                self.store,
                pod,
                "Warning",
                "Failed",
                f'Failed to pull image "{container.image}": {reason}',
                "kubelet",
            )
            record_event(self.store, pod, "Warning", "Failed", "Error: ErrImagePull", "kubelet")
            self._schedule_container(run, min(self.behaviour.stages.pull, 1.0) or 0.001, self._pull_backoff, name)
            return
        record_event(self.store, pod, "Normal", "Pulled", f'Successfully pulled image "{container.image}"', "kubelet")
        self._schedule_container(run, self.behaviour.stages.start, self._started, name)

    def _pull_backoff(self, run: _PodRun, name: str) -> None:
        pod = self._pod(run)
        if pod is None:
            return
        container = run.containers[name]
        container.state = {
            "waiting": {
                "reason": "ImagePullBackOff",
                "message": f'Back-off pulling image "{container.image}"',
            }
        }
        self._publish(run)
        record_event(self.store, pod, "Normal", "BackOff", f'Back-off pulling image "{container.image}"', "kubelet")
        record_event(self.store, pod, "Warning", "Failed", "Error: ImagePullBackOff", "kubelet")
        self._schedule_container(run, self._backoff(container.pull_attempts), self._pulled, name)

    def _started(self, run: _PodRun, name: str) -> None:
        pod = self._pod(run)
        if pod is None:
            return
        container = run.containers[name]
        container.container_id = f"containerd://{self.store.random_suffix(12)}{container.restarts}"
        container.state = {"running": {"startedAt": self.store.timestamp()}}
        container.started = True
        container.ready = False
        self._publish(run)
        record_event(self.store, pod, "Normal", "Created", f"Created container: {name}", "kubelet")
        record_event(self.store, pod, "Normal", "Started", f"Started container {name}", "kubelet")
        stages = self.behaviour.stages
        spec_container: dict[str, Any] = next(
            (c for c in (pod.get("spec") or {}).get("containers") or [] if c.get("name") == name), {}
        )
        if self.behaviour.crashes_now(pod, spec_container):
            self._schedule_container(run, stages.crash_after, lambda r, n: self._exited(r, n, 1), name)
        elif run.restart_policy != "Always":
            self._schedule_container(run, stages.complete, lambda r, n: self._exited(r, n, 0), name)
        else:
            self._schedule_container(run, stages.ready, self._became_ready, name)

    def _became_ready(self, run: _PodRun, name: str) -> None:
        if self._pod(run) is None:
            return
        run.containers[name].ready = True
        self._publish(run)

    def _exited(self, run: _PodRun, name: str, code: int) -> None:
        pod = self._pod(run)
        if pod is None:
            return
        container = run.containers[name]
        started = (container.state.get("running") or {}).get("startedAt", self.store.timestamp())
        terminated = {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": started,
            "finishedAt": self.store.timestamp(),
            "containerID": container.container_id,
        }
        container.ready = False
        container.started = False
        restart = run.restart_policy == "Always" or (run.restart_policy == "OnFailure" and code != 0)
        if not restart:
            container.state = {"terminated": terminated}
            self._publish(run)
            return
        container.last_state = {"terminated": terminated}
        container.restarts += 1
        delay = self._backoff(container.restarts)
        container.state = {
            "waiting": {
                "reason": "CrashLoopBackOff",
                "message": f"back-off {_duration(delay)} restarting failed container={name} "
                f"pod={run.name}_{run.namespace}({run.uid})",
            }
        }
        self._publish(run)
        record_event(
            self.store,
            pod,
            "Warning",
            "BackOff",
            f"Back-off restarting failed container {name} in pod {run.name}_{run.namespace}({run.uid})",
            "kubelet",
        )
        self._schedule_container(run, delay, self._started, name)

    def _kill(self, run: _PodRun) -> None:
        pod = self._pod(run)
        if pod is None:
            return
        try:
            self.store.delete(self.pods_rt, run.namespace, run.name, grace_period=0)
        except Exception:  # already gone
            return

    def _backoff(self, attempt: int) -> float:
        stages = self.behaviour.stages
        return min(stages.backoff_initial * (2 ** max(0, attempt - 1)), stages.backoff_max)

    # ------------------------------------------------------------------ status

    @staticmethod
    def _container_statuses(run: _PodRun) -> list[dict[str, Any]]:
        out = []
        for name, container in run.containers.items():
            entry: dict[str, Any] = {
                "name": name,
                "image": container.image,
                "imageID": "",
                "ready": container.ready,
                "started": container.started,
                "restartCount": container.restarts,
                "state": clone(container.state),
            }
            if container.last_state:
                entry["lastState"] = clone(container.last_state)
            else:
                entry["lastState"] = {}
            if container.container_id:
                entry["containerID"] = container.container_id
                entry["imageID"] = f"{_qualified(container.image)}@sha256:{'0' * 64}"
            out.append(entry)
        return out

    def _publish(self, run: _PodRun) -> None:
        """Write the pod status that the containers' states add up to."""
        now = self.store.timestamp()
        containers = list(run.containers.values())
        all_ready = all(c.ready for c in containers)
        terminated = [c for c in containers if "terminated" in c.state]
        if containers and len(terminated) == len(containers):
            phase = "Succeeded" if all(c.state["terminated"]["exitCode"] == 0 for c in terminated) else "Failed"
        elif any("running" in c.state or c.restarts for c in containers):
            phase = "Running"
        else:
            phase = "Pending"
        unready = [c.name for c in containers if not c.ready]

        def status(current: dict[str, Any]) -> dict[str, Any]:
            st = current.setdefault("status", {})
            st["phase"] = phase
            conditions = st.get("conditions") or []
            running_any = any("running" in c.state for c in containers) or phase in (
                "Running",
                "Succeeded",
                "Failed",
            )
            st["conditions"] = [
                _cond(conditions, "PodReadyToStartContainers", running_any, now),
                _cond(conditions, "Initialized", True, now),
                _cond(conditions, "Ready", all_ready, now, *self._unready(phase, unready)),
                _cond(conditions, "ContainersReady", all_ready, now, *self._unready(phase, unready)),
                _cond(conditions, "PodScheduled", True, now),
            ]
            st["containerStatuses"] = self._container_statuses(run)
            return current

        self.store.mutate(
            self.pods_rt,
            run.namespace,
            run.name,
            status,
            subresource="status",
        )

    @staticmethod
    def _unready(phase: str, unready: list[str]) -> tuple[str, str]:
        if phase in ("Succeeded", "Failed"):
            return "PodCompleted", ""
        return "ContainersNotReady", f"containers with unready status: [{' '.join(unready)}]"


def _cond(
    conditions: list[dict[str, Any]], kind: str, ok: bool, now: str, reason: str = "", message: str = ""
) -> dict[str, Any]:
    status = "True" if ok else "False"
    existing = condition(conditions, kind)
    entry: dict[str, Any] = {
        "type": kind,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": existing["lastTransitionTime"] if existing and existing.get("status") == status else now,
    }
    if not ok and reason:
        entry["reason"] = reason
        if message:
            entry["message"] = message
    return entry


def _qualified(image: str) -> str:
    registry, repository, tag = split_image(image)
    return f"{registry}/{repository}:{tag}" if tag else f"{registry}/{repository}"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"
