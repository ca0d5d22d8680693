"""The cutover run: eight Jobs strictly in order, the status ConfigMap, the event stream, resume.

``start`` turns the dormant chart into Jobs (R-CUT-04); a second start while one runs is refused.
Each step is a Kubernetes Job ``self-sovereign-cutover-NN-<step>`` in flux-system whose container
must pull and run before the step's work is done and proven (:mod:`.steps`). Progress lives in the
ConfigMap ``flux-system/self-sovereign-cutover-status`` (R-CUT-06): phase, current step, percent,
error, the hold countdown, every step's result, and ``cutoverComplete`` — ``"true"`` only after the
egress block held (R-DOD-03). A control plane that restarts reads that ConfigMap and resumes at the
first step that has not succeeded; every step is idempotent, so re-running one is safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from catalyst_sim.backends.embedded.mothership import content

from .context import Context, StepFailed
from .flux import PlatformFlux
from .proof import EgressProof
from .steps import (
    Step,
    StepRun,
    catalyst_api_env_patch,
    flux_step,
    gitea_mirror,
    harbor_prewarm,
    harbor_projects,
    helm_step,
    registry_pivot,
)
from .tethers import FLUX_NS, JOB_NAMES, STATUS_CONFIGMAP

JOB_BUDGET = 300.0


class CutoverConflict(Exception):
    pass


class CutoverRunner:
    def __init__(self, context: Context, flux: PlatformFlux, publish: Callable[[dict[str, Any]], None]) -> None:
        self.context = context
        self.flux = flux
        self.publish = publish
        self._task: asyncio.Task[None] | None = None
        self.context.busy = 0
        self.last_proof: dict[str, Any] | None = None
        self.steps: dict[str, Step] = {
            "gitea-mirror": gitea_mirror, "harbor-projects": harbor_projects, "harbor-prewarm": harbor_prewarm,
            "registry-pivot": registry_pivot, "flux-gitrepository-patch": flux_step(flux),
            "helmrepo-patches": helm_step(flux), "catalyst-api-env-patch": catalyst_api_env_patch,
            "egress-block-test": self._egress_block_test,
        }

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def idle(self) -> bool:
        """Not working right now: a running cutover is idle while it waits on the clock."""
        return self.context.busy <= 0

    # -- status ConfigMap --------------------------------------------------------------------------------
    def read_status(self) -> dict[str, Any]:
        found = self.context.primary.get("ConfigMap", FLUX_NS, STATUS_CONFIGMAP) or {}
        data = dict(found.get("data") or {})
        steps = json.loads(data.get("steps", "{}") or "{}")
        return {"phase": data.get("phase", "Dormant"), "currentStep": data.get("currentStep", ""),
                "percent": int(data.get("percent", "0") or 0), "error": data.get("error", ""),
                "cutoverComplete": data.get("cutoverComplete") == "true", "operator": data.get("operator", ""),
                "holdRemainingSeconds": float(data.get("holdRemainingSeconds", "0") or 0),
                "skip": json.loads(data.get("skip", "[]") or "[]"),
                "steps": [{"number": i, "name": name, **steps.get(name, {"state": "Pending"})}
                          for i, name in enumerate(JOB_NAMES, start=1)]}

    def _write(self, **changes: Any) -> None:
        data = {k: (v if isinstance(v, str) else json.dumps(v) if isinstance(v, (dict, list)) else
                    str(v).lower() if isinstance(v, bool) else str(v)) for k, v in changes.items()}
        self.context.primary.patch("ConfigMap", FLUX_NS, STATUS_CONFIGMAP, {"data": data})

    async def _set_step(self, name: str, **fields: Any) -> None:
        status = await asyncio.to_thread(self.read_status)
        steps = {s["name"]: {k: v for k, v in s.items() if k not in ("number", "name")} for s in status["steps"]}
        steps[name] = {**steps.get(name, {}), **fields}
        done = sum(1 for s in steps.values() if s.get("state") in ("Succeeded", "Skipped"))
        await asyncio.to_thread(self._write, steps=steps, percent=done * 100 // len(JOB_NAMES))

    def _event(self, kind: str, **data: Any) -> None:
        self.publish({"type": f"catalyst.cutover.{kind}", "time": self.context.clock.now().isoformat(), **data})

    # -- lifecycle -------------------------------------------------------------------------------------------
    async def start(self, operator: str, skip: list[str]) -> dict[str, Any]:
        unknown = [s for s in skip if s not in JOB_NAMES]
        if unknown:
            raise ValueError(f"skip: unknown cutover steps {unknown}; the steps are {list(JOB_NAMES)}")
        status = await asyncio.to_thread(self.read_status)
        if self.running or status["phase"] == "Running":
            raise CutoverConflict(f"a cutover is already running (step {status['currentStep'] or 'starting'})")
        if status["cutoverComplete"]:
            raise CutoverConflict("the cutover is complete; it is not reversible and has nothing left to do")
        previous = {s["name"]: s for s in status["steps"]}
        steps = {name: {"state": "Pending"} if previous[name].get("state") != "Succeeded" else
                 {k: v for k, v in previous[name].items() if k not in ("number", "name")} for name in JOB_NAMES}
        await asyncio.to_thread(self._write, phase="Running", operator=operator, error="", skip=skip, steps=steps,
                                currentStep="", startedAt=self.context.clock.now().isoformat())
        self._event("started", operator=operator, skip=skip)
        self._launch()
        return await asyncio.to_thread(self.read_status)

    def _launch(self, work: Awaitable[Any] | None = None) -> None:
        self.context.busy += 1
        self._task = asyncio.create_task(work or self._run(), name="sovereignty-cutover")  # type: ignore[arg-type]

        def done(_: asyncio.Task[None]) -> None:
            self.context.busy = max(0, self.context.busy - 1)

        self._task.add_done_callback(done)

    async def resume(self) -> None:
        """After a control-plane restart: carry on where the status ConfigMap says the run was."""
        status = await asyncio.to_thread(self.read_status)
        if status["phase"] == "Running" and not self.running:
            self._event("resumed", at=status["currentStep"])
            self._launch()

    async def stop(self) -> None:
        """A crash as far as the run is concerned: the task dies, the ConfigMap keeps the progress."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.context.busy = 0

    # -- the run -----------------------------------------------------------------------------------------------
    async def _run(self) -> None:
        status = await asyncio.to_thread(self.read_status)
        skip = set(status["skip"])
        states = {s["name"]: s.get("state") for s in status["steps"]}
        for number, name in enumerate(JOB_NAMES, start=1):
            if states.get(name) in ("Succeeded", "Skipped"):
                continue
            await asyncio.to_thread(self._write, currentStep=name)
            if name in skip:
                await self._set_step(name, state="Skipped", message="skipped by the operator (a drill)")
                self._event("step.skipped", step=name, number=number)
                continue
            ok = await self._one(number, name)
            if not ok:
                return
        final = await asyncio.to_thread(self.read_status)
        held = next(s for s in final["steps"] if s["name"] == "egress-block-test").get("state") == "Succeeded"
        await asyncio.to_thread(self._write, phase="Succeeded" if held else "Incomplete", currentStep="",
                                cutoverComplete=held)
        self._event("completed" if held else "incomplete", cutoverComplete=held)

    async def _one(self, number: int, name: str) -> bool:
        started = self.context.clock.now().isoformat()
        await self._set_step(name, state="Running", startedAt=started, message="")
        self._event("step.started", step=name, number=number)
        notes: list[str] = []

        def note(text: str) -> None:
            notes.append(text)
            self._event("step.progress", step=name, number=number, message=text)

        try:
            await self._job(number, name)
            message = await self.steps[name](StepRun(self.context, note))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # StepFailed, or anything unexpected: recorded, never a silent death
            message = str(exc) if isinstance(exc, StepFailed) else f"{type(exc).__name__}: {exc}"
            await self._set_step(name, state="Failed", message=message, notes=notes[-5:],
                                 finishedAt=self.context.clock.now().isoformat())
            await asyncio.to_thread(self._write, phase="Failed", error=f"{name}: {message}")
            self._event("step.failed", step=name, number=number, message=message)
            return False
        await self._set_step(name, state="Succeeded", message=message, notes=notes[-5:], retries=sum(
            "retrying" in n for n in notes), finishedAt=self.context.clock.now().isoformat())
        self._event("step.succeeded", step=name, number=number, message=message)
        return True

    async def _job(self, number: int, name: str) -> None:
        """The step's Job: created once (a resumed run reuses it), its container pulled and run."""
        kube = self.context.primary
        job = f"self-sovereign-cutover-{number:02d}-{name}"
        if await asyncio.to_thread(kube.get, "Job", FLUX_NS, job) is None:
            await asyncio.to_thread(kube.create, {
                "apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": job, "namespace": FLUX_NS,
                             "labels": {"catalyst.openova.io/cutover-step": str(number)}},
                "spec": {"backoffLimit": 6, "template": {"spec": {
                    "restartPolicy": "Never", "serviceAccountName": "self-sovereign-cutover",
                    "containers": [{"name": name, "image": content.CUTOVER_IMAGE, "args": [name]}]}}}})
        waited = 0.0
        while waited <= JOB_BUDGET:
            current = await asyncio.to_thread(kube.get, "Job", FLUX_NS, job) or {}
            if (current.get("status") or {}).get("succeeded"):
                return
            await self.context.sleep(2.0)
            waited += 2.0
        why = await asyncio.to_thread(self._pod_trouble, job)
        raise StepFailed(f"Job {job} did not complete within {JOB_BUDGET:.0f}s: {why}")

    def _pod_trouble(self, job: str) -> str:
        """What keeps the Job's pod from running, as kubectl describe would show it (blocking)."""
        kube = self.context.primary
        pods = kube.list("Pod", FLUX_NS, selector=f"job-name={job}")
        names = {pod["metadata"]["name"] for pod in pods}
        # The pull's own error is in the pod's Failed events; the waiting state then only says "Back-off".
        failures = [e for e in kube.list("Event", FLUX_NS) if e.get("type") == "Warning"
                    and (e.get("involvedObject") or {}).get("name") in names and e.get("reason") == "Failed"]
        if failures:
            return str(failures[-1].get("message", ""))
        for pod in pods:
            for container in (pod.get("status") or {}).get("containerStatuses") or []:
                waiting = (container.get("state") or {}).get("waiting") or {}
                if waiting.get("reason"):
                    return f"{waiting['reason']}: {waiting.get('message', '')}".rstrip(": ")
        return "its pod could not pull or run" if pods else "no pod was created"

    async def _egress_block_test(self, run: StepRun) -> str:
        status = await asyncio.to_thread(self.read_status)
        previous = next(s for s in status["steps"] if s["name"] == "catalyst-api-env-patch")
        if previous.get("state") != "Succeeded":
            raise StepFailed("catalyst-api-env-patch has not succeeded: nothing to prove yet")
        result = await self.proof(run.note)
        if not result["held"]:
            raise StepFailed(f"the egress block did not hold: {'; '.join(result['brokenTethers'])}")
        return f"held for {self.context.config.hold_seconds:.0f}s with {result['samples']} green samples"

    async def start_proof(self) -> None:
        """The egress-block proof alone, on whatever state the Sovereign is in (a tethered one fails it)."""
        if self.running:
            raise CutoverConflict("a cutover or proof is already running")
        self.last_proof = {"held": None, "running": True}

        async def alone() -> None:
            await self.proof(lambda text: self._event("proof.progress", message=text))

        self._launch(alone())

    async def proof(self, note: Callable[[str], None]) -> dict[str, Any]:
        def countdown(seconds: float) -> None:
            self._write(holdRemainingSeconds=f"{seconds:.0f}")

        result = (await EgressProof(self.context, self.flux, note, countdown).run()).as_dict()
        self.last_proof = {**result, "finishedAt": self.context.clock.now().isoformat()}
        self._event("proof", **result)
        return result


Runner = Callable[[], Awaitable[None]]
