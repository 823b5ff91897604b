"""Build :class:`Settings` from a TOML file and ``RADASSIST_*`` environment variables (see the package docstring)."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, SecretStr, ValidationError

from radassist.config.destinations import Destination, DicomDestination
from radassist.config.priors import DicomPriorSource, PriorSource
from radassist.config.settings import Settings
from radassist.errors import ConfigError

ENV_PREFIX = "RADASSIST_"
FILE_SUFFIX = "_file"
"""``<key>_file`` names a file holding the value of ``<key>`` (see the module docstring)."""

#: Sections that are lists of tables, each entry's model chosen by its ``kind`` (``dicom`` when absent).
_LIST_SECTIONS: dict[str, tuple[Any, type[BaseModel]]] = {
    "destinations": (Destination, DicomDestination),
    "prior_sources": (PriorSource, DicomPriorSource),
}
#: Every top-level list section, overridden as a whole by one JSON list (``RADASSIST_PIPELINES='[...]'``).
_JSON_LIST_SECTIONS = frozenset({*_LIST_SECTIONS, "pipelines"})


def _env_value(section: Any, key: str, raw: str) -> Any:
    """For a setting that is a list or a table, a JSON value as itself
    (``RADASSIST_DICOM_ALLOWED_CALLERS='[{"ae_title": "PACS"}]'``); anything else as the text it is,
    for pydantic to read (a text or secret setting is never parsed)."""
    model = section.annotation if isinstance(section.annotation, type) else None
    field = model.model_fields.get(key) if model is not None and issubclass(model, BaseModel) else None
    if field is None or field.annotation in (str, SecretStr, str | None):
        return raw
    if raw.lstrip()[:1] in ("[", "{"):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """Turn ``RADASSIST_<SECTION>_<KEY>`` variables into a nested mapping."""
    overrides: dict[str, Any] = {}
    sections = {name: field for name, field in Settings.model_fields.items()}
    for var, raw in environ.items():
        if not var.startswith(ENV_PREFIX):
            continue
        rest = var[len(ENV_PREFIX) :].lower()
        if rest in _JSON_LIST_SECTIONS:
            try:
                overrides[rest] = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{var} must be a JSON list: {exc.msg}") from None
            continue
        section, _, key = rest.partition("_")
        if section not in sections or not key or section in _JSON_LIST_SECTIONS:
            continue
        overrides.setdefault(section, {})[key] = _env_value(sections[section], key, raw)
    return overrides


def _merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def _entry_model(section: str, item: Mapping[str, Any]) -> type[BaseModel]:
    """The model of one entry of a list section, by its ``kind``, as the section's union decides."""
    union, default = _LIST_SECTIONS[section]
    models: tuple[type[BaseModel], ...] = get_args(get_args(union)[0])
    kinds = {get_args(model.model_fields["kind"].annotation)[0]: model for model in models}
    return kinds.get(str(item.get("kind", "dicom")), default)


def _read_value_files(values: Mapping[str, Any], model: type[BaseModel], where: str) -> dict[str, Any]:
    """Replace each ``<key>_file`` that is not itself a setting of ``model`` by ``<key>`` = the file's text.

    ``tls_cert_file`` and the like are settings of their own and stay untouched.  Errors name the
    setting and the file, never the file's content.
    """
    fields = model.model_fields
    resolved = dict(values)
    for key, value in values.items():
        if not key.endswith(FILE_SUFFIX) or key in fields:
            continue
        target = key[: -len(FILE_SUFFIX)]
        if target not in fields:
            continue  # an unknown key: validation names it
        if target in values:
            raise ConfigError(f"invalid configuration: {where}{target}: set either {target} or {key}, not both")
        try:
            text = Path(str(value)).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise ConfigError(f"invalid configuration: {where}{key}: cannot read {value}: {reason}") from None
        del resolved[key]
        resolved[target] = text.removesuffix("\n").removesuffix("\r")
    return resolved


def _read_secret_files(data: Mapping[str, Any]) -> dict[str, Any]:
    """Apply :func:`_read_value_files` to each section and each entry of a list section."""
    resolved = dict(data)
    for section, value in data.items():
        field = Settings.model_fields.get(section)
        if field is None:
            continue
        if section in _LIST_SECTIONS and isinstance(value, (list, tuple)):
            resolved[section] = [
                _read_value_files(item, _entry_model(section, item), f"{section}.{n}.")
                if isinstance(item, Mapping) else item
                for n, item in enumerate(value)
            ]
        elif isinstance(value, Mapping) and isinstance(field.annotation, type) and issubclass(
            field.annotation, BaseModel
        ):
            resolved[section] = _read_value_files(value, field.annotation, f"{section}.")
    return resolved


def load_settings(path: Path | str | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Build the process's settings from an optional TOML file and the environment.

    ``RADASSIST_CONFIG`` names the file when ``path`` is not given.  Errors name the setting
    and never echo secrets.
    """
    environ = os.environ if environ is None else environ
    if path is None and environ.get("RADASSIST_CONFIG"):
        path = environ["RADASSIST_CONFIG"]
    data: dict[str, Any] = {}
    if path is not None:
        file = Path(path)
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {file}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {file} is not valid TOML: {exc}") from None
    env = {k: v for k, v in _env_overrides(environ).items() if k != "config"}
    # Each layer's ``*_file`` keys are read before merging, so the environment's
    # RADASSIST_DATABASE_URL_FILE overrides the file's ``url`` like RADASSIST_DATABASE_URL would.
    data = _merge(_read_secret_files(data), _read_secret_files(env))
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
