"""Every coded concept RadAssist emits, in one place.

The SR and the ORU use the same LOINC section headings so that a reader who sees both recognises
the sections.  Concepts come from pydicom's code dictionary where it has them, so a typo in a
code value cannot slip in.
"""

from __future__ import annotations

from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

# TID 2000 "Basic Diagnostic Imaging Report": document title (CID 7000).
DIAGNOSTIC_IMAGING_REPORT: Code = codes.LN.DiagnosticImagingReport  # 18748-4
TID_DIAGNOSTIC_IMAGING_REPORT = "2000"

# Section headings (CID 7001).
CLINICAL_INFORMATION: Code = codes.cid7001.ClinicalInformation  # 55752-0
FINDINGS: Code = codes.cid7001.Findings  # 59776-5
IMPRESSIONS: Code = codes.cid7001.Impressions  # 19005-8

# The comparison with the patient's priors: a section heading (CID 7001) and its narrative element (CID 7002);
# the ORU's comparison OBX carries the same LOINC code.
PRIOR_PROCEDURE_DESCRIPTIONS: Code = codes.cid7001.PriorProcedureDescriptions  # 55114-3
PROCEDURE_DESCRIPTION: Code = codes.cid7002.ProcedureDescription  # 121065

# Narrative elements (CID 7002).
FINDING: Code = codes.DCM.Finding  # 121071
IMPRESSION: Code = codes.DCM.Impression  # 121073
INDICATIONS_FOR_PROCEDURE: Code = codes.DCM.IndicationsForProcedure  # 121109

# Observer context (TID 1002): the draft's author is a device, never a person.
OBSERVER_TYPE_DEVICE: Code = codes.cid270.Device  # 121007

# Language of content (TID 1204, CID 5000).
LANGUAGE_EN_US = Code("en-US", "RFC5646", "English (United States)")

# The Study Instance UID as an HL7 observation identifier (OBX-3).
STUDY_INSTANCE_UID: Code = codes.DCM.StudyInstanceUID  # 110180

# What the draft says about itself, first, in the SR and in the ORU.
DRAFT_NOTICE = "AI-GENERATED DRAFT \u2014 NOT VERIFIED BY A RADIOLOGIST. Preliminary, for review only."
DRAFT_NOTICE_ASCII = "AI-GENERATED DRAFT - NOT VERIFIED BY A RADIOLOGIST. Preliminary, for review only."
SERIES_DESCRIPTION = "AI DRAFT - NOT VERIFIED"
MANUFACTURER = "RadAssist"

# Purpose of reference of the IMAGE items that point at the images the model was shown (CID 7003).
KEY_SOURCE_IMAGE: Code = codes.cid7003.BestIllustrationOfFinding  # 121080

# Contributing equipment purpose (CID 7005): RadAssist and its model processed the study.
PROCESSING_EQUIPMENT: Code = codes.cid7005.ProcessingEquipment  # 109102

# The SR's own title for the requested procedure when the order gives no code.
UNKNOWN_PROCEDURE_TEXT = "Imaging procedure"
