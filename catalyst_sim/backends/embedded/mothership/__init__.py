"""The mothership a new Sovereign is tethered to (ADR-0002 §2.1), reachable only through Toxiproxy.

``oci`` (registry state, Harbor proxy-cache), ``registry_api`` (the OCI distribution HTTP API),
``network`` (host name resolution of the simulated network), ``content`` (the public repo's
bootstrap-kit and its artifacts), ``containerd`` (a node's registries.yaml and image pulls),
``server`` (``Mothership`` lifecycle).
"""

from .server import Mothership

__all__ = ["Mothership"]
