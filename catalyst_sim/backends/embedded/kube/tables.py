"""Server-side printing: ``meta.k8s.io/v1 Table`` responses, the columns ``kubectl get`` shows.

kubectl asks for ``application/json;as=Table;v=v1;g=meta.k8s.io`` and prints whatever columns the
server returns (it falls back to NAME/AGE for plain lists). Columns follow upstream's printers for
the built-in kinds (a Pod's READY/STATUS/RESTARTS, a Deployment's UP-TO-DATE/AVAILABLE ...) and a
CRD's ``additionalPrinterColumns`` (default: Age). Ages and durations are computed on the
cluster's clock, so under virtual time they show virtual ages.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .resources import PrinterColumn, ResourceType
from .selectors import selector_string

Row = Callable[[dict[str, Any], datetime], list[Any]]


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def human_duration(seconds: float) -> str:
    """Upstream's ``duration.HumanDuration``: 45s, 2m30s, 15m, 3h20m, 5h, 2d3h, 45d, 2y30d."""
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    secs = int(seconds)
    if secs < 120:
        return f"{secs}s"
    minutes = secs // 60
    if minutes < 10:
        rest = secs % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 192:
        rest = hours % 24
        return f"{days}d{rest}h" if rest else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    years = days // 365
    if years < 8:
        rest = days % 365
        return f"{years}y{rest}d" if rest else f"{years}y"
    return f"{years}y"


def _since(timestamp: str | None, now: datetime) -> str:
    if not timestamp:
        return "<unknown>"
    try:
        moment = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=now.tzinfo)
    except ValueError:
        return "<unknown>"
    return human_duration((now - moment).total_seconds())


def _age(obj: dict[str, Any], now: datetime) -> str:
    return _since(obj["metadata"].get("creationTimestamp"), now)


def _col(name: str, kind: str = "string", priority: int = 0, fmt: str = "", description: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "type": kind,
        "format": fmt,
        "description": description or name,
        "priority": priority,
    }


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj.get("spec") or {}
    return ((spec.get("template") or {}).get("spec") or {}).get("containers") or []


def _names(obj: dict[str, Any]) -> str:
    return ",".join(c.get("name", "") for c in _containers(obj))


def _images(obj: dict[str, Any]) -> str:
    return ",".join(c.get("image", "") for c in _containers(obj))


def _pod_status(pod: dict[str, Any]) -> str:
    """The STATUS column: a waiting/terminated reason beats the phase, as in ``kubectl get pods``."""
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Unknown"
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif (state.get("terminated") or {}).get("reason"):
            reason = state["terminated"]["reason"]
        elif state.get("terminated"):
            term = state["terminated"]
            reason = f"Signal:{term['signal']}" if term.get("signal") else f"ExitCode:{term.get('exitCode', 0)}"
    if reason == "Running" and not (status.get("containerStatuses") or []):
        reason = "Running"
    if pod["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return str(reason)


def _pod_row(pod: dict[str, Any], now: datetime) -> list[Any]:
    status = pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    total = len((pod.get("spec") or {}).get("containers") or [])
    ready = sum(1 for c in statuses if c.get("ready"))
    restarts = sum(int(c.get("restartCount", 0)) for c in statuses)
    last = (
        max(((c.get("lastState") or {}).get("terminated") or {}).get("finishedAt", "") for c in statuses)
        if statuses
        else ""
    )
    restart_text = f"{restarts} ({_since(last, now)} ago)" if restarts and last else str(restarts)
    return [
        pod["metadata"]["name"],
        f"{ready}/{total}",
        _pod_status(pod),
        restart_text,
        _age(pod, now),
        status.get("podIP") or "<none>",
        (pod.get("spec") or {}).get("nodeName") or "<none>",
        "<none>",
        "<none>",
    ]


def _deployment_row(obj: dict[str, Any], now: datetime) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return [
        obj["metadata"]["name"],
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
        _age(obj, now),
        _names(obj),
        _images(obj),
        selector_string(spec.get("selector")) or "<none>",
    ]


def _replicaset_row(obj: dict[str, Any], now: datetime) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return [
        obj["metadata"]["name"],
        spec.get("replicas", 1),
        status.get("replicas", 0),
        status.get("readyReplicas", 0),
        _age(obj, now),
        _names(obj),
        _images(obj),
        selector_string(spec.get("selector")) or "<none>",
    ]


def _statefulset_row(obj: dict[str, Any], now: datetime) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return [
        obj["metadata"]["name"],
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
        _age(obj, now),
        _names(obj),
        _images(obj),
    ]


def _job_row(obj: dict[str, Any], now: datetime) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    if conditions.get("Complete") == "True":
        state = "Complete"
    elif conditions.get("Failed") == "True":
        state = "Failed"
    elif conditions.get("Suspended") == "True":
        state = "Suspended"
    elif conditions.get("FailureTarget") == "True":
        state = "FailureTarget"
    else:
        state = "Running"
    completions = spec.get("completions")
    done = (
        f"{status.get('succeeded', 0)}/{completions}"
        if completions is not None
        else f"{status.get('succeeded', 0)}/1 of {spec.get('parallelism', 1)}"
    )
    start, end = status.get("startTime"), status.get("completionTime")
    if start and end:
        duration = human_duration(
            (
                datetime.strptime(end, "%Y-%m-%dT%H:%M:%SZ") - datetime.strptime(start, "%Y-%m-%dT%H:%M:%SZ")
            ).total_seconds()
        )
    elif start:
        duration = _since(start, now)
    else:
        duration = ""
    return [
        obj["metadata"]["name"],
        state,
        done,
        duration,
        _age(obj, now),
        _names(obj),
        _images(obj),
        selector_string(spec.get("selector")) or "<none>",
    ]


def _service_row(obj: dict[str, Any], now: datetime) -> list[Any]:
    spec = obj.get("spec") or {}
    ports = (
        ",".join(
            f"{p.get('port')}{':' + str(p['nodePort']) if p.get('nodePort') else ''}/{p.get('protocol', 'TCP')}"
            for p in spec.get("ports") or []
        )
        or "<none>"
    )
    ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    external = ",".join(i.get("ip") or i.get("hostname", "") for i in ingress) or (
        "<pending>" if spec.get("type") == "LoadBalancer" else ",".join(spec.get("externalIPs") or []) or "<none>"
    )
    selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items())) or "<none>"
    return [
        obj["metadata"]["name"],
        spec.get("type", "ClusterIP"),
        spec.get("clusterIP") or "<none>",
        external,
        ports,
        _age(obj, now),
        selector,
    ]


