"""catalog-svc and blueprint-controller (R-CAT): the Blueprint registry, version ranges, the D-06
expression language and dependency flattening. See each module for the requirements it covers."""

from catalyst_sim.control.catalog.flatten import (
    ExistingApplication,
    FlatNode,
    FlatPlan,
    ParentEdge,
    SkippedDependency,
    flatten,
)
from catalyst_sim.control.catalog.registry import BlueprintRegistry, RegisteredBlueprint, check_blueprint

__all__ = [
    "BlueprintRegistry",
    "ExistingApplication",
    "FlatNode",
    "FlatPlan",
    "ParentEdge",
    "RegisteredBlueprint",
    "SkippedDependency",
    "check_blueprint",
    "flatten",
]
