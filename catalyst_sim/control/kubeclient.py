"""A ``kubernetes`` ApiClient from a kubeconfig, for the control plane's controllers.

For a kubeconfig user with a plain bearer token, the client's loader still installs a
``refresh_api_key_hook`` that re-applies the whole kubeconfig before every request; setting
``host`` again makes it read every proxy variable of the environment (``urllib.getproxies``).
That cost about a third of a millisecond per request, on every one of the hundreds of
requests an install makes. A static token never changes, so the hook is dropped. Tokens from
an ``exec`` or ``auth-provider`` plugin expire and keep it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config


def api_client(kubeconfig: Path | dict[str, Any]) -> k8s.ApiClient:
    """An ApiClient for the kubeconfig's current context (a path, or the parsed document)."""
    document = kubeconfig if isinstance(kubeconfig, dict) else yaml.safe_load(Path(kubeconfig).read_text())
    configuration = k8s.Configuration()
    k8s_config.load_kube_config_from_dict(document, client_configuration=configuration)
    if _static_token(document):
        configuration.refresh_api_key_hook = None
    return k8s.ApiClient(configuration)


def _static_token(document: dict[str, Any]) -> bool:
    contexts = {c.get("name"): c.get("context") or {} for c in document.get("contexts") or []}
    users = {u.get("name"): u.get("user") or {} for u in document.get("users") or []}
    user = users.get(contexts.get(document.get("current-context"), {}).get("user"), {})
    return "token" in user and not {"exec", "auth-provider"} & set(user)
