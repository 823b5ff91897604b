"""``[[prior_sources]]`` and ``[priors]``: where a patient's earlier studies are found, and which are relevant.

A source is one model per ``kind``, as ``[[destinations]]`` is: a DICOM Q/R SCP (C-FIND, then C-GET
or C-MOVE), a DICOMweb server (QIDO-RS, WADO-RS) or Orthanc's REST API.  ``[priors]`` holds the
time limit of one search-and-fetch and the relevance rules, one per prompt profile.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, field_validator, model_validator

from radassist.config.common import AETitle, Section, validate_ae_title


def _optional_ae_title(value: str | None) -> str | None:
    return None if value is None else validate_ae_title(value)


class DicomPriorSource(Section):
    """A DICOM Query/Retrieve SCP (a PACS or VNA): C-FIND at study, series and image level, then C-GET or C-MOVE."""

    kind: Literal["dicom"] = "dicom"
    """How priors are found and fetched: ``dicom`` (Study Root C-FIND, C-GET or C-MOVE)."""
    name: str = Field(min_length=1, max_length=64)
    """A short name shown with each prior found there."""
    ae_title: AETitle
    """The source's AE title (the called AE)."""
    host: str = Field(min_length=1)
    """Host name or address of the source."""
    port: int = Field(ge=1, le=65535)
    """Its DICOM port."""
    calling_ae_title: AETitle | None = None
    """The calling AE we present; defaults to ``[dicom] ae_title`` (the source must know it)."""
    retrieve: Literal["get", "move"] = "get"
    """``get``: C-GET, the images come back on the same association; ``move``: C-MOVE to ``move_destination``."""
    move_destination: AETitle | None = None
    """The AE title the source sends to on C-MOVE (its own table maps it to a host and port); defaults to ``[dicom] ae_title``, our listener."""
    timeout_seconds: float = Field(10.0, gt=0)
    """Longest wait for one network step (connect, association, one answer); ``[priors] time_limit_seconds`` bounds the whole."""

    _check_ae = field_validator("ae_title", "calling_ae_title", "move_destination")(_optional_ae_title)


class DicomwebPriorSource(Section):
    """A DICOMweb server: QIDO-RS to search, WADO-RS to fetch instances."""

    kind: Literal["dicomweb"]
    """How priors are found and fetched: ``dicomweb`` (QIDO-RS, WADO-RS)."""
    name: str = Field(min_length=1, max_length=64)
    """A short name shown with each prior found there."""
    url: str = Field(min_length=1)
    """The DICOMweb service root, e.g. ``https://pacs.example.org/dicom-web``."""
    username: str = ""
    """HTTP basic-auth user; empty: no basic authentication."""
    password: SecretStr = SecretStr("")
    """HTTP basic-auth password."""
    bearer_token: SecretStr = SecretStr("")
    """An OAuth bearer token sent as ``Authorization: Bearer``; empty: none."""
    tls_ca_file: str = ""
    """PEM file of the CA(s) that sign the server's certificate; empty: the system's trust store."""
    timeout_seconds: float = Field(10.0, gt=0)
    """Longest wait for one HTTP step (connect, an answer, the next chunk); ``[priors] time_limit_seconds`` bounds the whole."""


class OrthancPriorSource(Section):
    """An Orthanc server searched and read through its REST API (``orthanc-api-client``)."""

    kind: Literal["orthanc"]
    """How priors are found and fetched: ``orthanc`` (``/tools/find``, ``/instances/{id}/file``)."""
    name: str = Field(min_length=1, max_length=64)
    """A short name shown with each prior found there."""
    url: str = Field(min_length=1)
    """Orthanc's base URL, e.g. ``http://orthanc:8042``."""
    username: str = ""
    """HTTP basic-auth user; empty: no authentication."""
    password: SecretStr = SecretStr("")
    """HTTP basic-auth password."""
    timeout_seconds: float = Field(10.0, gt=0)
    """Longest wait for one HTTP request; ``[priors] time_limit_seconds`` bounds the whole."""


PriorSource = Annotated[
    DicomPriorSource | DicomwebPriorSource | OrthancPriorSource, Field(discriminator="kind")
]


def _default_kind(value: Any) -> Any:
    # A source without ``kind`` is a DICOM Q/R SCP, as a destination without one is a C-STORE SCP.
    if isinstance(value, (list, tuple)):
        return [
            {"kind": "dicom", **item} if isinstance(item, Mapping) and "kind" not in item else item
            for item in value
        ]
    return value


def _unique_names(value: tuple[Any, ...]) -> tuple[Any, ...]:
    names = [source.name for source in value]
    if len(names) != len(set(names)):
        raise ValueError("prior source names must be unique")
    return value


PriorSources = Annotated[
    tuple[PriorSource, ...], BeforeValidator(_default_kind), AfterValidator(_unique_names)
]
"""``[[prior_sources]]``, tried in order: the first that holds relevant priors gives them."""


def _upper_words(value: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(v.strip().upper() for v in value if v.strip())


class PriorRule(Section):
    """Which earlier studies are relevant to a study drafted with one prompt profile, and what of them is fetched."""

    profile: str = Field("", max_length=64)
    """The prompt profile (``[[model.profiles]]`` or built-in, e.g. ``cxr``) this rule serves; empty: every profile without a rule of its own."""
    modalities: tuple[str, ...] = ()
    """Modality values a prior must have (``CR``, ``DX``); empty: one of the current study's modalities."""
    body_parts: tuple[str, ...] = ()
    """Words of which one must appear in a prior series' BodyPartExamined, its description or the study description; empty: the current study's BodyPartExamined (any, when it has none)."""
    within_years: int = Field(5, ge=1, le=100)
    """Only studies from this many years before the current study."""
    most_recent: int = Field(1, ge=0, le=10)
    """How many relevant priors are fetched, newest first; 0: none for this profile."""
    views: tuple[str, ...] = ()
    """ViewPosition values of the images fetched (``PA``, ``AP``: the frontal radiograph); empty: every image of the relevant series. A series whose images name no view is fetched whole."""
    series_description_pattern: str = ""
    """A regular expression searched (case-insensitive) in a prior series' description; empty: any series."""

    _upper = field_validator("modalities", "body_parts", "views")(_upper_words)

    @field_validator("series_description_pattern")
    @classmethod
    def _check_pattern(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:  # not a ValueError: pydantic would let it escape unnamed
            raise ValueError(f"not a regular expression: {exc.msg}") from None
        return value


class PriorsSettings(Section):
    """Earlier studies of the same patient, found on ``[[prior_sources]]`` when a study is drafted."""

    time_limit_seconds: float = Field(30.0, gt=0, le=600)
    """The whole search and fetch ends by then; a slow or silent source then yields "no prior available" (``priors.timeout``), never a stalled draft."""
    max_instances: int = Field(200, ge=1, le=10000)
    """Most images fetched of one prior study (the first series in order, then the next)."""
    rules: tuple[PriorRule, ...] = ()
    """Rules per prompt profile (``[[priors.rules]]``); a profile with none takes the rule with an empty ``profile``, else the defaults of a rule."""

    @model_validator(mode="after")
    def _unique_profiles(self) -> PriorsSettings:
        profiles = [rule.profile for rule in self.rules]
        if len(profiles) != len(set(profiles)):
            raise ValueError("each profile may have one prior rule")
        return self

    def rule_for(self, profile: str | None) -> PriorRule:
        """The rule of ``profile``; else the catch-all rule (empty ``profile``); else the default rule."""
        by_profile = {rule.profile: rule for rule in self.rules}
        return by_profile.get(profile or "") or by_profile.get("") or PriorRule()
