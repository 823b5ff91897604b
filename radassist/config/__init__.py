"""Settings: loaded once by an entry point, fully typed, frozen, passed down explicitly.

Order of precedence: built-in defaults < the TOML file < ``RADASSIST_<SECTION>_<KEY>`` environment
variables.  List sections (``[[destinations]]``) are overridden as a whole with a JSON value, e.g.
``RADASSIST_DESTINATIONS='[{"name": "pacs", "ae_title": "PACS", "host": "10.0.0.5", "port": 104}]'``.

Secrets need not be written into the file or the environment: any setting ``<key>`` can instead be
given as ``<key>_file``, the path of a file holding the value (Docker and Kubernetes secrets), in the
TOML (``[database] url_file = "/run/secrets/db-url"``) or the environment
(``RADASSIST_DATABASE_URL_FILE=/run/secrets/db-url``).  One trailing newline is stripped.

There is no module-level instance and no reload: a changed file takes effect at the next start.
"""

from __future__ import annotations

from radassist.config.common import AETitle, Section, SrClassName, validate_ae_title
from radassist.config.destinations import (
    Destination,
    DicomDestination,
    DicomwebDestination,
    OrthancDestination,
)
from radassist.config.dicom import AllowedCaller, DicomSettings, PipelineSettings, RequiredSeries
from radassist.config.hl7 import Hl7Settings
from radassist.config.load import ENV_PREFIX, FILE_SUFFIX, load_settings
from radassist.config.model import ModelSettings, PromptProfileSettings
from radassist.config.service import DeliverySettings, LoggingSettings, WebSettings
from radassist.config.settings import MASK, Settings, mask_url
from radassist.config.storage import (
    DatabaseSettings,
    PreparedSettings,
    QueueSettings,
    RetentionSettings,
    StorageSettings,
)

__all__ = [
    "AETitle", "AllowedCaller", "DatabaseSettings", "DeliverySettings", "Destination", "DicomDestination",
    "DicomSettings", "DicomwebDestination", "ENV_PREFIX", "FILE_SUFFIX", "Hl7Settings", "LoggingSettings", "MASK",
    "ModelSettings", "OrthancDestination", "PipelineSettings", "PreparedSettings", "PromptProfileSettings", "QueueSettings",
    "RequiredSeries", "RetentionSettings", "Section", "Settings", "SrClassName", "StorageSettings", "WebSettings", "load_settings",
    "mask_url", "validate_ae_title",
]
