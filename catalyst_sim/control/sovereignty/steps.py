"""The eight cutover steps (ADR-0002 §3.3, R-CUT-05): each checks the effect the one before it left,
does its work idempotently (a re-run after a crash converges, never duplicates), and proves its own
post-condition. Network work retries on the virtual clock, so a flaky mothership slows a step down
rather than failing it. A step that cannot prove its post-condition raises :class:`StepFailed` and
undoes anything it switched on (nothing half-pivoted stays enabled, R-CUT-07).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
import yaml

from catalyst_sim.backends.embedded.mothership import content
from catalyst_sim.backends.embedded.mothership.containerd import split_image

from .context import Context, StepFailed, Transient
from .tethers import FLUX_NS, LOCAL_REPO, UPSTREAM_REPO, registries_yaml, upstream_repo_url

LOCAL_ORG, LOCAL_REPO_NAME = "openova", "openova"
CHART_PROJECT = "openova-io"  # the local Harbor project the charts are replicated into


@dataclass
class StepRun:
    """What a step reports while it works: retries and progress notes go to the status and the SSE stream."""

    context: Context
    note: Callable[[str], None]

    async def net(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        return await self.context.retrying(what, fn, *args, on_retry=self.note)


Step = Callable[[StepRun], Awaitable[str]]


def _harbor(ctx: Context, method: str, path: str, **kwargs: Any) -> httpx.Response:
    response = ctx.network.request(method, f"https://{ctx.config.local_harbor}{path}", **kwargs)
    if response.status_code >= 500:
        raise Transient(f"{ctx.config.local_harbor}{path} answered {response.status_code}: {response.text[:200]}")
    return response


def _authed(ctx: Context, url: str) -> str:
    """``url`` resolved on the simulated network, with the Gitea admin's token as basic auth."""
    parts = urlsplit(ctx.network.rewrite(url)[0])
    credentials = f"{quote(ctx.config.gitea_admin)}:{quote(ctx.config.gitea_token)}"
    return urlunsplit((parts.scheme, f"{credentials}@{parts.netloc}", parts.path, "", ""))


# -- 1 gitea-mirror ----------------------------------------------------------------------------------
def _ensure_local_repo(ctx: Context) -> None:
    api = httpx.Client(base_url=f"{ctx.config.gitea_url}/api/v1",
                       headers={"Authorization": f"token {ctx.config.gitea_token}"})
    with api:
        if api.get(f"/orgs/{LOCAL_ORG}").status_code == 404:
            api.post("/orgs", json={"username": LOCAL_ORG, "visibility": "public"}).raise_for_status()
        if api.get(f"/repos/{LOCAL_ORG}/{LOCAL_REPO_NAME}").status_code == 404:
            api.post(f"/orgs/{LOCAL_ORG}/repos", json={"name": LOCAL_REPO_NAME, "private": False,
                                                      "default_branch": "main"}).raise_for_status()


def _mirror(ctx: Context) -> str:
    mirror = ctx.workdir / "mirror" / "openova.git"
    if (mirror / "HEAD").exists():  # a re-run: update the existing mirror (ADR-0002 §4.5)
        ctx.git("remote", "update", "--prune", url=UPSTREAM_REPO, cwd=mirror)
    else:
        mirror.parent.mkdir(parents=True, exist_ok=True)
        ctx.git("clone", "--quiet", "--mirror", UPSTREAM_REPO, str(mirror), url=UPSTREAM_REPO)
    ctx.git("push", "--quiet", "--mirror", _authed(ctx, LOCAL_REPO), cwd=mirror)
    upstream = ctx.git("rev-parse", "refs/heads/main", cwd=mirror).strip()
    return upstream


