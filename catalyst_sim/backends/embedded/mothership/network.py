"""The simulated network of a Sovereign: which loopback address a host name resolves to.

Kubernetes objects keep the real addresses (``https://github.com/openova-io/openova``,
``oci://ghcr.io/openova-io``, ``https://harbor.openova.io``) so they read like a real Sovereign's.
:class:`Network` is the resolver every simulated client goes through (like ``/etc/hosts`` plus
plaintext on loopback): the mothership's hosts resolve to their Toxiproxy proxies, so disabling a
proxy black-holes that host exactly as a firewall would, and the Sovereign's own services resolve
to their servers. HTTP keeps the original ``Host`` header (name-based virtual hosting); git is
pointed at the loopback address with ``url.<base>.insteadOf``.
"""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

import httpx


class UnknownHost(OSError):
    pass


class Network:
    def __init__(self, timeout: float = 5.0) -> None:
        self._hosts: dict[str, str] = {}  # host name -> "127.0.0.1:port"
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=timeout)

    def add(self, host: str, address: str) -> None:
        with self._lock:
            self._hosts[host] = address

    def address(self, host: str) -> str:
        with self._lock:
            found = self._hosts.get(host)
        if found is None:
            raise UnknownHost(f"could not resolve host: {host}")
        return found

    def hosts(self) -> dict[str, str]:
        with self._lock:
            return dict(self._hosts)

    def rewrite(self, url: str) -> tuple[str, str]:
        """(loopback URL, original host) for ``url``; ``oci://`` and ``https://`` become ``http://``."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        address = self.address(host)
        query = f"?{parts.query}" if parts.query else ""
        return f"http://{address}{parts.path}{query}", host

    def fetch(self, url: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[
            int, dict[str, str], bytes]:
        target, host = self.rewrite(url)
        response = self._client.request(method, target, headers={**(headers or {}), "Host": host})
        return response.status_code, dict(response.headers), response.content

    def request(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        target, host = self.rewrite(url)
        headers = dict(kwargs.pop("headers", None) or {})  # type: ignore[call-overload]
        return self._client.request(method, target, headers={**headers, "Host": host}, **kwargs)  # type: ignore[arg-type]

    def git_config(self, url: str) -> list[str]:
        """``git -c`` options that send ``url``'s host to its loopback address."""
        parts = urlsplit(url)
        address = self.address(parts.hostname or "")
        return ["-c", f"url.http://{address}/.insteadOf={parts.scheme}://{parts.netloc}/"]

    def close(self) -> None:
        self._client.close()
