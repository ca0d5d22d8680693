"""User identity of a Sovereign: Keycloak topologies emulated as OIDC issuers (R-ID-02, R-ID-04..06, R-SOV-02).

``issuers`` is one realm (keys, JWKS, tokens on the Clock), ``topology`` lays realms out per
``keycloakTopology``, ``verify`` authenticates Bearer tokens and authorizes by {org, environment, role}
(R-PROJ-04), and ``server`` serves the realms over HTTP like Keycloak.
"""

from catalyst_sim.control.identity.issuers import (
    ACCESS_TOKEN_LIFETIME,
    ADMIN_REALM,
    ALL_ENVIRONMENTS,
    AUDIENCE,
    REFRESH_TOKEN_LIFETIME,
    ROLES,
    Issuer,
    TokenPair,
)
from catalyst_sim.control.identity.topology import (
    KEYCLOAK_TOPOLOGIES,
    PER_ORGANIZATION,
    SHARED_SOVEREIGN,
    IdentityTopology,
    KeycloakInstance,
)
from catalyst_sim.control.identity.verify import Authenticator, Principal

__all__ = [
    "ACCESS_TOKEN_LIFETIME",
    "ADMIN_REALM",
    "ALL_ENVIRONMENTS",
    "AUDIENCE",
    "KEYCLOAK_TOPOLOGIES",
    "PER_ORGANIZATION",
    "REFRESH_TOKEN_LIFETIME",
    "ROLES",
    "SHARED_SOVEREIGN",
    "Authenticator",
    "IdentityTopology",
    "Issuer",
    "KeycloakInstance",
    "Principal",
    "TokenPair",
]
