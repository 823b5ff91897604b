"""Drafting models.  Importing this package loads no torch: :func:`get_draft_model` does, on first use."""

from radassist.models.base import DraftModel, DraftResult
from radassist.models.loader import get_draft_model

__all__ = ["DraftModel", "DraftResult", "get_draft_model"]
