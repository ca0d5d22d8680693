"""The pure parts, without a cluster: build, substitution, specs, conditions, kstatus, the queue."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from catalyst_sim.clock import DEFAULT_EPOCH
from catalyst_sim.control.catalog import BlueprintRegistry
from catalyst_sim.control.gitops import conditions as c
from catalyst_sim.control.gitops import health, render, specs
from catalyst_sim.control.gitops.apply import Entry
from catalyst_sim.control.gitops.kustomization import find_cycle, is_ready
from catalyst_sim.control.gitops.workqueue import WorkQueue
from catalyst_sim.control.provisioning.manifests import AppManifestInput, render_app_repo

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "blueprints"


@pytest.fixture(scope="module")
def registry() -> BlueprintRegistry:
    return BlueprintRegistry.load(FIXTURES)


def repo_files(registry: BlueprintRegistry, **overrides: object) -> dict[str, bytes]:
    definition = registry.get("bp-wordpress", "1.3.0")
    inp = AppManifestInput(
        sovereign="omantel", organization="acme", app="blog", blueprint="bp-wordpress", version="1.3.0",
        config={"domain": "blog.acme.io", "adminEmail": "web@acme.io", "title": "Blog", "replicas": 2,
                "imageTag": "6.5"},
        config_schema=definition.spec.configSchema or {}, depends_on=("blog-postgres",),
        dependencies={"db": "blog-postgres"}, overlay_values={"small": {"config": {"replicas": 1}}},
    )
    files = {path: text.encode() for path, text in render_app_repo(inp).items()}
    files.update({k: str(v).encode() for k, v in overrides.items()})
    return files


def test_build_renders_the_pinned_blueprint_with_the_env_overlay_labels_and_variables(
    registry: BlueprintRegistry,
) -> None:
    built = render.build(
        repo_files(registry), app="blog", kustomization="blog", env_type="prod", target_namespace="blog",
        catalog=registry, variables={"ENV_TYPE": "prod", "ENVIRONMENT": "acme-prod"}, organization="acme",
        workload_labels={"openova.io/organization": "acme", "openova.io/environment": "acme-prod",
                         "openova.io/vcluster": "acme", "openova.io/host-cluster": None},
    )
    assert (built.blueprint, built.version) == ("bp-wordpress", "1.3.0")
    kinds = [(o["kind"], o["metadata"]["name"]) for o in built.objects]
    assert kinds == [("Namespace", "blog"), ("Deployment", "blog"), ("Service", "blog"),
                     ("ExternalSecret", "blog-credentials")]
    deployment = built.objects[1]
    assert deployment["spec"]["replicas"] == 1  # overlays/prod (from the "small" overlay) beats values.yaml
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["WORDPRESS_DB_HOST"] == "blog-postgres.blog-postgres.svc"
    labels = deployment["metadata"]["labels"]
    assert labels["openova.io/sovereign"] == "omantel"  # from the repo's labels: the engine did not know it
    assert "openova.io/host-cluster" not in labels
    assert labels["kustomize.toolkit.fluxcd.io/name"] == "blog"
    assert deployment["spec"]["template"]["metadata"]["labels"]["openova.io/environment"] == "acme-prod"
    assert "kustomize.toolkit.fluxcd.io/name" not in deployment["spec"]["template"]["metadata"]["labels"]
    secret = built.objects[3]
    assert secret["spec"]["data"][0]["remoteRef"]["key"] == "org/acme/env/prod/blog/credentials"


@pytest.mark.parametrize(("files", "reason", "text"), [
    ({"values.yaml": "a: [b"}, "BuildFailed", "values.yaml: invalid YAML"),
    ({"values.yaml": "- a list"}, "BuildFailed", "expected a mapping"),
    ({"kustomization.yaml": "kind: ConfigMap"}, "BuildFailed", "expected a Flux Kustomization"),
    ({"secrets/x.yaml": "apiVersion: v1\nkind: Secret\n"}, "BuildFailed", "missing metadata.name"),
    ({"secrets/dup.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: blog}\n"}, "BuildFailed",
     "already registered id"),
])
def test_build_errors_name_the_file_or_object(registry: BlueprintRegistry, files: dict[str, str], reason: str,
                                              text: str) -> None:
    with pytest.raises(render.BuildError) as failure:
        render.build(repo_files(registry, **files), app="blog", kustomization="blog", env_type="prod",
                     target_namespace="blog", catalog=registry, variables={}, workload_labels={})
    assert failure.value.reason == reason and text in failure.value.message


def test_a_missing_values_file_is_an_artifact_failure(registry: BlueprintRegistry) -> None:
    files = repo_files(registry)
    del files["values.yaml"]
    with pytest.raises(render.BuildError) as failure:
        render.build(files, app="blog", kustomization="blog", env_type="prod", target_namespace="blog",
                     catalog=registry, variables={}, workload_labels={})
    assert failure.value.reason == "ArtifactFailed"


def test_a_pin_to_a_composite_blueprint_is_a_build_error(registry: BlueprintRegistry) -> None:
    files = repo_files(registry)
    doc = yaml.safe_load(files["kustomization.yaml"])
    doc["metadata"]["labels"].update({"openova.io/blueprint": "bp-bundle-pharmacy",
                                      "openova.io/blueprint-version": "1.0.0"})
    files["kustomization.yaml"] = yaml.safe_dump(doc).encode()
    with pytest.raises(render.BuildError) as failure:
        render.build(files, app="blog", kustomization="blog", env_type="prod", target_namespace="blog",
                     catalog=registry, variables={}, workload_labels={})
    assert "bp-bundle-pharmacy@1.0.0 has no spec.manifests.resources" in failure.value.message


def test_substitution_follows_flux_post_build_rules() -> None:
    variables = {"ENV": "prod", "EMPTY": ""}
    assert render.substitute("org/${ENV}/x", variables) == "org/prod/x"
    assert render.substitute("${MISSING}", variables) == ""
    assert render.substitute("${MISSING:=dev}|${EMPTY:-fallback}|${EMPTY-kept}", variables) == "dev|fallback|"
    assert render.substitute("$${ENV} stays", variables) == "${ENV} stays"
    assert render.substitute({"k-${ENV}": ["${ENV}", 3, True]}, variables) == {"k-prod": ["prod", 3, True]}
    assert render.substitute("$ENV and $5", variables) == "$ENV and $5"


def test_deep_merge_merges_maps_and_replaces_everything_else() -> None:
    base = {"config": {"a": 1, "b": {"c": 2}, "list": [1, 2]}, "x": 1}
    assert render.deep_merge(base, {"config": {"b": {"d": 3}, "list": [9]}, "x": None}) == {
        "config": {"a": 1, "b": {"c": 2, "d": 3}, "list": [9]}, "x": None}


def test_kustomization_spec_comes_from_the_repo_and_engine_variables_win(registry: BlueprintRegistry) -> None:
    doc = yaml.safe_load(repo_files(registry)["kustomization.yaml"])
    doc["spec"]["postBuild"]["substitute"].update({"ENV_TYPE": "dev", "EXTRA": "1", "not valid": "x"})
    ks = specs.kustomization("blog", doc, {"ENV_TYPE": "prod", "ENVIRONMENT": "acme-prod"})
    spec = ks["spec"]
    assert spec["dependsOn"] == [{"name": "blog-postgres"}] and spec["targetNamespace"] == "blog"
    assert spec["wait"] is True and spec["prune"] is True and spec["sourceRef"]["name"] == "blog"
    assert spec["postBuild"]["substitute"] == {"APPLICATION": "blog", "ENVIRONMENT": "acme-prod", "ENV_TYPE": "prod",
                                               "EXTRA": "1", "ORGANIZATION": "acme"}
    assert ks["metadata"]["labels"]["openova.io/environment"] == "acme-prod"  # ${ENVIRONMENT} resolved
    fresh = specs.kustomization("blog", None, {})
    assert fresh["spec"]["targetNamespace"] == "blog" and "dependsOn" not in fresh["spec"]
    assert specs.depends_on(ks) == [("flux-system", "blog-postgres")]


def test_cycles_are_found_with_their_path() -> None:
    graph = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"], "e": []}
    assert find_cycle("a", graph) == ["a", "b", "c", "a"]
    assert find_cycle("d", graph) is None  # depends on a cycle, but is not part of one
    assert find_cycle("e", graph) is None
    assert find_cycle("s", {"s": ["s"]}) == ["s", "s"]


def test_conditions_keep_their_transition_time_until_the_status_flips() -> None:
    t0, t1 = DEFAULT_EPOCH, DEFAULT_EPOCH + timedelta(minutes=1)
    first = c.put(None, c.READY, "False", c.PROGRESSING, "a", generation=1, now=t0)
    same = c.put(first, c.READY, "False", c.HEALTH_CHECK_FAILED, "b", generation=1, now=t1)
    flipped = c.put(same, c.READY, "True", c.RECONCILIATION_SUCCEEDED, "c", generation=1, now=t1)
    assert same[0]["lastTransitionTime"] == first[0]["lastTransitionTime"] == "2026-11-24T09:00:00Z"
    assert flipped[0]["lastTransitionTime"] == "2026-11-24T09:01:00Z"
    ordered = c.put(c.put(None, c.STALLED, "True", "x", "", generation=1, now=t0), c.READY, "False", "x", "",
                    generation=1, now=t0)
    assert [x["type"] for x in ordered] == ["Ready", "Stalled"]
    ks = {"metadata": {"generation": 2}, "status": {"observedGeneration": 1, "conditions": flipped}}
    assert not is_ready(ks) and is_ready({**ks, "status": {**ks["status"], "observedGeneration": 2}})


def test_go_durations() -> None:
    assert c.parse_duration("1m", 0) == 60 and c.parse_duration("1h30m", 0) == 5400
    assert c.parse_duration("500ms", 0) == 0.5 and c.parse_duration(None, 7) == 7
    with pytest.raises(c.DurationError):
        c.parse_duration("1 minute", 0)
    assert [c.format_duration(s) for s in (60, 30, 2.5, 3600, 150)] == ["1m0s", "30s", "2.5s", "1h0m0s", "2m30s"]


def test_inventory_ids_round_trip() -> None:
    entry = Entry("blog", "blog", "apps", "Deployment", "v1")
    assert entry.id == "blog_blog_apps_Deployment" and entry.api_version == "apps/v1"
    assert Entry.parse(entry.as_status()) == entry
    core = Entry.parse({"id": "_blog__Namespace", "v": "v1"})
    assert core is not None and core.api_version == "v1" and core.ref == "Namespace/blog"
    assert Entry.parse({"id": "garbage"}) is None


def test_kstatus_of_workloads() -> None:
    dep = {"metadata": {"generation": 2}, "spec": {"replicas": 2},
           "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1}}
    assert health.deployment_status(dep) == (health.IN_PROGRESS, "Available: 1/2")
    dep["status"]["availableReplicas"] = 2
    assert health.deployment_status(dep)[0] == health.CURRENT
    dep["status"]["observedGeneration"] = 1
    assert health.deployment_status(dep)[0] == health.IN_PROGRESS
    dep["status"].update(observedGeneration=2, conditions=[{"type": "Progressing", "status": "False",
                                                            "reason": "ProgressDeadlineExceeded"}])
    assert health.deployment_status(dep)[0] == health.FAILED
    sts = {"metadata": {"generation": 1}, "spec": {"replicas": 1},
           "status": {"observedGeneration": 1, "readyReplicas": 1, "updatedReplicas": 1,
                      "currentRevision": "a", "updateRevision": "b"}}
    assert health.statefulset_status(sts)[0] == health.IN_PROGRESS
    sts["status"]["currentRevision"] = "b"
    assert health.statefulset_status(sts)[0] == health.CURRENT
    job = {"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}}
    assert health.job_status(job) == (health.FAILED, "Job failed: BackoffLimitExceeded")
    assert health.generic_status({"status": {"conditions": [{"type": "Stalled", "status": "True",
                                                             "message": "no"}]}}) == (health.FAILED, "no")
    assert health.generic_status({"kind": "ExternalSecret"}) == (health.CURRENT, "")
    pod = {"metadata": {"name": "p"}, "status": {"containerStatuses": [
        {"name": "c", "state": {"waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling "x"'}}}]}}
    assert health.pod_problem(pod) == 'pod p: container c: ImagePullBackOff: Back-off pulling "x"'
    creating = {"metadata": {"name": "p"}, "status": {"containerStatuses": [
        {"name": "c", "state": {"waiting": {"reason": "ContainerCreating"}}}]}}
    assert health.pod_problem(creating) is None


async def test_the_work_queue_dedupes_reruns_dirty_keys_and_reports_idle() -> None:
    queue = WorkQueue()
    queue.bind(asyncio.get_running_loop())
    assert queue.idle()
    queue.add("a")
    queue.add("a")
    timer = threading.Thread(target=queue.add, args=("b",))  # from another thread, like a clock timer
    timer.start()
    timer.join()
    first = await queue.get()
    assert first == "a" and not queue.idle()
    queue.add("a")  # while "a" runs: it must run once more afterwards, not concurrently
    second = await queue.get()
    assert second == "b"
    queue.done("b")
    queue.done("a")
    assert await queue.get() == "a"
    assert not queue.idle()
    queue.done("a")
    assert queue.idle() and await queue.wait_idle(1.0)
    queue.close()
    queue.add("c")
    assert queue.idle()
