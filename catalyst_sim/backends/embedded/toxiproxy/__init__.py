"""Toxiproxy emulator: the real HTTP API plus an asyncio TCP proxy with the real toxics.

Laid out like moto: ``state`` (models, validation, errors), ``proxy`` (the TCP data plane and
the proxy collection), ``api`` (HTTP handlers), ``server`` (``EmbeddedToxiproxy`` lifecycle).
"""

from .server import EmbeddedToxiproxy
from .state import TOXIPROXY_VERSION, ToxiproxyError

__all__ = ["TOXIPROXY_VERSION", "EmbeddedToxiproxy", "ToxiproxyError"]
