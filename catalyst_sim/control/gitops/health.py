"""Health of applied objects, computed like kstatus (what Flux's ``wait``/health checks use).

``Current`` means the object reached what its spec asks for; ``InProgress`` that it may still get
there; ``Failed`` that it will not without a change (a Deployment past its progress deadline, a
failed Job, a custom resource reporting ``Stalled``). Objects without a status contract are
``Current`` as soon as they exist — an ExternalSecret with no ESO controller behind it, say.

For an unhealthy workload the message also names *why*, from its pods: the waiting reason of a
container (``ImagePullBackOff``, ``CrashLoopBackOff`` ...) or an unschedulable pod. That is what a
person reading ``kubectl get ks`` (or an App card, R-CARD-02) needs to act on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from catalyst_sim.control.gitops.apply import Entry
from catalyst_sim.control.gitops.kube import Kube, KubeError

CURRENT = "Current"
IN_PROGRESS = "InProgress"
FAILED = "Failed"
NOT_FOUND = "NotFound"
_WORKLOADS = {("apps", "Deployment"), ("apps", "StatefulSet"), ("apps", "DaemonSet"), ("batch", "Job")}
# Kinds without a status contract: kstatus calls them Current as soon as they exist, and they were
# just applied, so reading them back would only cost a request per object per poll.
_STATIC = {
    ("", "Namespace"), ("", "Service"), ("", "ConfigMap"), ("", "Secret"), ("", "ServiceAccount"),
    ("", "Endpoints"), ("", "LimitRange"), ("", "ResourceQuota"), ("rbac.authorization.k8s.io", "Role"),
    ("rbac.authorization.k8s.io", "RoleBinding"), ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"), ("networking.k8s.io", "NetworkPolicy"),
    ("policy", "PodDisruptionBudget"),
}


@dataclass(frozen=True)
class ObjectHealth:
    ref: str
    status: str
    message: str = ""

    def describe(self) -> str:
        detail = f": {self.message}" if self.message else ""
        return f"{self.ref} status: '{self.status}'{detail}"


def _cond(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == kind), None)


def _stale(obj: dict[str, Any]) -> bool:
    observed = (obj.get("status") or {}).get("observedGeneration")
    generation = (obj.get("metadata") or {}).get("generation")
    return observed is not None and generation is not None and int(observed) < int(generation)


def deployment_status(obj: dict[str, Any]) -> tuple[str, str]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    want = int(spec.get("replicas", 1))
    if _stale(obj) or "observedGeneration" not in status:
        return IN_PROGRESS, "Deployment generation not yet observed"
    progressing = _cond(obj, "Progressing")
    if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
        return FAILED, "Progress deadline exceeded"
    updated, available = int(status.get("updatedReplicas", 0)), int(status.get("availableReplicas", 0))
    total = int(status.get("replicas", 0))
    if updated < want:
        return IN_PROGRESS, f"Updated: {updated}/{want}"
    if total > updated:
        return IN_PROGRESS, f"Pending termination: {total - updated}"
    if available < want:
        return IN_PROGRESS, f"Available: {available}/{want}"
    return CURRENT, f"Deployment is available. Replicas: {want}"


def statefulset_status(obj: dict[str, Any]) -> tuple[str, str]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    want = int(spec.get("replicas", 1))
    if _stale(obj) or "observedGeneration" not in status:
        return IN_PROGRESS, "StatefulSet generation not yet observed"
    ready = int(status.get("readyReplicas", 0))
    if ready < want:
        return IN_PROGRESS, f"Ready: {ready}/{want}"
    if (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate":
        if int(status.get("updatedReplicas", 0)) < want:
            return IN_PROGRESS, f"Updated: {status.get('updatedReplicas', 0)}/{want}"
        if status.get("currentRevision") != status.get("updateRevision"):
            return IN_PROGRESS, f"Waiting for rollout to finish: revision {status.get('updateRevision')}"
    return CURRENT, f"All replicas scheduled as expected. Replicas: {want}"


def daemonset_status(obj: dict[str, Any]) -> tuple[str, str]:
    status = obj.get("status") or {}
    if _stale(obj) or "observedGeneration" not in status:
        return IN_PROGRESS, "DaemonSet generation not yet observed"
    want = int(status.get("desiredNumberScheduled", 0))
    available = int(status.get("numberAvailable", 0))
    if available < want:
        return IN_PROGRESS, f"Available: {available}/{want}"
    return CURRENT, f"All replicas scheduled as expected. Replicas: {want}"


def job_status(obj: dict[str, Any]) -> tuple[str, str]:
    failed, complete = _cond(obj, "Failed"), _cond(obj, "Complete")
    if failed and failed.get("status") == "True":
        return FAILED, f"Job failed: {failed.get('reason') or failed.get('message', '')}".rstrip(": ")
    if complete and complete.get("status") == "True":
        return CURRENT, "Job Completed"
    return IN_PROGRESS, "Job in progress"


def generic_status(obj: dict[str, Any]) -> tuple[str, str]:
    """kstatus for anything else: conditions and observedGeneration when the object has them."""
    if _stale(obj):
        return IN_PROGRESS, "generation not yet observed"
    stalled, reconciling, ready = _cond(obj, "Stalled"), _cond(obj, "Reconciling"), _cond(obj, "Ready")
    if stalled and stalled.get("status") == "True":
        return FAILED, str(stalled.get("message") or stalled.get("reason") or "Stalled")
    if reconciling and reconciling.get("status") == "True":
        return IN_PROGRESS, str(reconciling.get("message") or "Reconciling")
    if ready and ready.get("status") == "False":
        return IN_PROGRESS, str(ready.get("message") or ready.get("reason") or "not ready")
    return CURRENT, ""


def external_secret_status(obj: dict[str, Any]) -> tuple[str, str]:
    """kstatus proper for ESO's ExternalSecret: only ``Reconciling``/``Stalled`` and the generation count.

    kstatus does not read ``Ready`` of kinds it does not know, and ESO sets only ``Ready``; so a failing
    sync does not fail Flux's health check (the App card shows it as Degraded instead, from the
    ExternalSecret's own status — see :mod:`catalyst_sim.control.secrets.service`).
    """
    if _stale(obj):
        return IN_PROGRESS, "generation not yet observed"
    stalled, reconciling = _cond(obj, "Stalled"), _cond(obj, "Reconciling")
    if stalled and stalled.get("status") == "True":
        return FAILED, str(stalled.get("message") or stalled.get("reason") or "Stalled")
    if reconciling and reconciling.get("status") == "True":
        return IN_PROGRESS, str(reconciling.get("message") or "Reconciling")
    return CURRENT, ""


def object_status(entry: Entry, obj: dict[str, Any]) -> tuple[str, str]:
    key = (entry.group, entry.kind)
    if key == ("external-secrets.io", "ExternalSecret"):
        return external_secret_status(obj)
    if key == ("apps", "Deployment"):
        return deployment_status(obj)
    if key == ("apps", "StatefulSet"):
        return statefulset_status(obj)
    if key == ("apps", "DaemonSet"):
        return daemonset_status(obj)
    if key == ("batch", "Job"):
        return job_status(obj)
    return generic_status(obj)


def pod_problem(pod: dict[str, Any]) -> str | None:
    """Why one pod is not ready, in kubelet words (``None`` when it is ready or merely starting)."""
    status = pod.get("status") or {}
    name = (pod.get("metadata") or {}).get("name")
    scheduled = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), None)
    if scheduled and scheduled.get("status") == "False":
        return f"pod {name}: {scheduled.get('reason', 'Unschedulable')}: {scheduled.get('message', '')}".rstrip(": ")
    for container in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        state = container.get("state") or {}
        waiting, terminated = state.get("waiting"), state.get("terminated")
        if waiting and waiting.get("reason") not in (None, "ContainerCreating", "PodInitializing"):
            message = f": {waiting['message']}" if waiting.get("message") else ""
            return f"pod {name}: container {container.get('name')}: {waiting['reason']}{message}"
        if terminated and terminated.get("exitCode", 0) != 0:
            return f"pod {name}: container {container.get('name')}: {terminated.get('reason', 'Error')}"
    return None


def _selector(obj: dict[str, Any]) -> str | None:
    labels = (((obj.get("spec") or {}).get("selector") or {}).get("matchLabels")) or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or None


def check(kube: Kube, entries: list[Entry]) -> list[ObjectHealth]:
    """The health of every inventory object (blocking: reads each through the API)."""
    results: list[ObjectHealth] = []
    for entry in entries:
        if (entry.group, entry.kind) in _STATIC:
            continue
        try:
            obj = kube.get(entry.api_version, entry.kind, entry.name, entry.namespace or None)
        except KubeError as exc:
            results.append(ObjectHealth(entry.ref, IN_PROGRESS, exc.message))
            continue
        if obj is None:
            results.append(ObjectHealth(entry.ref, NOT_FOUND, "object not found"))
            continue
        status, message = object_status(entry, obj)
        if status != CURRENT and (entry.group, entry.kind) in _WORKLOADS and entry.namespace:
            problems = _pod_problems(kube, entry, obj)
            if problems:
                message = f"{message}; {'; '.join(problems)}"
        results.append(ObjectHealth(entry.ref, status, message))
    return results


def _pod_problems(kube: Kube, entry: Entry, obj: dict[str, Any]) -> list[str]:
    selector = _selector(obj)
    if selector is None:
        return []
    try:
        pods = kube.list("v1", "Pod", entry.namespace, label_selector=selector)
    except KubeError:
        return []
    problems = [p for p in (pod_problem(pod) for pod in sorted(pods, key=lambda p: p["metadata"]["name"])) if p]
    return problems[:3]


def unhealthy(results: list[ObjectHealth]) -> list[ObjectHealth]:
    return [r for r in results if r.status != CURRENT]
