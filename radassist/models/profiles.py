"""Prompt profiles: what the model is asked for each kind of study, and how a CT is windowed for it.

A chest film, a screening mammogram and a head CT are read differently, so each gets its own
instruction; the site can add or override profiles in ``[[model.profiles]]`` (tried first, in
order).  A profile matches on Modality and on body-part words found in BodyPartExamined or the
study/series descriptions.
"""

from __future__ import annotations

from collections.abc import Sequence

from radassist.config import ModelSettings, PromptProfileSettings
from radassist.imaging.context import ClinicalContext
from radassist.imaging.prepare import RenderOptions

_P = PromptProfileSettings

BUILTIN_PROFILES: tuple[PromptProfileSettings, ...] = (
    _P(
        name="cxr",
        modalities=("CR", "DX"),
        body_parts=("CHEST", "THORAX", "LUNG", "CXR"),
        instruction=(
            "This is a chest radiograph. Comment on support lines and tubes if present, the lungs, "
            "pleura, heart size, mediastinum, and the visible bones and soft tissues."
        ),
    ),
    _P(
        name="mammography",
        modalities=("MG",),
        instruction=(
            "This is a mammogram; each image is labelled with its side and view. Describe breast "
            "composition, any mass, calcifications, asymmetry or architectural distortion with side "
            "and location, and give a BI-RADS assessment category in the impression."
        ),
    ),
    _P(
        name="ct_head",
        modalities=("CT",),
        body_parts=("HEAD", "BRAIN", "SKULL", "CRANIUM"),
        instruction=(
            "This is a head CT; each slice is shown in brain, subdural and bone windows packed as the "
            "red, green and blue channels. Comment on haemorrhage, infarction, mass effect, midline "
            "shift, ventricles, extra-axial collections and fractures."
        ),
        windows=("brain", "subdural", "bone"),
    ),
    _P(
        name="ct_chest",
        modalities=("CT",),
        body_parts=("CHEST", "THORAX", "LUNG", "PULMONARY"),
        instruction=(
            "This is a chest CT; each slice is shown in lung, soft-tissue and bone windows packed as "
            "the red, green and blue channels. Comment on the lungs and airways, pleura, mediastinum "
            "and lymph nodes, heart and great vessels, the upper abdomen and the bones."
        ),
        windows=("lung", "soft_tissue", "bone"),
    ),
    _P(
        name="ct_abdomen",
        modalities=("CT",),
        body_parts=("ABDOMEN", "ABD", "PELVIS", "LIVER", "KIDNEY", "RENAL"),
        instruction=(
            "This is an abdominal CT; each slice is shown in soft-tissue, liver and bone windows "
            "packed as the red, green and blue channels. Comment on the solid organs, bowel, "
            "vessels, lymph nodes, free fluid or gas, the lung bases and the bones."
        ),
        windows=("soft_tissue", "liver", "bone"),
    ),
    _P(
        name="ct",
        modalities=("CT",),
        instruction=(
            "This is a CT; each slice is shown in soft-tissue, lung and bone windows packed as the "
            "red, green and blue channels. Describe the abnormalities you see, by organ."
        ),
        windows=("soft_tissue", "lung", "bone"),
    ),
    _P(
        name="mr_brain",
        modalities=("MR",),
        body_parts=("HEAD", "BRAIN", "NEURO", "SKULL"),
        instruction=(
            "This is a brain MRI. Comment on parenchymal signal, diffusion restriction if shown, "
            "haemorrhage, mass effect, the ventricles and extra-axial spaces."
        ),
    ),
    _P(name="general", instruction="Describe the abnormalities you see, by organ or region."),
)


def _words(*values: str | None) -> set[str]:
    words: set[str] = set()
    for value in values:
        if value:
            words.update(value.upper().replace("_", " ").replace("/", " ").replace("-", " ").split())
    return words


def matches(profile: PromptProfileSettings, context: ClinicalContext) -> bool:
    """True when the study's modality and body-part words fit the profile."""
    modality = (context.modality or "").upper()
    if profile.modalities and modality not in {m.upper() for m in profile.modalities}:
        return False
    if not profile.body_parts:
        return True
    words = _words(context.body_part, context.study_description, context.series_description)
    return any(part.upper() in words for part in profile.body_parts)


def select_profile(
    context: ClinicalContext, site_profiles: Sequence[PromptProfileSettings] = ()
) -> PromptProfileSettings:
    """The first matching profile: the site's, then the built-ins (the last of which matches all)."""
    for profile in (*site_profiles, *BUILTIN_PROFILES):
        if matches(profile, context):
            return profile
    return BUILTIN_PROFILES[-1]


def profile_by_modality(modality: str | None, site_profiles: Sequence[PromptProfileSettings] = ()) -> PromptProfileSettings:
    """The profile for a study known only by its modality (before its headers are read)."""
    return select_profile(ClinicalContext(modality=modality), site_profiles)


class ProfileChooser:
    """``prepare_study(resolve=...)`` callback: picks the profile from the headers, remembers it,
    and returns its rendering options (CT windows, window mode, slice budget)."""

    def __init__(self, settings: ModelSettings) -> None:
        self.settings = settings
        self.profile: PromptProfileSettings | None = None

    def __call__(self, context: ClinicalContext) -> RenderOptions:
        self.profile = select_profile(context, self.settings.profiles)
        return RenderOptions(
            windows=self.profile.windows,
            window_mode=self.profile.window_mode,
            max_slices=self.profile.max_slices or self.settings.max_slices,
        )