async def gitea_mirror(run: StepRun) -> str:
    ctx = run.context
    await run.net("create openova/openova on the local Gitea", _ensure_local_repo, ctx)
    upstream = await run.net(f"mirror {UPSTREAM_REPO}", _mirror, ctx)
    local = await run.net(f"read {LOCAL_REPO}", ctx.ls_remote, LOCAL_REPO)
    if local != upstream:
        raise StepFailed(f"local Gitea main is {local}, the mirror's is {upstream}")
    return f"{LOCAL_REPO} mirrors {UPSTREAM_REPO} at {local[:12]}"


# -- 2 harbor-projects -------------------------------------------------------------------------------
def _ensure_projects(ctx: Context) -> list[str]:
    created = []
    for project, upstream in content.PROXY_PROJECTS.items():
        if _harbor(ctx, "GET", "/api/v2.0/projects", params={"project_name": project}).json():
            continue  # check before creating (R-CUT-05 step 2)
        name = f"{upstream}-upstream"
        found = _harbor(ctx, "GET", "/api/v2.0/registries", params={"name": name}).json()
        if not found:
            _harbor(ctx, "POST", "/api/v2.0/registries", json={"name": name, "type": "docker-registry",
                                                               "url": f"https://{upstream}"}).raise_for_status()
            found = _harbor(ctx, "GET", "/api/v2.0/registries", params={"name": name}).json()
        _harbor(ctx, "POST", "/api/v2.0/projects", json={"project_name": project, "registry_id": found[0]["id"],
                                                        "metadata": {"public": "true"}}).raise_for_status()
        created.append(project)
    if not _harbor(ctx, "GET", "/api/v2.0/projects", params={"project_name": CHART_PROJECT}).json():
        _harbor(ctx, "POST", "/api/v2.0/projects", json={"project_name": CHART_PROJECT}).raise_for_status()
    return created


async def harbor_projects(run: StepRun) -> str:
    ctx = run.context
    # The previous step's effect: the bootstrap-kit is readable from the local Gitea.
    await run.net(f"check {LOCAL_REPO}", ctx.ls_remote, LOCAL_REPO)
    created = await run.net("create the proxy-cache projects", _ensure_projects, ctx)
    projects = {p["name"]: p for p in await ctx.blocking(lambda: _harbor(ctx, "GET", "/api/v2.0/projects").json())}
    missing = [p for p in content.PROXY_PROJECTS if (projects.get(p) or {}).get("registry_id") is None]
    if missing:
        raise StepFailed(f"proxy-cache projects missing on {ctx.config.local_harbor}: {missing}")
    return f"7 proxy-cache projects on {ctx.config.local_harbor} ({len(created)} created now)"


# -- 3 harbor-prewarm --------------------------------------------------------------------------------
def kit_images(ctx: Context) -> list[str]:
    """Every image the bootstrap-kit manifests name, read from the local mirror (step 1's effect)."""
    mirror = ctx.workdir / "mirror" / "openova.git"
    names = ctx.git("ls-tree", "-r", "--name-only", "main", "clusters/_template/bootstrap-kit", cwd=mirror).split()
    images = set()
    for name in names:
        for document in yaml.safe_load_all(ctx.git("show", f"main:{name}", cwd=mirror)):
            image = ((document or {}).get("spec") or {}).get("values", {}).get("image")
            if image:
                images.add(image)
    return sorted(images | {content.SENTINEL_IMAGE})


def local_path(image: str) -> tuple[str, str]:
    """(repository on the local Harbor, reference) for an upstream image: its proxy-cache project path."""
    registry, repository, reference = split_image(image)
    project = next(p for p, upstream in content.PROXY_PROJECTS.items() if upstream == registry)
    return f"{project}/{repository}", reference


