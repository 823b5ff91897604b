"""The web app's secret key: from ``[web] secret_key``, or generated once into the data folder."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from radassist.config import Settings
from radassist.errors import ConfigError

logger = logging.getLogger(__name__)

SECRET_FILE = "web-secret.key"
MIN_LENGTH = 32
PLACEHOLDERS = frozenset(
    {"change-me", "changeme", "changethis", "secret", "secret-key", "secret_key", "please-change", "xxx", "todo"}
)


def _refuse_placeholder(value: str) -> None:
    lowered = value.strip().lower()
    if lowered in PLACEHOLDERS or "change" in lowered and "me" in lowered or len(value) < MIN_LENGTH:
        raise ConfigError(
            f"[web] secret_key is a placeholder or shorter than {MIN_LENGTH} characters; set a random one "
            "(python -c 'import secrets; print(secrets.token_urlsafe(48))') or leave it empty to generate one",
            code="config.secret_placeholder",
        )


def secret_key(settings: Settings) -> bytes:
    """The configured key, refusing placeholders; else the data folder's key, created on first use (0600)."""
    configured = settings.web.secret_key.get_secret_value()
    if configured:
        _refuse_placeholder(configured)
        return configured.encode("utf-8")
    path: Path = settings.storage.path / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process of this installation won the race; read its key
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
            logger.info("generated a web secret key in the data folder")
    value = path.read_text().strip()
    if len(value) < MIN_LENGTH:
        raise ConfigError("the data folder's web-secret.key is too short; delete it to regenerate",
                          code="config.secret_placeholder")
    return value.encode("utf-8")
