"""Turn a study's stored DICOM files into the images and clinical context a model is shown."""

from radassist.imaging.context import ClinicalContext, clinical_context
from radassist.imaging.prepare import PreparedStudy, prepare_study

__all__ = ["ClinicalContext", "PreparedStudy", "clinical_context", "prepare_study"]
