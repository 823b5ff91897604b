"""``[model]``: the vision-language model, its backend, and the prompt profiles."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from radassist.config.common import Section


class PromptProfileSettings(Section):
    """A prompt profile: which studies it serves, what the model is told, how CT is windowed."""

    name: str = Field(min_length=1, max_length=64)
    """Recorded with each draft that used it."""
    modalities: tuple[str, ...] = ()
    """DICOM Modality values it serves (``CT``, ``MR``, ``CR``...); empty: any."""
    body_parts: tuple[str, ...] = ()
    """Words matched against BodyPartExamined and the study description (``CHEST``, ``HEAD``); empty: any."""
    instruction: str = Field("", max_length=4000)
    """What the model is asked to do beyond the common report format (e.g. what to comment on)."""
    windows: tuple[str, ...] = ()
    """CT windows shown: ``lung``, ``soft_tissue``, ``bone``, ``brain``, ``subdural``, ``liver``; empty: the header's."""
    window_mode: Literal["channels", "images"] = "channels"
    """``channels``: up to three windows packed as R, G, B of one image; ``images``: one image per window."""
    max_slices: int | None = Field(None, ge=1, le=256)
    """Slices shown for this kind of study; empty: ``[model] max_slices``."""
    image_order: tuple[Literal["current", "prior"], ...] = ("current",)
    """The pictures shown, in order: ``current`` (this study's, in reading order: frontal, then lateral) and ``prior`` (the newest prior's, labelled as prior; which of its images are fetched is ``[[priors.rules]] views``). MAIRA-2 reads ``["current", "prior"]``: current frontal, current lateral, prior frontal. Without ``prior``, the prompt still gets each prior's date, description and report."""
    max_prior_images: int = Field(1, ge=1, le=16)
    """Most pictures of the prior shown (with ``prior`` in ``image_order``)."""

    @field_validator("image_order")
    @classmethod
    def _check_image_order(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if value.count("current") != 1 or value.count("prior") > 1:
            raise ValueError('must name "current" once, and "prior" at most once')
        return value


class ModelSettings(Section):
    """The vision-language model that drafts reports."""

    name: str = "google/medgemma-1.5-4b-it"
    """A Hugging Face hub id (its weights cached or downloadable with your token) or a local folder."""
    revision: str = ""
    """The hub revision (commit or tag) to pin; empty means the default branch."""
    model_id: str = Field("", max_length=128)
    """The model's id as the SR and ORU name it when ``name`` is a local folder (e.g.
    ``google/medgemma-4b-it``); empty: the ``_name_or_path`` in its ``config.json``, else the folder's name.
    A local folder's revision is a hash of its weight files."""
    device: str = "auto"
    """``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """``auto``: bfloat16 on a GPU, float32 on CPU."""
    max_new_tokens: int = Field(512, ge=1, le=8192)
    """Upper bound on the length of one draft, in tokens."""
    image_size: int = Field(896, ge=32, le=4096)
    """Longest side, in pixels, of each image handed to the model's processor."""
    max_images: int = Field(8, ge=1, le=64)
    """Most images of one study shown to the model."""
    local_files_only: bool = False
    """Never contact the hub; load from the local cache or folder only."""
    backend: Literal["transformers", "openai", "adapter"] = "transformers"
    """``transformers``: the model runs in the worker process. ``openai``: an OpenAI-compatible
    server (vLLM, SGLang, TGI) at ``url`` serves it; ``name`` is then the served model name.
    ``adapter``: a site's own backend class named by ``adapter`` (e.g. a remote-code model)."""
    adapter: str = ""
    """``package.module:Class`` of a site backend (backend ``adapter``); built as ``Class(model_settings)``."""
    url: str = ""
    """Base URL of the OpenAI-compatible server, e.g. ``http://gpu-host:8000/v1`` (backend ``openai``)."""
    api_key: SecretStr = SecretStr("")
    """Bearer token for the server (backend ``openai``); empty sends none."""
    concurrency: int = Field(4, ge=1, le=256)
    """Most requests one worker process has in flight at once to the server (backend ``openai``)."""
    request_timeout_s: float = Field(300.0, gt=0)
    """Timeout of one request to the server (backend ``openai``)."""
    batch_size: int = Field(4, ge=1, le=64)
    """Most queued studies drafted together in one ``generate`` (backend ``transformers``)."""
    generation_time_limit_s: float = Field(600.0, gt=0)
    """Wall-clock limit of one ``generate`` call; a draft cut off by it fails as ``model.timeout``."""
    max_slices: int = Field(8, ge=1, le=256)
    """Slices of a CT/MR volume shown to the model (before multiplying by CT windows in ``images`` mode)."""
    profiles: tuple[PromptProfileSettings, ...] = ()
    """Site prompt profiles (``[[model.profiles]]``), tried before the built-in ones."""
    box_grammar: Literal["auto", "none", "qwen2_5_vl", "maira_2"] = "auto"
    """How the model writes the boxes of grounded findings: ``auto`` recognises it from the model's
    name, architecture and processor (Qwen2.5-VL, MAIRA-2); ``none`` reads no boxes."""
    pad_to_square: bool = False
    """Pad each picture to a centred black square after shrinking it to ``image_size`` (for models
    trained on square pictures); boxes are mapped back through the padding."""


