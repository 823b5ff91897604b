"""Load the drafting model once per worker process.

A model is loaded on the first job that needs it and kept for the rest: loading is slow and takes
gigabytes.  When loading fails (no weights, no network, a gated hub id without a
token, a bad folder) every job must fail with that reason -- never with canned text -- yet not
spend a minute each retrying the load: the failure is remembered for ``FAILURE_TTL_S`` seconds.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from radassist.config import ModelSettings
from radassist.errors import PermanentFailure, RadAssistError
from radassist.models.base import GenerationBackend

logger = logging.getLogger(__name__)

FAILURE_TTL_S = 60.0
HUB_PROBE_TIMEOUT_S = 5.0

_lock = threading.Lock()
_loaded: dict[ModelSettings, GenerationBackend] = {}
_failed: dict[ModelSettings, tuple[float, PermanentFailure]] = {}


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or Path(name).expanduser().exists()


def _clean_reason(exc: BaseException) -> str:
    """Exception class and first line only: library messages can run to pages."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first[:300]}" if first else type(exc).__name__


def _in_hub_cache(settings: ModelSettings) -> bool:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(settings.name, "config.json", revision=settings.revision or None)
    return isinstance(found, str)


def _hub_reachable(timeout_s: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """One quick TCP connect to the hub: huggingface_hub itself retries for minutes when offline."""
    from huggingface_hub import constants

    url = urlsplit(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _load_adapter(settings: ModelSettings) -> GenerationBackend:
    """A site backend class named ``package.module:Class`` (see README: adding a model adapter)."""
    import importlib

    module_name, _, class_name = settings.adapter.partition(":")
    if not module_name or not class_name:
        raise PermanentFailure("[model] adapter must be 'package.module:Class'", code="model.unavailable")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise PermanentFailure(
            f"model adapter {settings.adapter!r} cannot be imported ({type(exc).__name__})", code="model.unavailable"
        ) from None
    model: GenerationBackend = cls(settings)
    return model


def _load(settings: ModelSettings) -> GenerationBackend:
    if settings.backend == "adapter":
        return _load_adapter(settings)
    if settings.backend == "openai":
        from radassist.models.openai_backend import OpenAIDraftModel

        return OpenAIDraftModel(settings)
    from radassist.models.transformers_backend import TransformersDraftModel

    name = settings.name
    if _looks_like_path(name):
        folder = Path(name).expanduser()
        if not folder.is_dir():
            raise PermanentFailure(f"model folder not found: {folder}", code="model.unavailable")
        if not (folder / "config.json").is_file():
            raise PermanentFailure(f"model folder has no config.json: {folder}", code="model.unavailable")
        return TransformersDraftModel(settings)
    if not settings.local_files_only:
        # Prefer the local cache (no network at all); go to the hub only when it lacks the model.
        if _in_hub_cache(settings):
            try:
                return TransformersDraftModel(settings.model_copy(update={"local_files_only": True}))
            except Exception as exc:  # noqa: BLE001 -- any failure: fall back to the hub
                logger.info("cached copy incomplete (%s); trying the hub", type(exc).__name__)
        if not _hub_reachable():
            raise PermanentFailure(
                f"model {name!r} is not in the local cache and the hub cannot be reached",
                code="model.unavailable",
            )
    return TransformersDraftModel(settings)


def _load_clean(settings: ModelSettings) -> GenerationBackend:
    try:
        return _load(settings)
    except RadAssistError:
        raise
    except Exception as exc:  # noqa: BLE001 -- anything the hub, transformers or torch raise while loading
        raise PermanentFailure(
            f"model {settings.name!r} could not be loaded ({_clean_reason(exc)})", code="model.unavailable"
        ) from None


def get_draft_model(model_settings: ModelSettings) -> GenerationBackend:
    """The process's model for these settings, loading it on first use.

    Raises ``PermanentFailure`` ``model.unavailable`` (remembered for ``FAILURE_TTL_S``) when it
    cannot be loaded.
    """
    with _lock:
        model = _loaded.get(model_settings)
        if model is not None:
            return model
        failure = _failed.get(model_settings)
        if failure is not None and time.monotonic() - failure[0] < FAILURE_TTL_S:
            raise PermanentFailure(failure[1].message, code=failure[1].code)
        started = time.perf_counter()
        try:
            model = _load_clean(model_settings)
        except PermanentFailure as exc:
            _failed[model_settings] = (time.monotonic(), exc)
            logger.error("drafting model unavailable: %s", exc.message)
            raise
        _failed.pop(model_settings, None)
        _loaded[model_settings] = model
        logger.info("drafting model %s loaded in %.1f s", model.name, time.perf_counter() - started)
        return model


def clear_cache() -> None:
    """Forget loaded models and remembered failures (tests; a worker restart does the same)."""
    with _lock:
        _loaded.clear()
        _failed.clear()
