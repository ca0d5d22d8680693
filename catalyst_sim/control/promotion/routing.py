"""Which branches a promotion connects (R-PROMO-01, R-NAME-14, D-14).

A promotion is a pull request inside one App repo from the source Environment's branch to the
destination's. The destination must be the *next* step of the promotion chain among the
Organization's existing Environments (develop -> staging -> uat -> main, D-14): acme-stg promotes
to acme-prod when acme has no uat Environment, to acme-uat when it has one. Skipping a step would
skip the lower Environment's soak, and ``poc`` is outside the chain.
"""

from __future__ import annotations

from collections.abc import Iterable

from catalyst_sim.model import naming
from catalyst_sim.model.base import CatalystError


def promotion_branches(source: str, destination: str, env_types: Iterable[str]) -> tuple[str, str]:
    """(head, base) branches for promoting ``source`` -> ``destination``; a 422 naming ``to`` otherwise.

    ``env_types`` are those of the Organization's existing Environments.
    """
    src = naming.parse_environment_name(source, "environment")
    dst = naming.parse_environment_name(destination, "to")
    if src.organization != dst.organization:
        raise CatalystError.single(
            f"{source} and {destination} belong to different Organizations; a promotion is a pull request inside "
            "one Organization's App repo (R-PROMO-01)", field="to", object=f"Environment/{destination}")
    if source == destination:
        raise CatalystError.single(f"cannot promote {source} to itself", field="to",
                                   object=f"Environment/{destination}")
    head = naming.branch_for_env_type(src.env_type)
    base = naming.branch_for_env_type(dst.env_type)
    existing = set(env_types)
    target = naming.promotion_target(head, existing | {src.env_type})
    if target is None:
        raise CatalystError.single(
            f"{source} ({head}) has nothing to promote to: it is the top of the promotion chain or outside it "
            f"({' -> '.join(naming.promotion_chain(existing))}) (R-PROMO-01, D-14)", field="to",
            object=f"Environment/{destination}")
    if base != target:
        expected = naming.environment_name(src.organization, naming.env_type_for_branch(target))
        raise CatalystError.single(
            f"{source} promotes to {expected} ({head} -> {target}), not to {destination} ({base}): promotions "
            f"follow {' -> '.join(naming.promotion_chain(existing))} (R-PROMO-01, D-14)", field="to",
            object=f"Environment/{destination}")
    return head, base


def is_promotion_pair(head: str, base: str, env_types: Iterable[str]) -> bool:
    """Whether a pull request from ``head`` into ``base`` is a promotion (a PR opened in Gitea counts
    too: one policy whatever the surface, R-SURF-03, R-PROMO-07)."""
    if head not in naming.BRANCH_ENV_TYPES or base not in naming.BRANCH_ENV_TYPES:
        return False
    existing = set(env_types)
    if naming.env_type_for_branch(base) not in existing:
        return False
    return naming.promotion_target(head, existing | {naming.env_type_for_branch(head)}) == base
