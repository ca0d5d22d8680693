"""Regenerate :mod:`._protoschema` from upstream ``generated.proto`` files (a maintainer's tool).

Not imported at runtime. Usage, with the .proto files of a k8s.io/api and k8s.io/apimachinery
checkout copied into one directory under the names below::

    python -m catalyst_sim.backends.embedded.kube._protogen PROTO_DIR > _protoschema_body.txt

It walks every message reachable from :data:`ROOTS` and prints one ``"pkg.Message": "..."`` line
per message, the body of ``SCHEMA``. Fields whose type lives in a package we do not map are
skipped (the decoder then ignores them, as an older server would).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

FILES = {
    "core": "core_v1.proto",
    "apps": "apps_v1.proto",
    "batch": "batch_v1.proto",
    "rbac": "rbac_v1.proto",
    "networking": "networking_v1.proto",
    "meta": "meta_v1.proto",
    "runtime": "runtime.proto",
    "intstr": "intstr.proto",
    "resource": "resource.proto",
}
PACKAGES = {
    "k8s.io.api.core.v1": "core",
    "k8s.io.api.apps.v1": "apps",
    "k8s.io.api.batch.v1": "batch",
    "k8s.io.api.rbac.v1": "rbac",
    "k8s.io.api.networking.v1": "networking",
    "k8s.io.apimachinery.pkg.apis.meta.v1": "meta",
    "k8s.io.apimachinery.pkg.runtime": "runtime",
    "k8s.io.apimachinery.pkg.util.intstr": "intstr",
    "k8s.io.apimachinery.pkg.api.resource": "resource",
}
ROOTS = [
    "core.Namespace",
    "core.ConfigMap",
    "core.Secret",
    "core.ServiceAccount",
    "core.Service",
    "core.Pod",
    "core.ResourceQuota",
    "apps.Deployment",
    "apps.ReplicaSet",
    "apps.StatefulSet",
    "batch.Job",
    "rbac.Role",
    "rbac.RoleBinding",
    "rbac.ClusterRole",
    "rbac.ClusterRoleBinding",
    "networking.Ingress",
    "runtime.Unknown",
]
SPECIAL = {
    "meta.Time",
    "meta.MicroTime",
    "intstr.IntOrString",
    "resource.Quantity",
    "runtime.RawExtension",
    "meta.FieldsV1",
    "meta.Duration",
}
SCALARS = {
    "string": "s",
    "bytes": "y",
    "bool": "b",
    "double": "d",
    "float": "d",
    "int32": "i",
    "int64": "i",
    "uint32": "i",
    "uint64": "i",
    "fixed64": "i",
    "sfixed64": "i",
}
_MESSAGE = re.compile(r"message\s+(\w+)\s*\{(.*?)\n\}", re.S)
_FIELD = re.compile(r"(optional|repeated)?\s*(map<\s*(\w+)\s*,\s*([\w.]+)\s*>|[\w.]+)\s+(\w+)\s*=\s*(\d+)\s*;")


def parse(directory: Path) -> dict[str, dict[int, tuple[str, str, str, str]]]:
    """message -> field number -> (label, type, map value type, json name)."""
    messages: dict[str, dict[int, tuple[str, str, str, str]]] = {}
    for short, filename in FILES.items():
        text = re.sub(r"//[^\n]*", "", (directory / filename).read_text())
        for match in _MESSAGE.finditer(text):
            fields = {}
            for field in _FIELD.finditer(match.group(2)):
                label, type_, _key, value, name, number = field.groups()
                fields[int(number)] = (label or "", value or type_, "map" if value else "", name)
            messages[f"{short}.{match.group(1)}"] = fields
    return messages


def resolve(type_: str, context: str) -> tuple[str, str] | None:
    """(kind, message) for a field type; None when its package is not mapped."""
    if type_ in SCALARS:
        return SCALARS[type_], ""
    package, _, name = type_.lstrip(".").rpartition(".")
    if not package:
        return "m", f"{context}.{name}"
    short = PACKAGES.get(package)
    return ("m", f"{short}.{name}") if short else None


def generate(directory: Path) -> list[str]:
    messages = parse(directory)
    out: dict[str, list[str]] = {}
    todo = list(ROOTS)
    while todo:
        message = todo.pop()
        if message in out or message in SPECIAL:
            continue
        context = message.split(".")[0]
        entries = []
        for number, (label, type_, is_map, name) in sorted(messages[message].items()):
            resolved = resolve(type_, context)
            if resolved is None:
                continue
            kind, ref = resolved
            if ref:
                todo.append(ref)
            if is_map:
                entries.append(f"{number}:{name}:map:{ref or kind}")
            else:
                entries.append(
                    f"{number}:{name}:{'r' if label == 'repeated' else ''}{kind}" + (f":{ref}" if ref else "")
                )
        out[message] = entries
    return [f'    "{name}": "{" ".join(entries)}",' for name, entries in sorted(out.items())]


if __name__ == "__main__":
    print("\n".join(generate(Path(sys.argv[1]))))
