"""Per-kind create/update rules: the defaulting and validation real clients rely on.

Only the rules a client can observe on the calls we serve are here: fields the API server defaults
(a Deployment's strategy, a Pod's ``restartPolicy``/``phase``, a Service's ``clusterIP``, a
Namespace's ``kubernetes`` finalizer and name label, a Job's generated selector), and the 422s a
client gets for an invalid object (bad names, a selector that does not match the template, a Pod
without containers). Everything else is stored as sent.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import ApiError, invalid
from .resources import ResourceType
from .selectors import _KEY, _VALUE, from_label_selector, labels_match

if TYPE_CHECKING:
    from .store import ClusterStore

Cause = tuple[str, str, str]

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_DNS_LABEL_KINDS = {("", "namespaces"), ("", "services")}


def validate_name(rt: ResourceType, name: str) -> list[Cause]:
    if rt.crd is not None:
        if name in (".", "..") or "/" in name or "%" in name:
            return [
                (
                    "FieldValueInvalid",
                    "metadata.name",
                    f"Invalid value: \"{name}\": may not contain '/' or '%' and may not be '.' or '..'",
                )
            ]
        return []
    if rt.gr in _DNS_LABEL_KINDS:
        if len(name) > 63 or not _LABEL.match(name):
            return [("FieldValueInvalid", "metadata.name", f'Invalid value: "{name}": {_LABEL_MSG}')]
        return []
    if len(name) > 253 or not _SUBDOMAIN.match(name):
        return [("FieldValueInvalid", "metadata.name", f'Invalid value: "{name}": {_SUBDOMAIN_MSG}')]
    return []


def validate_meta(meta: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    for field in ("labels", "annotations"):
        value = meta.get(field)
        if value is not None and not isinstance(value, dict):
            causes.append(("FieldValueTypeInvalid", f"metadata.{field}", "Invalid value: must be a map"))
            continue
        for key, item in (value or {}).items():
            if not _KEY.match(key) or len(key.rpartition("/")[2]) > 63:
                causes.append(
                    (
                        "FieldValueInvalid",
                        f"metadata.{field}",
                        f'Invalid value: "{key}": name part must consist of alphanumeric characters, '
                        f"'-', '_' or '.', and must start and end with an alphanumeric character",
                    )
                )
            if not isinstance(item, str):
                causes.append(("FieldValueTypeInvalid", f"metadata.{field}.{key}", "Invalid value: must be a string"))
            elif field == "labels" and (len(item) > 63 or not _VALUE.match(item)):
                causes.append(
                    (
                        "FieldValueInvalid",
                        "metadata.labels",
                        f'Invalid value: "{item}": a valid label must be an empty string or consist '
                        f"of alphanumeric characters, '-', '_' or '.', and must start and end with "
                        f"an alphanumeric character",
                    )
                )
    for i, ref in enumerate(meta.get("ownerReferences") or []):
        for key in ("apiVersion", "kind", "name", "uid"):
            if not (isinstance(ref, dict) and ref.get(key)):
                causes.append(("FieldValueRequired", f"metadata.ownerReferences[{i}].{key}", "Required value"))
    return causes


# --------------------------------------------------------------------------------------------
# Defaults


def _default_pod_spec(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    if spec.get("serviceAccountName") or spec.get("serviceAccount"):
        spec.setdefault("serviceAccountName", spec.get("serviceAccount"))
    for group in ("initContainers", "containers"):
        for container in spec.get(group) or []:
            if not isinstance(container, dict):
                continue
            image = str(container.get("image", ""))
            tag = image.rpartition("/")[2]
            latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
            container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            container.setdefault("resources", {})
            for port in container.get("ports") or []:
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")


def _validate_pod_spec(spec: Any, field: str) -> list[Cause]:
    if not isinstance(spec, dict):
        return [("FieldValueRequired", field, "Required value")]
    containers = spec.get("containers")
    if not containers:
        return [("FieldValueRequired", f"{field}.containers", "Required value")]
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, container in enumerate(containers):
        if not isinstance(container, dict):
            causes.append(("FieldValueTypeInvalid", f"{field}.containers[{i}]", "Invalid value: must be an object"))
            continue
        name = container.get("name")
        if not name:
            causes.append(("FieldValueRequired", f"{field}.containers[{i}].name", "Required value"))
        elif not _LABEL.match(str(name)):
            causes.append(
                (
                    "FieldValueInvalid",
                    f"{field}.containers[{i}].name",
                    f'Invalid value: "{name}": {_LABEL_MSG}',
                )
            )
        elif name in seen:
            causes.append(("FieldValueDuplicate", f"{field}.containers[{i}].name", f'Duplicate value: "{name}"'))
        seen.add(str(name))
        if not container.get("image"):
            causes.append(("FieldValueRequired", f"{field}.containers[{i}].image", "Required value"))
    return causes


def _workload_selector(obj: dict[str, Any]) -> list[Cause]:
    spec = obj.get("spec") or {}
    selector = spec.get("selector")
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        return [("FieldValueRequired", "spec.selector", "Required value")]
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    try:
        reqs = from_label_selector(selector)
    except ApiError as exc:
        return [("FieldValueInvalid", "spec.selector", exc.message)]
    if not labels_match(reqs, labels):
        rendered = ", ".join(f"{k}:{v}" for k, v in sorted(labels.items()))
        return [
            (
                "FieldValueInvalid",
                "spec.template.metadata.labels",
                f"Invalid value: map[string]string{{{rendered}}}: `selector` does not match template `labels`",
            )
        ]
    return []


def _default_deployment(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    _default_pod_spec(spec.setdefault("template", {}).setdefault("spec", {}))


def _default_statefulset(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    update = spec.setdefault("updateStrategy", {"type": "RollingUpdate"})
    if update.get("type") == "RollingUpdate":
        update.setdefault("rollingUpdate", {}).setdefault("partition", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
    _default_pod_spec(spec.setdefault("template", {}).setdefault("spec", {}))


def _default_job(obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("parallelism", 1)
    if "completions" not in spec:
        spec["completions"] = 1 if spec["parallelism"] == 1 else None
    if spec["completions"] is None:
        del spec["completions"]
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatedOrFailed")
    template = spec.setdefault("template", {})
    _default_pod_spec(template.setdefault("spec", {}))
    if not spec.get("manualSelector"):
        uid = obj["metadata"]["uid"]
        name = obj["metadata"]["name"]
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
        labels = template.setdefault("metadata", {}).setdefault("labels", {})
        labels.update(
            {
                "batch.kubernetes.io/controller-uid": uid,
                "batch.kubernetes.io/job-name": name,
                "controller-uid": uid,
                "job-name": name,
            }
        )


def _default_service(store: ClusterStore, obj: dict[str, Any]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] != "ExternalName":
        if not spec.get("clusterIP"):
            spec["clusterIP"] = store.allocate_cluster_ip()
        spec.setdefault("clusterIPs", [spec["clusterIP"]] if spec["clusterIP"] != "None" else ["None"])
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
    obj["status"] = {"loadBalancer": {}}


def _default_secret(obj: dict[str, Any]) -> list[Cause]:
    obj.setdefault("type", "Opaque")
    string_data = obj.pop("stringData", None) or {}
    if string_data:
        data = obj.setdefault("data", {}) or {}
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        obj["data"] = data
    causes: list[Cause] = []
    for key, value in (obj.get("data") or {}).items():
        try:
            base64.b64decode(str(value), validate=True)
        except ValueError:
            causes.append(("FieldValueInvalid", f"data[{key}]", "Invalid value: illegal base64 data"))
    return causes


def _default_crd(obj: dict[str, Any]) -> list[Cause]:
    spec = obj.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group", "")
    plural = names.get("plural", "")
    causes: list[Cause] = []
    if not group:
        causes.append(("FieldValueRequired", "spec.group", "Required value"))
    if not plural:
        causes.append(("FieldValueRequired", "spec.names.plural", "Required value"))
    if not names.get("kind"):
        causes.append(("FieldValueRequired", "spec.names.kind", "Required value"))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(
            (
                "FieldValueNotSupported",
                "spec.scope",
                f'Unsupported value: "{spec.get("scope", "")}": supported values: "Cluster", "Namespaced"',
            )
        )
    versions = spec.get("versions") or []
    if not versions:
        causes.append(("FieldValueRequired", "spec.versions", "Required value"))
    elif sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(
            (
                "FieldValueInvalid",
                "spec.versions",
                "Invalid value: must have exactly one version marked as storage version",
            )
        )
    name = obj["metadata"].get("name", "")
    if plural and group and name != f"{plural}.{group}":
        causes.append(
            (
                "FieldValueInvalid",
                "metadata.name",
                f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group',
            )
        )
    if causes:
        return causes
    names.setdefault("singular", names["kind"].lower())
    names.setdefault("listKind", f"{names['kind']}List")
    spec.setdefault("conversion", {"strategy": "None"})
    return causes


def crd_status(obj: dict[str, Any], now: str) -> dict[str, Any]:
    spec = obj.get("spec") or {}
    return {
        "acceptedNames": dict(spec.get("names") or {}),
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "reason": "NoConflicts",
                "message": "no conflicts found",
                "lastTransitionTime": now,
            },
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
                "lastTransitionTime": now,
            },
        ],
        "storedVersions": [v["name"] for v in spec.get("versions") or [] if v.get("storage")],
    }


def prepare_create(store: ClusterStore, rt: ResourceType, obj: dict[str, Any]) -> None:
    """Default ``obj`` in place and raise 422 if it is not valid for its kind."""
    meta = obj["metadata"]
    causes = validate_name(rt, meta["name"]) + validate_meta(meta)
    gr = rt.gr
    now = store.timestamp()
    if rt.status:
        obj.pop("status", None)
    if gr == ("", "pods"):
        causes += _validate_pod_spec(obj.get("spec"), "spec")
        if not causes:
            _default_pod_spec(obj["spec"])
            obj["status"] = {"phase": "Pending", "qosClass": _qos_class(obj["spec"])}
    elif gr == ("apps", "deployments"):
        causes += _workload_selector(obj)
        causes += _validate_pod_spec((obj.get("spec") or {}).get("template", {}).get("spec"), "spec.template.spec")
        if not causes:
            _default_deployment(obj)
    elif gr == ("apps", "replicasets"):
        causes += _workload_selector(obj)
        causes += _validate_pod_spec((obj.get("spec") or {}).get("template", {}).get("spec"), "spec.template.spec")
        if not causes:
            obj["spec"].setdefault("replicas", 1)
            _default_pod_spec(obj["spec"]["template"]["spec"])
    elif gr == ("apps", "statefulsets"):
        causes += _workload_selector(obj)
        causes += _validate_pod_spec((obj.get("spec") or {}).get("template", {}).get("spec"), "spec.template.spec")
        if not causes:
            _default_statefulset(obj)
    elif gr == ("batch", "jobs"):
        template_spec = ((obj.get("spec") or {}).get("template") or {}).get("spec")
        causes += _validate_pod_spec(template_spec, "spec.template.spec")
        if not causes and template_spec and template_spec.get("restartPolicy") not in ("Never", "OnFailure"):
            causes.append(
                (
                    "FieldValueNotSupported",
                    "spec.template.spec.restartPolicy",
                    f'Unsupported value: "{template_spec.get("restartPolicy", "Always")}": supported '
                    f'values: "OnFailure", "Never"',
                )
            )
        if not causes:
            _default_job(obj)
    elif gr == ("", "services"):
        _default_service(store, obj)
    elif gr == ("", "secrets"):
        causes += _default_secret(obj)
    elif gr == ("", "namespaces"):
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj["status"] = {"phase": "Active"}
    elif gr == ("apiextensions.k8s.io", "customresourcedefinitions"):
        causes += _default_crd(obj)
        if not causes:
            obj["status"] = crd_status(obj, now)
    elif gr == ("", "persistentvolumeclaims"):
        spec = obj.setdefault("spec", {})
        spec.setdefault("volumeMode", "Filesystem")
        obj["status"] = {"phase": "Pending"}
    elif gr == ("", "resourcequotas"):
        hard = dict((obj.get("spec") or {}).get("hard") or {})
        obj["status"] = {"hard": hard, "used": {name: "0" for name in hard}}
    elif gr == ("", "events"):
        obj.setdefault("firstTimestamp", now)
        obj.setdefault("lastTimestamp", now)
        obj.setdefault("count", 1)
    if causes:
        raise invalid(rt.kind, meta["name"], causes, rt.group)


def prepare_update(store: ClusterStore, rt: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> None:
    """Keep server-owned fields and re-validate; 422 for changes upstream forbids."""
    meta = new["metadata"]
    causes = validate_meta(meta)
    gr = rt.gr
    if gr == ("", "namespaces"):
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        new["spec"] = old.get("spec", {})  # spec.finalizers only change through /finalize
    elif gr == ("", "secrets"):
        causes += _default_secret(new)
    elif gr == ("", "services"):
        spec = new.setdefault("spec", {})
        old_ip = (old.get("spec") or {}).get("clusterIP")
        if spec.get("clusterIP") in (None, "") and old_ip:
            spec["clusterIP"] = old_ip
            spec.setdefault("clusterIPs", (old.get("spec") or {}).get("clusterIPs"))
        elif old_ip and spec.get("clusterIP") != old_ip:
            causes.append(("FieldValueInvalid", "spec.clusterIPs[0]", "Invalid value: field is immutable"))
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))
    elif gr in (("apps", "deployments"), ("apps", "replicasets"), ("apps", "statefulsets")):
        causes += _validate_pod_spec((new.get("spec") or {}).get("template", {}).get("spec"), "spec.template.spec")
        if not causes:
            causes += _workload_selector(new)
        if not causes:
            if (old.get("spec") or {}).get("selector") != (new.get("spec") or {}).get("selector"):
                causes.append(("FieldValueInvalid", "spec.selector", "Invalid value: field is immutable"))
            defaults: dict[tuple[str, str], Callable[[dict[str, Any]], None]] = {
                ("apps", "deployments"): _default_deployment,
                ("apps", "statefulsets"): _default_statefulset,
            }
            if gr in defaults:
                defaults[gr](new)
            else:
                new["spec"].setdefault("replicas", 1)
                _default_pod_spec(new["spec"]["template"]["spec"])
    elif gr == ("", "pods"):
        old_spec, new_spec = old.get("spec") or {}, dict(new.get("spec") or {})
        _default_pod_spec(new_spec)
        for key in ("containers", "initContainers"):
            stripped = [{k: v for k, v in c.items() if k != "image"} for c in new_spec.get(key) or []]
            old_stripped = [{k: v for k, v in c.items() if k != "image"} for c in old_spec.get(key) or []]
            if stripped != old_stripped:
                causes.append(
                    (
                        "FieldValueForbidden",
                        "spec",
                        "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
                        " `spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, "
                        "`spec.tolerations` (only additions to existing tolerations), "
                        "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
                        "previously negative)",
                    )
                )
                break
        new["spec"] = new_spec
        if old_spec.get("nodeName") and not new_spec.get("nodeName"):
            new_spec["nodeName"] = old_spec["nodeName"]
    elif gr == ("batch", "jobs"):
        old_tpl, new_tpl = (old.get("spec") or {}).get("template"), (new.get("spec") or {}).get("template")
        if old_tpl != new_tpl:
            causes.append(("FieldValueInvalid", "spec.template", "Invalid value: field is immutable"))
        if (old.get("spec") or {}).get("selector") != (new.get("spec") or {}).get("selector"):
            causes.append(("FieldValueInvalid", "spec.selector", "Invalid value: field is immutable"))
    elif gr == ("apiextensions.k8s.io", "customresourcedefinitions"):
        causes += _default_crd(new)
        if not causes:
            old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
            if old_spec.get("group") != new_spec.get("group"):
                causes.append(("FieldValueInvalid", "spec.group", "Invalid value: field is immutable"))
            if old_spec.get("scope") != new_spec.get("scope"):
                causes.append(("FieldValueInvalid", "spec.scope", "Invalid value: field is immutable"))
    if causes:
        raise invalid(rt.kind, meta.get("name", ""), causes, rt.group)


def _qos_class(spec: dict[str, Any]) -> str:
    requests_seen = limits_seen = False
    guaranteed = True
    for container in spec.get("containers") or []:
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        requests_seen = requests_seen or bool(requests)
        limits_seen = limits_seen or bool(limits)
        for res in ("cpu", "memory"):
            if res not in limits or requests.get(res, limits[res]) != limits[res]:
                guaranteed = False
    if guaranteed and limits_seen:
        return "Guaranteed"
    return "Burstable" if requests_seen or limits_seen else "BestEffort"
