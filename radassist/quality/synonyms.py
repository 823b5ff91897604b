"""The one table of words that mention each built-in finding.

The 14 CheXpert observations (after the mention phrases of the CheXpert labeler, trimmed to
radiology-report wording) and the critical findings flagged on every profile.  Phrases are matched
case-insensitively on whole tokens; a plural in ``s`` / ``ies`` of the last word, and a degree
word after ``is``/``are`` ("is mildly enlarged"), are added by
:func:`radassist.quality.vocabulary.inflections`, so only irregular plurals are written here.

``negative`` phrases state the absence of a finding without a negation word ("heart size is
normal" is a negative mention of cardiomegaly).  ``No Finding`` has no phrases: it is derived (see
:mod:`radassist.quality.vocabulary`).  A site extends or replaces these in ``[[quality.vocabularies]]``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Words:
    mentions: tuple[str, ...]
    negative: tuple[str, ...] = ()


NO_FINDING = "No Finding"
SUPPORT_DEVICES = "Support Devices"

CHEXPERT_ORDER: tuple[str, ...] = (
    NO_FINDING,
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    SUPPORT_DEVICES,
)

BUILTIN: dict[str, Words] = {
    "Enlarged Cardiomediastinum": Words(
        (
            "enlarged cardiomediastinum", "widened mediastinum", "mediastinal widening", "mediastinum is widened",
            "widening of the mediastinum", "enlarged cardiomediastinal silhouette", "mediastinal enlargement",
            "cardiomediastinal silhouette is enlarged", "enlarged mediastinum", "mediastinum is enlarged",
            "widened cardiomediastinal silhouette", "cardiomediastinal silhouette is widened",
        ),
        (
            "normal cardiomediastinal silhouette", "cardiomediastinal silhouette is normal",
            "cardiomediastinal silhouette is within normal limits", "cardiomediastinal silhouette is unremarkable",
            "cardiomediastinal contours are normal", "normal cardiomediastinal contours", "normal mediastinum",
            "mediastinum is normal", "mediastinal contours are normal", "normal mediastinal contours",
            "mediastinal contours are unremarkable", "mediastinum is not widened", "mediastinal contours are within normal limits",
            "cardiomediastinal silhouette is stable", "mediastinal and hilar contours are normal",
        ),
    ),
    "Cardiomegaly": Words(
        (
            "cardiomegaly", "enlarged heart", "heart is enlarged", "enlarged cardiac silhouette",
            "cardiac silhouette is enlarged", "cardiac enlargement", "enlargement of the heart", "heart size is enlarged",
            "enlargement of the cardiac silhouette", "heart is large", "large heart", "heart size is increased",
            "enlarged heart size", "cardiac silhouette is large",
        ),
        (
            "normal heart size", "heart size is normal", "heart size normal", "heart is normal in size",
            "heart is not enlarged", "heart size is within normal limits", "normal cardiac silhouette",
            "cardiac silhouette is normal", "cardiac silhouette is within normal limits", "normal-sized heart",
            "normal size heart", "cardiac size is normal", "heart is normal size", "heart size and mediastinal contours are normal",
            "heart size is unremarkable", "cardiac silhouette is not enlarged", "heart size is stable and normal",
        ),
    ),
    "Lung Opacity": Words(
        (
            "opacity", "opacities", "opacification", "opacified", "airspace disease", "air space disease",
            "airspace opacity", "infiltrate", "infiltration", "haziness", "hazy opacity", "ground glass",
            "ground-glass", "density", "densities", "reticular markings", "interstitial markings",
            "interstitial opacity", "lung opacity",
        ),
    ),
    "Lung Lesion": Words(
        (
            "nodule", "nodular opacity", "mass", "masses", "lung mass", "pulmonary mass", "lung lesion", "pulmonary lesion",
            "tumor", "tumour", "neoplasm", "metastasis", "metastases", "metastatic disease", "granuloma",
            "granulomata", "cavitary lesion", "carcinoma",
        ),
    ),
    "Edema": Words(
        (
            "edema", "oedema", "pulmonary edema", "pulmonary oedema", "vascular congestion", "venous congestion",
            "pulmonary vascular congestion", "interstitial edema", "fluid overload", "kerley b lines", "kerley lines",
            "cephalization", "cephalisation", "congestive heart failure", "chf",
        ),
    ),
    "Consolidation": Words(("consolidation", "consolidative", "consolidated", "airspace consolidation")),
    "Pneumonia": Words(
        (
            "pneumonia", "pneumonias", "bronchopneumonia", "infection", "infectious process", "aspiration",
            "pneumonitis",
        ),
    ),
    "Atelectasis": Words(
        (
            "atelectasis", "atelectases", "atelectatic", "collapse", "lobar collapse", "volume loss",
            "subsegmental atelectasis", "plate-like atelectasis", "linear atelectasis", "discoid atelectasis",
        ),
    ),
    "Pneumothorax": Words(
        ("pneumothorax", "pneumothoraces", "pneumothoraxes", "hydropneumothorax", "tension pneumothorax", "ptx"),
    ),
    "Pleural Effusion": Words(
        (
            "pleural effusion", "effusion", "pleural fluid", "hydrothorax", "fluid in the pleural space",
            "blunting of the costophrenic angle", "costophrenic angle blunting", "blunted costophrenic angle",
            "blunting of the costophrenic angles", "layering fluid",
        ),
    ),
    "Pleural Other": Words(
        (
            "pleural thickening", "pleural plaque", "pleural scarring", "fibrothorax", "pleural calcification",
            "pleural-parenchymal scarring", "pleural based thickening",
        ),
    ),
    "Fracture": Words(("fracture", "fractured", "fx", "rib fracture", "compression fracture", "compression deformity")),
    SUPPORT_DEVICES: Words(
        (
            "support device", "endotracheal tube", "et tube", "ett", "nasogastric tube", "ng tube", "orogastric tube",
            "og tube", "feeding tube", "enteric tube", "dobhoff", "chest tube", "pleural drain", "pigtail catheter",
            "central venous catheter", "central line", "central venous line", "picc", "picc line", "catheter",
            "pacemaker", "pacer", "defibrillator", "aicd", "icd", "pacing leads", "pacing wires", "sternotomy wires",
            "sternal wires", "tracheostomy tube", "tracheostomy", "swan-ganz catheter", "port-a-cath",
            "portacath", "port", "stent", "valve replacement", "prosthetic valve", "surgical clips",
            "monitoring leads", "ecg leads", "lines and tubes", "tubes and lines", "ivc filter", "lvad",
            "intra-aortic balloon pump", "iabp", "impella",
        ),
    ),
    # Critical findings outside the CheXpert 14, labelled on every profile.
    "Pneumoperitoneum": Words(
        (
            "pneumoperitoneum", "free air", "free intraperitoneal air", "free intra-abdominal air", "free gas",
            "free intraperitoneal gas", "subdiaphragmatic air", "subdiaphragmatic free air", "air under the diaphragm",
            "free air under the diaphragm", "free subdiaphragmatic gas",
        ),
    ),
    "Intracranial Haemorrhage": Words(
        (
            "intracranial haemorrhage", "intracranial hemorrhage", "intracerebral haemorrhage",
            "intracerebral hemorrhage", "intraparenchymal haemorrhage", "intraparenchymal hemorrhage",
            "subarachnoid haemorrhage", "subarachnoid hemorrhage", "intraventricular haemorrhage",
            "intraventricular hemorrhage", "subdural haematoma", "subdural hematoma", "extradural haematoma",
            "extradural hematoma", "epidural haematoma", "epidural hematoma", "subdural haemorrhage",
            "subdural hemorrhage", "haemorrhagic transformation", "hemorrhagic transformation",
            "intracranial bleed", "brain bleed",
        ),
    ),
    "Aortic Dissection": Words(
        ("aortic dissection", "dissection of the aorta", "dissection flap", "intimal flap", "dissecting aneurysm"),
    ),
    "Pulmonary Embolism": Words(
        (
            "pulmonary embolism", "pulmonary emboli", "pulmonary embolus", "pulmonary thromboembolism",
            "saddle embolus", "filling defect in the pulmonary artery", "filling defects in the pulmonary arteries",
        ),
    ),
}
