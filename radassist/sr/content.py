"""The TID 2000 content tree: language, device observer, clinical information, findings, impressions.

Only value types and relationships that the Basic Text SR IOD allows (CONTAINER, TEXT, CODE,
UIDREF, IMAGE; CONTAINS, HAS OBS CONTEXT, HAS CONCEPT MOD), so one tree serves all three SR classes.
The first Finding says in words that this is an unverified AI draft (viewers such as OHIF show
none of the document flags); the warnings of automated checks that the outputs state follow it,
one Finding each, before the draft's own text.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import highdicom as hd
import pydicom
from pydicom.sr.coding import Code

from radassist.sr import codes
from radassist.sr.uids import device_observer_uid
from radassist.sr.values import CodedLabel, lo, paragraphs

logger = logging.getLogger(__name__)


def _text(name: Code, value: str) -> hd.sr.TextContentItem:
    return hd.sr.TextContentItem(name=name, value=value, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)


def _section(heading: Code, items: Sequence[hd.sr.ContentItem]) -> hd.sr.ContainerContentItem:
    container = hd.sr.ContainerContentItem(name=heading, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)
    container.ContentSequence = hd.sr.ContentSequence(list(items))
    return container


def _coded(label: CodedLabel) -> hd.sr.CodeContentItem:
    return hd.sr.CodeContentItem(
        name=codes.FINDING,
        value=hd.sr.CodedConcept(value=label.value, scheme_designator=label.scheme, meaning=lo(label.meaning)),
        relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
    )


def _image(sop_class_uid: str, sop_instance_uid: str) -> hd.sr.ImageContentItem:
    return hd.sr.ImageContentItem(
        name=codes.KEY_SOURCE_IMAGE,
        referenced_sop_class_uid=sop_class_uid,
        referenced_sop_instance_uid=sop_instance_uid,
        relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
    )


def _observer(model_name: str, model_revision: str | None) -> hd.sr.ObserverContext:
    """The model as a device observer (TID 1004); its UID is fixed per model and revision."""
    return hd.sr.ObserverContext(
        observer_type=hd.sr.CodedConcept.from_code(codes.OBSERVER_TYPE_DEVICE),
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=device_observer_uid(model_name, model_revision),
            name=model_name if not model_revision else f"{model_name} ({model_revision})",
            manufacturer_name=codes.MANUFACTURER,
            model_name=model_name,
        ),
    )


def build_content(
    *,
    findings: str,
    impression: str,
    model_name: str,
    model_revision: str | None,
    indication: str | None = None,
    labels: Sequence[CodedLabel] = (),
    key_images: Sequence[tuple[str, str]] = (),
    comparison: hd.sr.ContainerContentItem | None = None,
    warnings: Sequence[str] = (),
) -> hd.sr.ContainerContentItem:
    """The content tree: findings are the draft notice first, then the ``warnings`` (one sentence
    each), the text, the coded labels and the key images as ``(sop_class_uid, sop_instance_uid)``;
    ``comparison`` (the section of :mod:`radassist.sr.comparison`) comes before the findings."""
    language = hd.sr.LanguageOfContentItemAndDescendants(language=hd.sr.CodedConcept.from_code(codes.LANGUAGE_EN_US))
    items: list[hd.sr.ContentItem] = [*language, *_observer(model_name, model_revision)]
    if indication and indication.strip():
        indications = [_text(codes.INDICATIONS_FOR_PROCEDURE, p) for p in paragraphs(indication)]
        items.append(_section(codes.CLINICAL_INFORMATION, indications))
    if comparison is not None:
        items.append(comparison)
    finding_items: list[hd.sr.ContentItem] = [_text(codes.FINDING, codes.DRAFT_NOTICE)]
    finding_items += [_text(codes.FINDING, w) for w in warnings if w.strip()]
    finding_items += [_text(codes.FINDING, p) for p in paragraphs(findings)]
    finding_items += [_coded(label) for label in labels]
    finding_items += [_image(sop_class, sop_instance) for sop_class, sop_instance in key_images]
    items.append(_section(codes.FINDINGS, finding_items))
    impression_items = [_text(codes.IMPRESSION, p) for p in paragraphs(impression)]
    if impression_items:
        items.append(_section(codes.IMPRESSIONS, impression_items))
    root = hd.sr.ContainerContentItem(name=codes.DIAGNOSTIC_IMAGING_REPORT,
                                      template_id=codes.TID_DIAGNOSTIC_IMAGING_REPORT)
    root.ContentSequence = hd.sr.ContentSequence(items)
    return root


def coded_labels(labels: Sequence[CodedLabel | Sequence[str]] | None) -> list[CodedLabel]:
    """Accept labels as :class:`CodedLabel` or as ``(code, scheme, meaning)`` (as JSON stores them)."""
    if labels is None:
        return []
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence):
        raise TypeError('Argument "labels" must be a sequence of (code, scheme, meaning).')
    out: list[CodedLabel] = []
    for index, label in enumerate(labels):
        if isinstance(label, CodedLabel):
            out.append(label)
            continue
        if isinstance(label, (str, bytes)) or not isinstance(label, Sequence) or len(label) != 3:
            raise ValueError(f'Item {index} of argument "labels" is not (code, scheme, meaning).')
        try:
            out.append(CodedLabel(*(str(part) for part in label)))
        except ValueError:
            raise ValueError(f'Item {index} of argument "labels" is not a valid coded label.') from None
    return out


def key_images(sources: Sequence[pydicom.Dataset], key_image_uids: Sequence[str] | None) -> list[tuple[str, str]]:
    """``(sop_class_uid, sop_instance_uid)`` of each key image that is one of the sources, in the
    given order; UIDs of instances we do not hold are left out (the SR may reference only its
    evidence)."""
    if not key_image_uids:
        return []
    if isinstance(key_image_uids, str) or not isinstance(key_image_uids, Sequence):
        raise TypeError('Argument "key_image_uids" must be a sequence of UIDs.')
    classes = {str(ds.SOPInstanceUID): str(ds.SOPClassUID) for ds in sources}
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for uid in key_image_uids:
        uid = str(uid)
        if uid in classes and uid not in seen:
            seen.add(uid)
            out.append((classes[uid], uid))
    if len(out) < len(key_image_uids):
        logger.debug("%d key image UIDs are not among the sources", len(key_image_uids) - len(out))
    return out
