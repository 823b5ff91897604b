"""Who an instance says the patient is, kept only as a keyed hash: never the values.

The database deliberately stores no patient identity, yet intake must notice when two instances
of one study name different patients, or when an instance's UID comes back naming another patient.
So each instance's identity (Patient ID, its issuer, the name, the birth date) is reduced, as it
is read, to a digest (:meth:`PatientIdentity.digest`, so the parsed header holds no value), and that
to :func:`patient_key`: HMAC-SHA256 under a key that exists only in the data folder beside the
instance store (``identity.key``, owner-only, created on first use), never in the database.  Someone who reads the
database (a backup, a replica) cannot test guessed names and birth dates against the stored keys.

Values are compared after the normalisation a person would apply: surrounding spaces and the
padding of DICOM values go, a name's empty trailing components go (``DOE^JOHN^^`` is ``DOE^JOHN``)
and letter case is ignored.  Anything else that differs counts, an empty value against a filled
one included: the study is then held for an admin, which costs a click, while the opposite error
sends a report to the wrong patient.  Only an instance that names no patient at all (all four
empty, e.g. a document made outside the modality) is kept without a key and compared with no one.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path

from radassist.store.private import create_once

KEY_FILE = "identity.key"
KEY_BYTES = 32
KEY_HEX_LENGTH = 32
"""Characters of the stored key (128 bits): no two patients meet by chance."""


@dataclass(frozen=True)
class PatientIdentity:
    """The four attributes that say who the patient is, as received (never stored, logged or shown)."""

    patient_id: str = ""
    issuer: str = ""
    name: str = ""
    birth_date: str = ""

    def __repr__(self) -> str:
        return "<PatientIdentity>"

    def digest(self) -> str:
        """SHA-256 of the normalised values (hex): what the header carries to :func:`patient_key`."""
        return hashlib.sha256(self.canonical()).hexdigest()

    def canonical(self) -> bytes:
        """The normalised values as one byte string."""
        fields = (
            _plain(self.patient_id),
            _plain(self.issuer),
            _person_name(self.name),
            _plain(self.birth_date),
        )
        return "\x1f".join(fields).encode("utf-8")


def _plain(value: str) -> str:
    return value.strip("\x00 \t\r\n")


def _person_name(value: str) -> str:
    """PS3.5 6.2 PN: up to three component groups (``=``) of five components (``^``); empty trailing
    components and groups carry nothing."""
    groups = [group.strip().rstrip("^").strip() for group in _plain(value).split("=")]
    while groups and not groups[-1]:
        groups.pop()
    return "=".join(groups).casefold()


def patient_key(identity_digest: str, key: bytes) -> str:
    """The keyed hash stored for an identity, from its :meth:`PatientIdentity.digest` (32 hex characters)."""
    if len(key) < 16:
        raise ValueError('Argument "key" must hold at least 16 bytes.')
    return hmac.new(key, identity_digest.encode("ascii"), hashlib.sha256).hexdigest()[:KEY_HEX_LENGTH]


@functools.cache
def installation_key(store_root: Path) -> bytes:
    """The key of the instance store at ``store_root``: ``identity.key`` in the folder holding it
    (the data folder), created owner-only on first use.

    Every listener process of an installation shares the instance store and so the key; it is read
    once per process.  Losing the file makes every later instance of an earlier study look like
    another patient's (the study is held, nothing is sent): keep it with the instances it protects.
    """
    return create_once(Path(store_root).resolve().parent / KEY_FILE, secrets.token_bytes(KEY_BYTES))


UNKNOWN_PATIENT = PatientIdentity().digest()
"""The digest of an instance that names no patient at all."""

__all__ = ["KEY_FILE", "UNKNOWN_PATIENT", "PatientIdentity", "installation_key", "patient_key"]
