"""Secrets: ExternalSecrets synced from the region's OpenBao, Reloader, rotation (R-SEC, R-MR-05).

See :mod:`.controller` (the External-Secrets equivalent of one vcluster), :mod:`.reloader`,
:mod:`.provider` (OpenBao through hvac, logged in by JWT-SVID) and :mod:`.service` (the control
plane's side: Org setup, generated values, rotation, App cards).
"""

from catalyst_sim.control.secrets.controller import SecretsController, SecretsTiming, SyncStatus
from catalyst_sim.control.secrets.service import GRACE, Rotation, SecretsService, credentials_path

__all__ = ["GRACE", "Rotation", "SecretsController", "SecretsService", "SecretsTiming", "SyncStatus",
           "credentials_path"]