def _pull_through(ctx: Context, repository: str, reference: str) -> dict[str, Any]:
    response = _harbor(ctx, "GET", f"/v2/{repository}/manifests/{reference}")
    if response.status_code != 200:
        raise StepFailed(f"{ctx.config.local_harbor}/{repository}:{reference}: {response.text[:300]}")
    manifest = response.json()
    for layer in [manifest["config"], *manifest.get("layers", [])]:
        blob = _harbor(ctx, "GET", f"/v2/{repository}/blobs/{layer['digest']}")
        if blob.status_code != 200:
            raise StepFailed(f"{ctx.config.local_harbor}/{repository}@{layer['digest']}: {blob.text[:300]}")
    return {"body": response.content, "type": response.headers.get("content-type", "")}


def _prewarm(ctx: Context) -> int:
    for image in kit_images(ctx):
        _pull_through(ctx, *local_path(image))
    for entry in content.BOOTSTRAP_KIT:  # charts: through proxy-ghcr, then into the local openova-io project
        pulled = _pull_through(ctx, f"proxy-ghcr/{content.CATALYST_REPO_OWNER}/{entry.chart}", content.CHART_VERSION)
        put = _harbor(ctx, "PUT", f"/v2/{CHART_PROJECT}/{entry.chart}/manifests/{content.CHART_VERSION}",
                      content=pulled["body"], headers={"Content-Type": pulled["type"]})
        if put.status_code != 201:
            raise StepFailed(f"pushing chart {entry.chart} to {CHART_PROJECT}: {put.text[:300]}")
    return len(kit_images(ctx))


def _cached(ctx: Context) -> list[str]:
    """Images not cached on the local Harbor; the tags list shows only what it holds (no upstream fetch)."""
    missing = []
    for image in kit_images(ctx):
        repository, reference = local_path(image)
        listed = _harbor(ctx, "GET", f"/v2/{repository}/tags/list")
        if listed.status_code != 200 or reference not in listed.json().get("tags", []):
            missing.append(image)
    return missing


async def harbor_prewarm(run: StepRun) -> str:
    ctx = run.context
    projects = await run.net("list projects", lambda: _harbor(ctx, "GET", "/api/v2.0/projects").json())
    missing_projects = sorted(set(content.PROXY_PROJECTS) - {p["name"] for p in projects})
    if missing_projects:
        raise StepFailed(f"harbor-projects' effect is missing: no proxy-cache projects {missing_projects}")
    count = await run.net("pre-pull the bootstrap-kit images", _prewarm, ctx)
    missing = await ctx.blocking(_cached, ctx)
    if missing:
        raise StepFailed(f"not cached on {ctx.config.local_harbor}: {missing}")
    return f"{count} images and {len(content.BOOTSTRAP_KIT)} charts cached on {ctx.config.local_harbor}"


# -- 4 registry-pivot --------------------------------------------------------------------------------
def _registry_configmap(ctx: Context, cluster: str) -> str:
    found = ctx.kubes[cluster].get("ConfigMap", "kube-system", "k3s-registries") or {}
    return (found.get("data") or {}).get("registries.yaml", "")


async def registry_pivot(run: StepRun) -> str:
    ctx = run.context
    missing = await run.net("check the prewarm", _cached, ctx)
    if missing:
        raise StepFailed(f"harbor-prewarm's effect is missing: {len(missing)} images not cached, e.g. {missing[0]}")
    local = registries_yaml(f"https://{ctx.config.local_harbor}")
    for cluster, kube in ctx.kubes.items():
        previous = await ctx.blocking(_registry_configmap, ctx, cluster)
        # The kube emulator serves no DaemonSets: the pivot pod a DaemonSet would run is created per node.
        for node in await ctx.blocking(kube.list, "Node"):
            await ctx.blocking(kube.ensure, {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": f"registry-pivot-{node['metadata']['name']}", "namespace": "kube-system",
                             "labels": {"app": "registry-pivot"}},
                "spec": {"nodeName": node["metadata"]["name"], "restartPolicy": "Never",
                         "containers": [{"name": "pivot", "image": content.CUTOVER_IMAGE}]}})
        await ctx.blocking(kube.patch, "ConfigMap", "kube-system", "k3s-registries",
                           {"data": {"registries.yaml": local}})
        sentinel = f"registry-pivot-sentinel-{int(ctx.clock.now().timestamp())}"
        await ctx.blocking(kube.create, {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": sentinel, "namespace": "kube-system"},
            "spec": {"restartPolicy": "Never", "containers": [
                {"name": "sentinel", "image": content.SENTINEL_IMAGE, "imagePullPolicy": "Always"}]}})
        problem = await wait_pulled(ctx, kube, "kube-system", sentinel)
        await ctx.blocking(kube.delete, "Pod", "kube-system", sentinel)
        if problem:  # roll the node back: nothing half-pivoted stays enabled
            await ctx.blocking(kube.patch, "ConfigMap", "kube-system", "k3s-registries",
                               {"data": {"registries.yaml": previous}})
            raise StepFailed(f"sentinel pull through {ctx.config.local_harbor} failed on {cluster}: {problem}")
    return f"registries.yaml on every node of {sorted(ctx.kubes)} points at https://{ctx.config.local_harbor}"


