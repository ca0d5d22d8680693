"""Real kubectl 1.37 against the emulator: what steps and operators actually type.

Every call is a subprocess (~100-250 ms), so each test groups several related commands.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import yaml

from catalyst_sim.backends.embedded.kube import Cluster, KubeEmulator, KubeletBehaviour, PodStages
from catalyst_sim.clock import VirtualClock

from .conftest import KUBECTL, Kubectl, make_kubectl

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ports: [{containerPort: 80}]
        env: [{name: A, value: "1"}, {name: B, value: "2"}]
      - name: side
        image: busybox:1.36
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {a: "1"}
"""

CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: environments.catalyst.openova.io}
spec:
  group: catalyst.openova.io
  scope: Namespaced
  names: {plural: environments, singular: environment, kind: Environment, shortNames: [env]}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Tier, type: string, jsonPath: .spec.tier}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
"""


def lines(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


def test_discovery_and_create_commands(kubectl: Kubectl) -> None:
    resources = lines(kubectl("api-resources").stdout)
    assert resources[0] == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    by_name = {row[0]: row for row in resources[1:]}
    assert by_name["deployments"][1:] == ["deploy", "apps/v1", "true", "Deployment"]
    assert by_name["namespaces"][1:] == ["ns", "v1", "false", "Namespace"]
    assert "Server Version: v1.37.0" in kubectl("version").stdout
    # kubectl's create sub-commands post protobuf bodies: the emulator decodes them.
    kubectl("create", "namespace", "team-a")
    kubectl("create", "configmap", "conf", "-n", "team-a", "--from-literal=greeting=hello")
    kubectl("create", "secret", "generic", "creds", "-n", "team-a", "--from-literal=password=s3cret")
    created = json.loads(kubectl("get", "cm,secret", "-n", "team-a", "-o", "json").stdout)["items"]
    assert [(o["kind"], o["metadata"]["name"]) for o in created] == [
        ("ConfigMap", "conf"),
        ("Secret", "creds"),
    ]
    assert created[0]["data"] == {"greeting": "hello"} and created[1]["data"] == {"password": "czNjcmV0"}
    kubectl("create", "role", "reader", "-n", "team-a", "--verb=get,list", "--resource=pods")
    kubectl("create", "rolebinding", "reader", "-n", "team-a", "--role=reader", "--serviceaccount=team-a:default")
    binding = json.loads(kubectl("get", "rolebinding", "reader", "-n", "team-a", "-o", "json").stdout)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "default", "namespace": "team-a"}]
    failed = kubectl("create", "configmap", "conf", "-n", "team-a", "--from-literal=a=b", check=False)
    assert failed.returncode == 1 and 'configmaps "conf" already exists' in failed.stderr


def test_apply_get_patch_label_delete(kubectl: Kubectl, tmp_path: Path) -> None:
    manifest = tmp_path / "app.yaml"
    manifest.write_text(DEPLOYMENT)
    assert kubectl("apply", "-f", str(manifest)).stdout.split("\n")[:2] == [
        "deployment.apps/web created",
        "configmap/settings created",
    ]
    assert "unchanged" in kubectl("apply", "-f", str(manifest)).stdout
    changed = (
        DEPLOYMENT.replace("nginx:1.25", "nginx:1.26")
        .replace("replicas: 2", "replicas: 3")
        .replace(', {name: B, value: "2"}', "")
        .replace('{a: "1"}', '{b: "2"}')
    )
    manifest.write_text(changed)
    assert kubectl("apply", "-f", str(manifest)).stdout.split("\n")[:2] == [
        "deployment.apps/web configured",
        "configmap/settings configured",
    ]
    deployment = yaml.safe_load(kubectl("get", "deployment", "web", "-o", "yaml").stdout)
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("web", "nginx:1.26"), ("side", "busybox:1.36")]
    assert containers[0]["env"] == [{"name": "A", "value": "1"}]  # B removed by the three-way patch
    assert deployment["spec"]["replicas"] == 3 and deployment["metadata"]["generation"] == 2
    assert "kubectl.kubernetes.io/last-applied-configuration" in deployment["metadata"]["annotations"]
    assert yaml.safe_load(kubectl("get", "cm", "settings", "-o", "yaml").stdout)["data"] == {"b": "2"}
    kubectl("patch", "configmap", "settings", "--type", "merge", "-p", '{"data":{"c":"3"}}')
    kubectl("label", "configmap", "settings", "tier=backend")
    kubectl("annotate", "configmap", "settings", "owner=catalyst")
    labelled = lines(kubectl("get", "cm", "-l", "tier=backend", "--show-labels").stdout)
    assert labelled[0] == ["NAME", "DATA", "AGE", "LABELS"]
    assert labelled[1][0] == "settings" and labelled[1][1] == "2" and labelled[1][3] == "tier=backend"
    assert kubectl("get", "cm", "-l", "tier=frontend").stderr.strip() == "No resources found in default namespace."
    kubectl("delete", "configmap", "settings")
    assert "NotFound" in kubectl("get", "cm", "settings", check=False).stderr
    (tmp_path / "ssa.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ssa}\ndata: {a: '1'}\n")
    assert (
        kubectl("apply", "--server-side", "-f", str(tmp_path / "ssa.yaml")).stdout.strip()
        == "configmap/ssa serverside-applied"
    )


def test_get_all_namespaces_and_wait_for_a_deployment(kubectl: Kubectl, cluster: Cluster) -> None:
    kubectl("create", "namespace", "shop")
    kubectl("create", "deployment", "api", "-n", "shop", "--image=ghcr.io/openova/api:1.0", "--replicas=2")
    kubectl("wait", "--for=condition=Available", "deployment/api", "-n", "shop", "--timeout=20s")
    everything = kubectl("get", "all", "-A").stdout
    pods = lines(everything.split("\n\n")[0])
    assert pods[0] == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    shop = [r for r in pods[1:] if r[0] == "shop"]
    assert len(shop) == 2 and all(r[2:5] == ["1/1", "Running", "0"] for r in shop)
    assert "service/kubernetes" in everything and "deployment.apps/api" in everything
    rows = lines(kubectl("get", "deploy", "-n", "shop").stdout)
    assert rows[1][:4] == ["api", "2/2", "2", "2"]
    kubectl("scale", "deployment", "api", "-n", "shop", "--replicas=3")
    kubectl("rollout", "status", "deployment/api", "-n", "shop", "--timeout=20s")
    assert (
        json.loads(kubectl("get", "deploy", "api", "-n", "shop", "-o", "json").stdout)["status"]["availableReplicas"]
        == 3
    )


def test_get_watch_streams_events(kubectl: Kubectl, kubeconfig: Path, tmp_path: Path) -> None:
    kubectl("create", "configmap", "first", "--from-literal=a=b")
    watcher = subprocess.Popen(
        [str(KUBECTL), "--kubeconfig", str(kubeconfig), "get", "configmaps", "-w", "--output-watch-events"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"KUBECACHEDIR": str(tmp_path / "cache"), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    try:
        assert watcher.stdout is not None
        first = [watcher.stdout.readline().split()[:2] for _ in range(2)]
        kubectl("create", "configmap", "second", "--from-literal=a=b")
        kubectl("delete", "configmap", "first")
        later = [watcher.stdout.readline().split()[:2] for _ in range(2)]
    finally:
        watcher.kill()
        watcher.wait(5)
    assert first == [["EVENT", "NAME"], ["ADDED", "first"]]
    assert later == [["ADDED", "second"], ["DELETED", "first"]]
    bounded = kubectl("get", "configmaps", "-w", "-o", "name", "--request-timeout=1s", timeout=15)
    assert bounded.stdout.split() == ["configmap/second"]


def test_custom_resources_with_printer_columns(kubectl: Kubectl, tmp_path: Path) -> None:
    (tmp_path / "crd.yaml").write_text(CRD)
    kubectl("apply", "-f", str(tmp_path / "crd.yaml"))
    (tmp_path / "env.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "catalyst.openova.io/v1alpha1",
                "kind": "Environment",
                "metadata": {"name": "prod"},
                "spec": {"tier": "gold"},
            }
        )
    )
    assert (
        kubectl("apply", "-f", str(tmp_path / "env.yaml")).stdout.strip()
        == "environment.catalyst.openova.io/prod created"
    )
    rows = lines(kubectl("get", "env").stdout)
    assert rows[0] == ["NAME", "TIER", "AGE"] and rows[1][:2] == ["prod", "gold"]
    kubectl("patch", "environment", "prod", "--type", "merge", "-p", '{"spec":{"tier":"silver"}}')
    kubectl("label", "environment", "prod", "stage=live")
    got = yaml.safe_load(kubectl("get", "environments.catalyst.openova.io", "prod", "-o", "yaml").stdout)
    assert got["spec"] == {"tier": "silver"} and got["metadata"]["labels"] == {"stage": "live"}
    assert got["metadata"]["generation"] == 2
    kubectl("delete", "crd", "environments.catalyst.openova.io")
    assert kubectl("get", "environments.catalyst.openova.io", check=False).returncode != 0


def test_failing_pods_show_their_reasons(kubectl: Kubectl) -> None:
    kubectl("run", "pull", "--image=nginx:does-not-exist")
    kubectl("run", "crash", "--image=busybox:crashloop")
    deadline = time.monotonic() + 10
    statuses: dict[str, list[str]] = {}
    while time.monotonic() < deadline:
        statuses = {r[0]: r for r in lines(kubectl("get", "pods").stdout)[1:]}
        if (
            statuses.get("pull", [""] * 3)[2] == "ImagePullBackOff"
            and statuses.get("crash", [""] * 3)[2] == "CrashLoopBackOff"
        ):
            break
        time.sleep(0.1)
    assert statuses["pull"][1:3] == ["0/1", "ImagePullBackOff"]
    assert statuses["crash"][1:3] == ["0/1", "CrashLoopBackOff"] and int(statuses["crash"][3]) >= 1
    described = kubectl("describe", "pod", "pull").stdout
    assert "Failed to pull image" in described and "ImagePullBackOff" in described


def test_namespace_deletion(kubectl: Kubectl) -> None:
    kubectl("create", "namespace", "gone")
    kubectl("create", "configmap", "c", "-n", "gone", "--from-literal=a=b")
    assert (
        kubectl("delete", "namespace", "gone", "--wait=true", "--timeout=10s").stdout.strip()
        == 'namespace "gone" deleted'
    )
    assert "NotFound" in kubectl("get", "namespace", "gone", check=False).stderr


def test_kubectl_wait_completes_when_virtual_time_is_advanced(tmp_path: Path) -> None:
    clock = VirtualClock()
    stages = PodStages(schedule=1, pull=30, start=5, ready=10)
    with KubeEmulator(clock, behaviour=lambda: KubeletBehaviour(stages=stages)) as kube:
        cluster = kube.add_cluster("virtual")
        kubectl = make_kubectl(kube.kubeconfig("virtual", tmp_path / "kc"), tmp_path / "cache")
        kubectl("create", "deployment", "slow", "--image=nginx:1.25")
        waiter = subprocess.Popen(
            [
                str(KUBECTL),
                "--kubeconfig",
                str(tmp_path / "kc"),
                "wait",
                "--for=condition=Available",
                "deployment/slow",
                "--timeout=20s",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={"KUBECACHEDIR": str(tmp_path / "cache"), "HOME": str(tmp_path)},
        )
        try:
            deadline = time.monotonic() + 10
            while cluster.open_watches() == 0 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert waiter.poll() is None  # no virtual time has passed: the deployment is unavailable
            clock.advance(45)  # 1 + 30 + 5 + 10 = 46 virtual seconds until ready: not yet
            time.sleep(0.3)
            assert waiter.poll() is None
            clock.advance(5)
            out, err = waiter.communicate(timeout=15)
        finally:
            if waiter.poll() is None:
                waiter.kill()
                waiter.wait(5)
        assert waiter.returncode == 0, err
        assert out.strip() == "deployment.apps/slow condition met"
        rows = lines(kubectl("get", "deploy").stdout)
        assert rows[1][:2] == ["slow", "1/1"] and rows[1][4] == "50s"  # ages are virtual too
