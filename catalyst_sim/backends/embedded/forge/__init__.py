"""The embedded Gitea (DESIGN.md §3 "Gitea API"): real bare repos, Gitea's API v1 subset, smart HTTP.

Laid out like moto: ``models`` (state tables), ``bare`` (git plumbing), ``service`` (Gitea's rules),
``pulls`` (pull requests, reviews, merges, branch protection: promotion), ``convert`` (JSON shapes),
``webhooks`` (delivery), ``api``/``api_pulls`` and ``smart_http`` (wire protocols), ``server``
(:class:`EmbeddedForge`, the object the embedded backend starts).
"""

from catalyst_sim.backends.embedded.forge.server import EmbeddedForge
from catalyst_sim.backends.embedded.forge.service import Settings
from catalyst_sim.backends.embedded.forge.webhooks import Delivery

__all__ = ["Delivery", "EmbeddedForge", "Settings"]