async def wait_pulled(ctx: Context, kube: Any, namespace: str, name: str, budget: float = 120.0) -> str | None:
    """None once every container of the pod has its image, else the last pull error after ``budget``."""
    waited, last = 0.0, "not started"
    while waited <= budget:
        pod = await ctx.blocking(kube.get, "Pod", namespace, name)
        statuses = ((pod or {}).get("status") or {}).get("containerStatuses") or []
        waiting = [s for s in statuses if "waiting" in (s.get("state") or {})
                   and s["state"]["waiting"].get("reason") != "ContainerCreating"]
        if statuses and all("running" in s["state"] or "terminated" in s["state"] for s in statuses):
            return None
        if waiting:
            last = "; ".join(f"{s['image']}: {s['state']['waiting'].get('message', s['state']['waiting']['reason'])}"
                             for s in waiting)
        await ctx.sleep(2.0)
        waited += 2.0
    return last


# -- 5 flux-gitrepository-patch ------------------------------------------------------------------------
async def wait_ready(ctx: Context, kind: str, names: list[str] | None, budget: float = 180.0,
                     flux: Any = None) -> list[str]:
    """Objects of ``kind`` in flux-system (all, or ``names``) not Ready=True after ``budget`` seconds."""
    waited = 0.0
    while True:
        if flux is not None:
            await flux.reconcile_now()
        pending = []
        for cluster, kube in ctx.kubes.items():
            for obj in await ctx.blocking(kube.list, kind, FLUX_NS):
                if names is not None and obj["metadata"]["name"] not in names:
                    continue
                cond = next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"), {})
                current = (obj.get("status") or {}).get("observedGeneration") == obj["metadata"].get("generation")
                if cond.get("status") != "True" or not current:
                    pending.append(f"{cluster}/{obj['metadata']['name']}: {cond.get('message', 'not reconciled')}")
        if not pending or waited >= budget:
            return pending
        await ctx.sleep(10.0)
        waited += 10.0


def flux_step(flux: Any) -> Step:
    async def flux_gitrepository_patch(run: StepRun) -> str:
        ctx = run.context
        await run.net(f"check {LOCAL_REPO}", ctx.ls_remote, LOCAL_REPO)  # gitea-mirror's effect
        for kube in ctx.kubes.values():
            repo = await ctx.blocking(kube.get, "GitRepository", FLUX_NS, "flux-system")
            if repo and repo["spec"].get("url") != LOCAL_REPO:  # a no-op when already set
                await ctx.blocking(kube.patch, "GitRepository", FLUX_NS, "flux-system", {"spec": {"url": LOCAL_REPO}})
        pending = await wait_ready(ctx, "GitRepository", ["flux-system"], flux=flux)
        if pending:
            raise StepFailed(f"GitRepository flux-system is not Ready on {LOCAL_REPO}: {pending}")
        return f"flux-system GitRepository reconciles from {LOCAL_REPO}"

    return flux_gitrepository_patch