def _event_row(obj: dict[str, Any], now: datetime) -> list[Any]:
    involved = obj.get("involvedObject") or {}
    last = obj.get("lastTimestamp") or obj.get("eventTime") or obj["metadata"].get("creationTimestamp")
    return [
        _since(last, now),
        obj.get("type", ""),
        obj.get("reason", ""),
        f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
        obj.get("message", ""),
        involved.get("fieldPath", ""),
        (obj.get("source") or {}).get("component", ""),
        _since(obj.get("firstTimestamp"), now),
        obj.get("count", 1),
        obj["metadata"]["name"],
    ]


def _node_row(obj: dict[str, Any], now: datetime) -> list[Any]:
    status = obj.get("status") or {}
    ready: dict[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    state = "Ready" if ready.get("status") == "True" else "NotReady"
    if (obj.get("spec") or {}).get("unschedulable"):
        state += ",SchedulingDisabled"
    roles = (
        ",".join(
            sorted(
                k.split("/", 1)[1]
                for k in (obj["metadata"].get("labels") or {})
                if k.startswith("node-role.kubernetes.io/")
            )
        )
        or "<none>"
    )
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    info = status.get("nodeInfo") or {}
    return [
        obj["metadata"]["name"],
        state,
        roles,
        _age(obj, now),
        info.get("kubeletVersion", ""),
        addresses.get("InternalIP", "<none>"),
        addresses.get("ExternalIP", "<none>"),
        info.get("osImage", ""),
        info.get("kernelVersion", ""),
        info.get("containerRuntimeVersion", ""),
    ]


_NAME = _col("Name", fmt="name", description="Name must be unique within a namespace.")
_AGE = _col(
    "Age",
    description="CreationTimestamp is a timestamp representing the server time when this object was created.",
)
_BUILTIN: dict[tuple[str, str], tuple[list[dict[str, Any]], Row]] = {
    ("", "pods"): (
        [
            _NAME,
            _col("Ready"),
            _col("Status"),
            _col("Restarts"),
            _AGE,
            _col("IP", priority=1),
            _col("Node", priority=1),
            _col("Nominated Node", priority=1),
            _col("Readiness Gates", priority=1),
        ],
        _pod_row,
    ),
    ("apps", "deployments"): (
        [
            _NAME,
            _col("Ready"),
            _col("Up-to-date", "integer"),
            _col("Available", "integer"),
            _AGE,
            _col("Containers", priority=1),
            _col("Images", priority=1),
            _col("Selector", priority=1),
        ],
        _deployment_row,
    ),
    ("apps", "replicasets"): (
        [
            _NAME,
            _col("Desired", "integer"),
            _col("Current", "integer"),
            _col("Ready", "integer"),
            _AGE,
            _col("Containers", priority=1),
            _col("Images", priority=1),
            _col("Selector", priority=1),
        ],
        _replicaset_row,
    ),
    ("apps", "statefulsets"): (
        [_NAME, _col("Ready"), _AGE, _col("Containers", priority=1), _col("Images", priority=1)],
        _statefulset_row,
    ),
    ("batch", "jobs"): (
        [
            _NAME,
            _col("Status"),
            _col("Completions"),
            _col("Duration"),
            _AGE,
            _col("Containers", priority=1),
            _col("Images", priority=1),
            _col("Selector", priority=1),
        ],
        _job_row,
    ),
    ("", "services"): (
        [
            _NAME,
            _col("Type"),
            _col("Cluster-IP"),
            _col("External-IP"),
            _col("Port(s)"),
            _AGE,
            _col("Selector", priority=1),
        ],
        _service_row,
    ),
    ("", "namespaces"): (
        [_NAME, _col("Status"), _AGE],
        lambda o, now: [o["metadata"]["name"], (o.get("status") or {}).get("phase", ""), _age(o, now)],
    ),
    ("", "configmaps"): (
        [_NAME, _col("Data", "integer"), _AGE],
        lambda o, now: [
            o["metadata"]["name"],
            len(o.get("data") or {}) + len(o.get("binaryData") or {}),
            _age(o, now),
        ],
    ),
    ("", "secrets"): (
        [_NAME, _col("Type"), _col("Data", "integer"), _AGE],
        lambda o, now: [
            o["metadata"]["name"],
            o.get("type", "Opaque"),
            len(o.get("data") or {}),
            _age(o, now),
        ],
    ),
    ("", "serviceaccounts"): (
        [_NAME, _col("Secrets", "integer"), _AGE],
        lambda o, now: [o["metadata"]["name"], len(o.get("secrets") or []), _age(o, now)],
    ),
    ("", "events"): (
        [
            _col("Last Seen"),
            _col("Type"),
            _col("Reason"),
            _col("Object"),
            _col("Message"),
            _col("Subobject", priority=1),
            _col("Source", priority=1),
            _col("First Seen", priority=1),
            _col("Count", "integer", priority=1),
            _col("Name", priority=1),
        ],
        _event_row,
    ),
    ("", "nodes"): (
        [
            _NAME,
            _col("Status"),
            _col("Roles"),
            _AGE,
            _col("Version"),
            _col("Internal-IP", priority=1),
            _col("External-IP", priority=1),
            _col("OS-Image", priority=1),
            _col("Kernel-Version", priority=1),
            _col("Container-Runtime", priority=1),
        ],
        _node_row,
    ),
    ("apiextensions.k8s.io", "customresourcedefinitions"): (
        [_NAME, _col("Created At", "date")],
        lambda o, now: [o["metadata"]["name"], o["metadata"].get("creationTimestamp", "")],
    ),
}


def _json_path(obj: Any, path: str) -> Any:
    current = obj
    for part in path.lstrip(".").split("."):
        if not part:
            continue
        if isinstance(current, dict):
            current = current.get(part)
        else:
            return None
        if current is None:
            return None
    return current


def _custom(columns: tuple[PrinterColumn, ...]) -> tuple[list[dict[str, Any]], Row]:
    defs = [_NAME] + [_col(c.name, c.type, c.priority, c.format, c.description or c.name) for c in columns]

    def row(obj: dict[str, Any], now: datetime) -> list[Any]:
        cells: list[Any] = [obj["metadata"]["name"]]
        for column in columns:
            value = _json_path(obj, column.json_path)
            if value is None:
                cells.append(None)
            elif column.type == "date":
                cells.append(_since(str(value), now))
            elif isinstance(value, (dict, list)):
                cells.append(json.dumps(value, separators=(",", ":")))
            else:
                cells.append(value)
        return cells

    return defs, row


_DEFAULT_CUSTOM = (PrinterColumn(name="Age", type="date", json_path=".metadata.creationTimestamp"),)


def table(
    rt: ResourceType,
    objects: list[dict[str, Any]],
    resource_version: str,
    include_object: str = "Metadata",
    now: datetime | None = None,
    headers: bool = True,
) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    if rt.crd is not None:
        defs, row = _custom(rt.printer_columns or _DEFAULT_CUSTOM)
    else:
        defs, row = _BUILTIN.get(rt.gr) or ([_NAME, _AGE], lambda o, n: [o["metadata"]["name"], _age(o, n)])
    rows = []
    for obj in objects:
        entry: dict[str, Any] = {"cells": row(obj, now)}
        if include_object == "Object":
            entry["object"] = obj
        elif include_object != "None":
            entry["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }
        rows.append(entry)
    out: dict[str, Any] = {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "rows": rows,
    }
    if headers:
        out["columnDefinitions"] = defs
    return out
