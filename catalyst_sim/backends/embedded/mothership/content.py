"""What the mothership serves: the public Catalyst repo's bootstrap-kit and the artifacts it names.

Our own fixture (not copied from upstream): 38 bootstrap-kit Blueprints (ADR-0002 §2.1 counts 38
OCI HelmRepositories), each a Helm chart ``oci://ghcr.io/openova-io/bp-<name>`` with one workload
image. Catalyst-authored images live at ``ghcr.io/openova-io/openova/*`` (tether 7); the rest come
from the public registries the seven Harbor proxy-cache projects front.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .oci import HELM_CHART, HELM_CONFIG, Registry

CATALYST_REPO_OWNER, CATALYST_REPO = "openova-io", "openova"
CHART_VERSION = "1.0.0"

#: The seven proxy-cache projects of a Harbor (ADR-0002 §3.3 step 02): project -> upstream host.
PROXY_PROJECTS: dict[str, str] = {
    "proxy-ghcr": "ghcr.io", "proxy-docker": "docker.io", "proxy-k8s": "registry.k8s.io",
    "proxy-gcr": "gcr.io", "proxy-quay": "quay.io", "proxy-xpkg": "xpkg.upbound.io", "proxy-ecr": "public.ecr.aws",
}
#: The mothership's hosts; the egress block denies exactly these (R-DOD-01).
MOTHERSHIP_HOSTS = ("github.com", "ghcr.io", "harbor.openova.io")
PUBLIC_REGISTRIES = tuple(h for h in PROXY_PROJECTS.values() if h != "ghcr.io")


@dataclass(frozen=True)
class KitEntry:
    slot: str
    name: str
    image: str

    @property
    def chart(self) -> str:
        return f"bp-{self.name}"


def _catalyst(name: str) -> str:
    return f"ghcr.io/openova-io/openova/{name}:1.4.0"


BOOTSTRAP_KIT: tuple[KitEntry, ...] = tuple(KitEntry(*row) for row in (
    ("01", "cilium", "quay.io/cilium/cilium:v1.16.5"),
    ("02", "cert-manager", "quay.io/jetstack/cert-manager-controller:v1.16.2"),
    ("03", "flux", "ghcr.io/fluxcd/source-controller:v1.4.1"),
    ("04", "crossplane", "xpkg.upbound.io/crossplane/crossplane:v1.18.0"),
    ("05", "sealed-secrets", "docker.io/bitnami/sealed-secrets-controller:0.27.3"),
    ("06", "spire", "ghcr.io/spiffe/spire-server:1.11.0"),
    ("06a", "self-sovereign-cutover", _catalyst("self-sovereign-cutover")),
    ("07", "nats-jetstream", "docker.io/library/nats:2.10.24"),
    ("08", "openbao", "quay.io/openbao/openbao:2.1.0"),
    ("09", "keycloak", "quay.io/keycloak/keycloak:26.0.7"),
    ("10", "gitea", "docker.io/gitea/gitea:1.22.6"),
    ("11", "cnpg", "ghcr.io/cloudnative-pg/cloudnative-pg:1.25.0"),
    ("12", "powerdns", "docker.io/powerdns/pdns-auth-49:4.9.3"),
    ("13", "external-secrets", "ghcr.io/external-secrets/external-secrets:v0.12.1"),
    ("14", "reloader", "ghcr.io/stakater/reloader:v1.2.0"),
    ("15", "kyverno", "ghcr.io/kyverno/kyverno:v1.13.2"),
    ("19", "harbor", "docker.io/goharbor/harbor-core:v2.12.1"),
    ("16", "catalyst-platform", _catalyst("catalyst-api")),
    ("17", "catalyst-console", _catalyst("console")),
    ("18", "catalyst-catalog-svc", _catalyst("catalog-svc")),
    ("20", "catalyst-projector", _catalyst("projector")),
    ("21", "catalyst-provisioning", _catalyst("provisioning")),
    ("22", "catalyst-environment-controller", _catalyst("environment-controller")),
    ("23", "catalyst-blueprint-controller", _catalyst("blueprint-controller")),
    ("24", "catalyst-billing", _catalyst("billing")),
    ("25", "falco", "docker.io/falcosecurity/falco:0.39.2"),
    ("26", "sigstore-policy-controller", "ghcr.io/sigstore/policy-controller:v0.12.0"),
    ("27", "trivy-operator", "ghcr.io/aquasecurity/trivy-operator:0.24.1"),
    ("28", "metrics-server", "registry.k8s.io/metrics-server/metrics-server:v0.7.2"),
    ("28a", "keda", "ghcr.io/kedacore/keda:2.16.1"),
    ("29", "vpa", "registry.k8s.io/autoscaling/vpa-recommender:1.2.1"),
    ("30", "grafana", "docker.io/grafana/grafana:11.4.0"),
    ("31", "loki", "docker.io/grafana/loki:3.3.2"),
    ("32", "tempo", "docker.io/grafana/tempo:2.6.1"),
    ("33", "mimir", "docker.io/grafana/mimir:2.14.3"),
    ("34", "velero", "docker.io/velero/velero:v1.15.1"),
    ("35", "distroless-base", "gcr.io/distroless/static:nonroot"),
    ("40", "cluster-autoscaler-hcloud", "public.ecr.aws/eks-distro/kubernetes/cluster-autoscaler:v1.31.0"),
))
SENTINEL_IMAGE = "docker.io/library/busybox:1.36"
CUTOVER_IMAGE = _catalyst("self-sovereign-cutover")
CROSSPLANE_PROVIDERS = ("xpkg.upbound.io/crossplane-contrib/provider-hcloud:v0.4.0",
                        "xpkg.upbound.io/crossplane-contrib/provider-kubernetes:v0.15.0")


def split_reference(image: str) -> tuple[str, str, str]:
    """(host, repository, tag) of a fully qualified reference such as ``ghcr.io/a/b:1``."""
    host, _, rest = image.partition("/")
    repository, _, tag = rest.rpartition(":")
    return host, repository, tag


def all_images() -> list[str]:
    return sorted({entry.image for entry in BOOTSTRAP_KIT} | {SENTINEL_IMAGE})


def seed_registries(registries: dict[str, Registry]) -> None:
    """Push every kit image into its registry and every chart into ghcr.io (deterministic bytes)."""
    for image in all_images():
        host, repository, tag = split_reference(image)
        config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Labels": {"image": image}}},
                            sort_keys=True).encode()
        registries[host].push_artifact(repository, tag, config=config, layers=[f"rootfs of {image}\n".encode()])
    for entry in BOOTSTRAP_KIT:
        chart = json.dumps({"name": entry.chart, "version": CHART_VERSION, "apiVersion": "v2"}).encode()
        registries["ghcr.io"].push_artifact(
            f"{CATALYST_REPO_OWNER}/{entry.chart}", CHART_VERSION, config=chart, config_type=HELM_CONFIG,
            layers=[f"chart {entry.chart}-{CHART_VERSION}.tgz; image {entry.image}\n".encode()], layer_type=HELM_CHART)


def kit_manifest(entry: KitEntry) -> str:
    """``clusters/_template/bootstrap-kit/<slot>-bp-<name>.yaml`` of the public repo."""
    return (f"apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n  name: {entry.chart}\n"
            f"  namespace: flux-system\nspec:\n  type: oci\n  interval: 10m\n  url: oci://ghcr.io/openova-io\n"
            f"---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: {entry.chart}\n"
            f"  namespace: flux-system\nspec:\n  interval: 10m\n  chart:\n    spec:\n      chart: {entry.chart}\n"
            f"      version: {CHART_VERSION}\n      sourceRef: {{kind: HelmRepository, name: {entry.chart}}}\n"
            f"  values:\n    image: {entry.image}\n")


def repo_files() -> dict[str, str]:
    files = {f"clusters/_template/bootstrap-kit/{e.slot}-{e.chart}.yaml": kit_manifest(e) for e in BOOTSTRAP_KIT}
    files["README.md"] = "# openova\n\nThe public Catalyst repository (catalyst-sim mothership fixture).\n"
    return files