# -- 6 helmrepo-patches ----------------------------------------------------------------------------------
def helm_step(flux: Any) -> Step:
    async def helmrepo_patches(run: StepRun) -> str:
        ctx = run.context
        # R-CUT-10: never flip to a registry that does not answer, nor to one without the charts.
        base = await run.net(f"probe https://{ctx.config.local_harbor}/v2/",
                             lambda: _harbor(ctx, "GET", "/v2/").status_code)
        if base != 200:
            raise StepFailed(f"https://{ctx.config.local_harbor}/v2/ answered {base}")
        charts = await run.net("list replicated charts", lambda: [
            c.chart for c in content.BOOTSTRAP_KIT
            if _harbor(ctx, "GET", f"/v2/{CHART_PROJECT}/{c.chart}/tags/list").status_code != 200])
        if charts:
            raise StepFailed(f"harbor-prewarm's effect is missing: charts not on {ctx.config.local_harbor}/"
                             f"{CHART_PROJECT}: {charts[:3]}...")
        url = f"oci://{ctx.config.local_harbor}/{CHART_PROJECT}"
        count = 0
        for kube in ctx.kubes.values():
            for repo in await ctx.blocking(kube.list, "HelmRepository", FLUX_NS):
                if repo["spec"].get("url") != url or repo["spec"].get("secretRef"):
                    await ctx.blocking(kube.patch, "HelmRepository", FLUX_NS, repo["metadata"]["name"],
                                       {"spec": {"url": url, "secretRef": None}})
                    count += 1
            await ctx.blocking(kube.delete, "Secret", FLUX_NS, "ghcr-pull")  # tether 5: nothing references it now
        pending = await wait_ready(ctx, "HelmRepository", None, flux=flux)
        pending += await wait_ready(ctx, "HelmRelease", None, flux=flux)
        if pending:
            raise StepFailed(f"not Ready after the flip to {url}: {pending[:3]}")
        return f"every HelmRepository on {url} and Ready ({count} patched), ghcr-pull Secret removed"

    return helmrepo_patches


# -- 7 catalyst-api-env-patch ----------------------------------------------------------------------------
async def catalyst_api_env_patch(run: StepRun) -> str:
    ctx = run.context
    for cluster, kube in ctx.kubes.items():
        repo = await ctx.blocking(kube.get, "GitRepository", FLUX_NS, "flux-system") or {}
        if repo.get("spec", {}).get("url") != LOCAL_REPO:  # flux-gitrepository-patch's effect
            raise StepFailed(f"flux-gitrepository-patch's effect is missing on {cluster}: url "
                             f"{repo.get('spec', {}).get('url')}")
        deployment = await ctx.blocking(kube.get, "Deployment", "catalyst-system", "catalyst-api")
        if deployment is None:
            continue
        containers = deployment["spec"]["template"]["spec"]["containers"]
        for container in containers:
            env = [e for e in container.get("env") or []
                   if e["name"] not in ("CATALYST_UPSTREAM_FALLBACK", "CATALYST_GITOPS_REPO_URL")]
            container["env"] = [*env, {"name": "CATALYST_GITOPS_REPO_URL", "value": LOCAL_REPO}]
        await ctx.blocking(kube.patch, "Deployment", "catalyst-system", "catalyst-api",
                           {"spec": {"template": {"spec": {"containers": containers}}}})
        url, fallback = upstream_repo_url(await ctx.blocking(kube.get, "Deployment", "catalyst-system", "catalyst-api"))
        if fallback or url != LOCAL_REPO:
            raise StepFailed(f"catalyst-api on {cluster} still reads {url}")
        await run.net(f"catalyst-api reads {url}", ctx.ls_remote, url)
    return f"catalyst-api reads {LOCAL_REPO}; no upstream fallback left"


def describe(result: Any) -> str:
    return result if isinstance(result, str) else json.dumps(result)
