"""gitops: Flux semantics, one engine per vcluster (R-FLUX-01..04, R-ENVC-01..03, D-08).

:class:`GitOpsEngine` bootstraps Flux's CRDs into a vcluster through the Kubernetes API and runs
a GitRepository reconciler (:mod:`.source`) and a Kustomization reconciler (:mod:`.kustomization`)
that build each App repo revision against its pinned Blueprint (:mod:`.render`), apply and prune it
(:mod:`.apply`) and wait for it to be healthy (:mod:`.health`). Time is the Clock's; see
:mod:`.engine` for the settle protocol and :mod:`.settle` for helpers that drive a VirtualClock.
"""

from catalyst_sim.control.gitops.engine import GitOpsEngine, GitOpsError
from catalyst_sim.control.gitops.runtime import Identity, Timing
from catalyst_sim.control.gitops.settle import advance, advance_until, advance_until_blocking

__all__ = [
    "GitOpsEngine",
    "GitOpsError",
    "Identity",
    "Timing",
    "advance",
    "advance_until",
    "advance_until_blocking",
]
