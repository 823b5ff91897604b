"""A job's prepared inputs as named blobs, and back: what every prepared-store backend keeps.

One PNG per picture shown (``picture-000.png``...), one per prior picture (``prior-000.png``...),
and the manifest (JSON: labels, clinical context, provenance, each picture's geometry, the prompt
profile, the RIS order and the comparison with the priors).  The manifest is written last and read
first, so a backend that keeps it last keeps the set whole or not at all.  A manifest of format 1
(pictures and profile only, kept by drafts before the prepare stage) is still read.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image

from radassist.config import PromptProfileSettings
from radassist.grounding.record import grounding_record, recorded_pictures
from radassist.imaging.context import ClinicalContext
from radassist.imaging.prepare import PreparedStudy
from radassist.priors.comparison import ComparedStudy, Comparison
from radassist.ris.context import OrderContext

MANIFEST = "manifest.json"
FORMAT_VERSION = 2
READABLE_VERSIONS = frozenset({1, 2})


@dataclass(frozen=True)
class KeptInputs:
    """What a job's model is shown: its prepared study and prompt profile, the RIS order, the
    comparison with its priors and the newest prior's pictures.  Holds clinical text: never logged."""

    study: PreparedStudy
    profile: PromptProfileSettings | None
    order: OrderContext | None = None
    comparison: Comparison | None = None
    """None when the job's priors were never searched."""
    prior: PreparedStudy | None = None
    """The newest prior's pictures, when the profile shows them."""

    def __repr__(self) -> str:  # never print the clinical fields
        return f"<KeptInputs pictures={len(self.study.images)}>"


def picture_name(index: int, prefix: str = "picture") -> str:
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 1000:
        raise ValueError('Argument "index" must be an integer from 0 to 999.')
    return f"{prefix}-{index:03d}.png"


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)  # speed over size: kept for days, read once or twice
    return buffer.getvalue()


def _study_fields(study: PreparedStudy) -> dict[str, Any]:
    return {
        "pictures": len(study.images),
        "labels": list(study.labels),
        "context": dataclasses.asdict(study.context),
        "source_sop_instance_uids": list(study.source_sop_instance_uids),
        "notes": list(study.notes),
        "series_chosen": study.series_chosen,
        "lateralities": sorted(study.lateralities),
        "geometries": grounding_record("", (), (), study.geometries)["pictures"] if study.geometries else [],
    }


def _comparison_fields(comparison: Comparison) -> dict[str, Any]:
    return {
        "reason_code": comparison.reason_code,
        "reason": comparison.reason,
        "studies": [{**dataclasses.asdict(s), "study_date": s.study_date.isoformat() if s.study_date else None,
                     "modalities": list(s.modalities)} for s in comparison.studies],
    }


def encode(study: PreparedStudy, profile: PromptProfileSettings | None, *, order: OrderContext | None = None,
           comparison: Comparison | None = None, prior: PreparedStudy | None = None) -> dict[str, bytes]:
    """The named blobs that keep a job's inputs: the pictures, the prior's pictures, then the manifest."""
    blobs = {picture_name(i): _png(image) for i, image in enumerate(study.images)}
    if prior is not None:
        blobs.update({picture_name(i, "prior"): _png(image) for i, image in enumerate(prior.images)})
    manifest: dict[str, Any] = {
        "version": FORMAT_VERSION,
        **_study_fields(study),
        "profile": profile.model_dump(mode="json") if profile is not None else None,
        "order": dataclasses.asdict(order) if order is not None else None,
        "comparison": _comparison_fields(comparison) if comparison is not None else None,
        "prior": _study_fields(prior) if prior is not None else None,
    }
    blobs[MANIFEST] = json.dumps(manifest, sort_keys=True).encode("utf-8")
    return blobs


def encode_inputs(inputs: KeptInputs) -> dict[str, bytes]:
    return encode(inputs.study, inputs.profile, order=inputs.order, comparison=inputs.comparison, prior=inputs.prior)


def _image(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as opened:
        opened.load()
        return opened.copy()


def _study(data: dict[str, Any], read: Callable[[str], bytes], prefix: str) -> PreparedStudy:
    known = {f.name for f in dataclasses.fields(ClinicalContext)}
    geometries = data.get("geometries") or []
    return PreparedStudy(
        images=tuple(_image(read(picture_name(i, prefix))) for i in range(int(data["pictures"]))),
        context=ClinicalContext(**{k: v for k, v in (data.get("context") or {}).items() if k in known}),
        source_sop_instance_uids=tuple(data.get("source_sop_instance_uids") or ()),
        notes=tuple(data.get("notes") or ()),
        labels=tuple(data.get("labels") or ()),
        series_chosen=data.get("series_chosen"),
        lateralities=frozenset(data.get("lateralities") or ()),
        geometries=recorded_pictures({"version": 1, "pictures": geometries}) if geometries else (),
    )


def _comparison(data: dict[str, Any] | None) -> Comparison | None:
    if data is None:
        return None
    studies = tuple(
        ComparedStudy(study_instance_uid=s["study_instance_uid"],
                      study_date=dt.date.fromisoformat(s["study_date"]) if s.get("study_date") else None,
                      study_description=s.get("study_description") or "", modalities=tuple(s.get("modalities") or ()),
                      report=s.get("report"), report_origin=s.get("report_origin"))
        for s in data.get("studies") or ()
    )
    return Comparison(studies, data.get("reason_code"), data.get("reason") or "")


def decode(manifest: bytes, read: Callable[[str], bytes]) -> KeptInputs:
    """The kept inputs from the manifest and ``read(name) -> bytes`` for each picture."""
    data = json.loads(manifest.decode("utf-8"))
    if data.get("version") not in READABLE_VERSIONS:
        raise ValueError(f"kept inputs of format {data.get('version')!r} are not readable here")
    profile = data.get("profile")
    order = data.get("order")
    prior = data.get("prior")
    return KeptInputs(
        study=_study(data, read, "picture"),
        profile=PromptProfileSettings.model_validate(profile) if profile else None,
        order=OrderContext(**order) if order else None,
        comparison=_comparison(data.get("comparison")),
        prior=_study(prior, read, "prior") if prior else None,
    )
