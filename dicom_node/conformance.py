"""The DICOM Conformance Statement (PS3.2 layout), rendered from the code's own tables.

Every list in it comes from where the behaviour is decided: the storage and verification contexts
from the AE the listener builds (``dicom_node.ae.build_ae``), the refusals from
``dicom_node.access.REFUSALS``, the statuses from ``dicom_node.statuses``, the PDU bounds from
``dicom_node.pdu_framing``, the defaults and their meanings from the ``[dicom]`` settings model,
and the SR classes from the destinations' ``sr_class`` setting.  A changed table changes the
document, and ``tests/unit/test_specs.py`` fails until it is written again
(``python -m radassist docs write``).
"""

from __future__ import annotations

from typing import Any, get_args

from pydicom.uid import UID, BasicTextSRStorage, ComprehensiveSRStorage, EnhancedSRStorage

from radassist.config import DicomDestination, DicomSettings, Settings
from radassist.config.common import SrClassName

SR_CLASSES: dict[str, str] = {
    "enhanced": EnhancedSRStorage,
    "comprehensive": ComprehensiveSRStorage,
    "basic": BasicTextSRStorage,
}
"""The SOP class of each ``sr_class`` a destination may name."""

VERIFICATION = "1.2.840.10008.1.1"
RESULTS = {0x01: "rejected-permanent", 0x02: "rejected-transient"}
SOURCES = {0x01: "service-user", 0x02: "service-provider (ACSE)", 0x03: "service-provider (presentation)"}
REASONS = {  # PS3.8 Table 9-21, by source
    (0x01, 0x01): "no-reason-given",
    (0x01, 0x03): "calling-AE-title-not-recognized",
    (0x01, 0x07): "called-AE-title-not-recognized",
    (0x02, 0x01): "no-reason-given",
    (0x03, 0x01): "temporary-congestion",
    (0x03, 0x02): "local-limit-exceeded",
}
ABORT_REASONS = {0x01: "unrecognized-PDU", 0x02: "unexpected-PDU", 0x06: "invalid-PDU-parameter-value"}


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _default(name: str) -> Any:
    return DicomSettings.model_fields[name].default


def _first_line(text: str | None) -> str:
    return " ".join((text or "").split())


def _overview() -> str:
    return f"""## 1. Overview

RadAssist receives imaging studies from a PACS or modality, drafts Findings and Impression with a
vision-language model, and returns the draft as a DICOM Structured Report, marked preliminary,
unverified and AI-generated. Its DICOM network services:

{_table(("SOP classes", "user of service (SCU)", "provider of service (SCP)"), [
    ("Storage (every storage SOP class, section 3.1.1)", "no", "yes"),
    ("Structured Report Storage (Enhanced, Comprehensive, Basic Text SR)", "yes", "yes (as any storage class)"),
    ("Verification", "yes", "yes"),
])}

No media interchange is supported. Query/Retrieve as SCU (priors) will be described in section
3.3 when it is supported.
"""


def _implementation_model() -> str:
    return """## 2. Implementation model

### 2.1 Application data flow

- **Storage SCP** (the listener, `radassist listener`): a remote AE sends instances by C-STORE;
  each is written durably to disk and recorded in the database before Success is answered. A
  study with no new instance for its quiet time is complete and is queued for drafting.
- **Storage SCU** (the delivery worker): the drafted SR is sent by C-STORE to each configured
  destination, retried until stored or given up.
- **Verification**: the listener answers C-ECHO; `radassist echo-pacs` sends C-ECHO to a destination.

### 2.2 Functional definition of the AEs

The listener answers to `[dicom] ae_title` and to the AE title of each `[[pipelines]]` entry, on
one port (and a DICOM TLS port when `tls_port` is set); the called AE title picks the pipeline that
drafts the study. The SCU presents a destination's `calling_ae_title` (default `[dicom] ae_title`).

### 2.3 Sequencing of real-world activities

Drafting starts only after a study is complete; the SR is sent after the draft is committed. An
instance is never answered Success before it is durable on disk and its database row committed.
"""


def _storage_scp(contexts: list[Any]) -> str:
    storage = sorted((cx for cx in contexts if cx.abstract_syntax != VERIFICATION), key=lambda cx: UID(cx.abstract_syntax).name)
    syntaxes = [UID(ts) for ts in storage[0].transfer_syntax] if storage else []
    rows = [(UID(cx.abstract_syntax).name, f"`{cx.abstract_syntax}`") for cx in storage]
    return f"""### 3.1 The listener AE: Storage SCP, Verification SCP

#### 3.1.1 SOP classes

Every storage SOP class pynetdicom knows ({len(rows)} classes), each in every transfer syntax below.
Instances are stored as received, never decompressed or changed: the PACS keeps its encoding. Non-image objects (SR, PR, KO, PDF) are stored but do not start drafting unless
`draft_non_image` is set for the pipeline.

{_table(("SOP class", "UID"), rows)}

Transfer syntaxes of every storage SOP class, in order of preference when a presentation context proposes several: lossless compressed first,
then uncompressed, lossy last.

{_table(("transfer syntax", "UID"), [(ts.name, f"`{ts}`") for ts in syntaxes])}

#### 3.1.2 C-STORE behaviour

A C-STORE is answered Success (0000H) only after the instance's file, its name and its row are
durable (fsynced, or flushed by `syncfs` with the rows: `[storage] sync`); a re-sent instance with the same content is Success again (idempotent). The data set's
SOP Class UID must match the presentation context and the command, its SOP Instance UID the
command's, and the Study, Series and SOP Instance UIDs must be valid (PS3.5 9.1). Every failure
status and its meaning is listed in section 8.1; each carries an Error Comment (0000,0902) with
fixed text, never data from the instance.
"""


def _verification(contexts: list[Any]) -> str:
    [verification] = [cx for cx in contexts if cx.abstract_syntax == VERIFICATION]
    scp_syntaxes = ", ".join(UID(ts).name for ts in verification.transfer_syntax)
    return f"""#### 3.1.3 Verification

The listener answers C-ECHO (Verification, `{VERIFICATION}`) on an accepted association with
Success, in {scp_syntaxes}.
"""


def _storage_scu() -> str:
    names = get_args(SrClassName)
    if set(names) != set(SR_CLASSES):
        raise ValueError(f"SR_CLASSES does not cover the sr_class values {names}")
    rows = [(f"`{name}`", UID(SR_CLASSES[name]).name, f"`{SR_CLASSES[name]}`") for name in names]
    default = DicomDestination.model_fields["sr_class"].default
    return f"""### 3.2 The delivery AE: Storage SCU, Verification SCU

#### 3.2.1 SOP classes

Each `[[destinations]]` entry names the SR class it receives (`sr_class`, default `{default}`):

{_table(("sr_class", "SOP class", "UID"), rows)}

The SR file's own transfer syntax is proposed; an uncompressed SR is offered in Explicit VR Little
Endian and Implicit VR Little Endian. `radassist echo-pacs` sends C-ECHO (Verification) to a
destination with pynetdicom's default transfer syntaxes.

#### 3.2.2 Association initiation policy

One association per SR sent, released after its C-STORE. Success and warnings (B000H, B006H,
B007H) count as delivered; A7xxH, 0110H or no answer are retried with backoff; other failures end
the delivery with their status.

#### 3.2.3 SR content

The content of the SR (its template, coded concepts and marks of an unverified AI draft) is
described in section 8.3.

### 3.3 Query/Retrieve SCU (priors)

Not supported yet.
"""


def _association_policies(settings: Settings) -> str:
    from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION

    from dicom_node.ae import MAXIMUM_PDU_SIZE
    from dicom_node.pdu_framing import LARGEST_OTHER_PDU, largest_p_data

    rows = [
        ("Maximum PDU length we receive (P-DATA-TF)", f"{MAXIMUM_PDU_SIZE} bytes"),
        ("Largest P-DATA-TF read (PDU length field)", f"{largest_p_data()} bytes; more: A-ABORT"),
        ("Largest other PDU read (A-ASSOCIATE-RQ, ...)", f"{LARGEST_OTHER_PDU} bytes; more: A-ABORT"),
        ("Simultaneous associations per listener process", f"`max_associations` = {_default('max_associations')}"),
        ("Connections still negotiating per process", f"`max_pending_connections` = {_default('max_pending_connections')}"),
        ("Listener processes", f"`listener_processes` = {_default('listener_processes')}"),
        ("ARTIM timeout (association request)", f"`artim_timeout_seconds` = {_default('artim_timeout_seconds'):g} s"),
        ("Network (idle, PDU, DIMSE) timeout", f"`network_timeout_seconds` = {_default('network_timeout_seconds'):g} s"),
        ("Asynchronous operations window", "not offered (1 outstanding operation each way)"),
        ("SCP/SCU role selection, extended negotiation", "not used"),
        ("Implementation Class UID", f"`{PYNETDICOM_IMPLEMENTATION_UID}` (pynetdicom)"),
        ("Implementation Version Name", f"`{PYNETDICOM_IMPLEMENTATION_VERSION}`"),
    ]
    return f"""#### 3.1.4 Association policies

The listener only accepts associations. Defaults below are those of `[dicom]`; each is
configurable.

{_table(("policy", "value"), rows)}

A connection on which no association is accepted within the ARTIM time is closed; connections
still negotiating never take one of the association slots, and past their own limit the oldest is
closed. A PDU that declares more than the protocol state allows, a first PDU other than an
A-ASSOCIATE-RQ, or a request that cannot be decoded is answered with an A-ABORT (section 8.2).
Each listener process has its own limits (`listener_processes`).
"""


def _acceptance() -> str:
    from dicom_node.access import REFUSALS

    rows = [
        (n, f"`{r.code}`", r.when, RESULTS[r.result], SOURCES[r.source], REASONS[(r.source, r.reason)])
        for n, r in enumerate(REFUSALS, start=1)
    ]
    return f"""#### 3.1.5 Association acceptance policy

An A-ASSOCIATE-RQ is checked in this order; the first rule that applies refuses it with an
A-ASSOCIATE-RJ (PS3.8 Table 9-21). Every request, accepted or refused, is recorded in the
`associations` table with the code below.

{_table(("#", "code", "refused when", "result", "source", "reason"), rows)}

- **Allowlist** (`[[dicom.allowed_callers]]`): an entry names a calling AE title (`*`: any), the
  network it connects from (CIDR), and which of our AE titles it may call (empty: all). With no
  entry every caller is refused, unless `allow_any_caller` is set.
- **AE titles and pipelines**: the called AE title must be `[dicom] ae_title` or a
  `[[pipelines]]` AE title; the association then answers as that title, and the studies it sends
  are drafted by that pipeline.
- **Pause**: an admin can pause a calling AE title on the web pages; it is refused transiently
  until resumed.
- **Low disk**: below `[storage] min_free_bytes` (or `min_free_percent`) associations are refused
  transiently and C-STORE requests on open associations get A700H.
"""


def _network_and_configuration(settings: Settings) -> str:
    dicom = settings.dicom
    rows = [(f"`{name}`", f"`{field.default!r}`", _first_line(field.description))
            for name, field in DicomSettings.model_fields.items() if name not in ("allowed_callers", "required_series")]
    return f"""## 4. Network interfaces

TCP/IP, IPv4 and IPv6 (`[dicom] host`, default `{dicom.host}`). DICOM port `[dicom] port` (default
{dicom.port}); DICOM TLS on `tls_port` when set (default {dicom.tls_port}: off). No other
protocols are used on these ports.

## 5. Configuration

One TOML file (`config.example.toml` lists every setting) or `RADASSIST_DICOM_*` environment
variables. The `[dicom]` settings:

{_table(("setting", "default", "meaning"), rows)}
"""


def _character_sets_and_security() -> str:
    return """## 6. Support of character sets

As Storage SCP, any Specific Character Set (0008,0005) is accepted and the instance is stored
unchanged. The SR we create is encoded in ISO_IR 192 (UTF-8).

## 7. Security

- **DICOM TLS** (PS3.15 Annex B, TLS Secure Transport Connection Profiles): on `tls_port`, TLS 1.2
  or later with the server certificate `tls_cert_file`. With `tls_ca_file` a client certificate is
  verified when offered; with `tls_require_client_cert` it is required. The handshake counts
  against the ARTIM time.
- **Association level**: the allowlist of section 3.1.5 by calling AE title, network and called AE
  title, on both ports.
- **Application level**: logs name studies by a hash, never by patient data or UIDs; Error
  Comments are fixed texts.
- As SCU, a destination may require TLS (`tls`, `tls_ca_file`, client `tls_cert_file`).
"""


def _annex() -> str:
    from dicom_node.pdu_framing import INVALID_PDU_PARAMETER_VALUE, UNEXPECTED_PDU, UNRECOGNIZED_PDU
    from dicom_node.statuses import ERROR_COMMENTS, REJECTION_STATUS, EchoStatus, StoreStatus

    codes: dict[int, list[str]] = {}
    for code, status in REJECTION_STATUS.items():
        codes.setdefault(int(status), []).append(f"`{code}`")
    rows = [(f"{int(s):04X}H", ERROR_COMMENTS.get(s, "stored durably and recorded"),
             ", ".join(codes.get(int(s), [])) or "-") for s in StoreStatus]
    aborts = [
        (ABORT_REASONS[UNRECOGNIZED_PDU], "a PDU of unknown type"),
        (ABORT_REASONS[UNEXPECTED_PDU], "a first PDU other than an A-ASSOCIATE-RQ or A-ABORT; a P-DATA-TF before "
         "the association is accepted"),
        (ABORT_REASONS[INVALID_PDU_PARAMETER_VALUE], "a PDU longer than section 3.1.4 allows; an A-ASSOCIATE-RQ "
         "that cannot be decoded"),
    ]
    return f"""## 8. Annexes

### 8.1 Status codes returned

C-STORE (Storage SCP); C-ECHO answers {int(EchoStatus.SUCCESS):04X}H.

{_table(("status", "meaning (the Error Comment sent with it)", "refusal codes"), rows)}

### 8.2 A-ABORT sent by the listener

Source: service provider (2), with the PS3.8 Table 9-26 reason:

{_table(("reason", "sent for"), aborts)}

### 8.3 SR content

The IOD contents of the SR we create are described here when that section is written.
"""


def render() -> str:
    from dicom_node.ae import build_ae

    settings = Settings()
    contexts = list(build_ae(settings).supported_contexts)
    parts = [
        "# DICOM Conformance Statement\n\n"
        "<!-- Generated by `python -m radassist docs write` from the code's tables; do not edit. -->\n",
        _overview(),
        _implementation_model(),
        "## 3. AE specifications\n",
        _storage_scp(contexts),
        _verification(contexts),
        _association_policies(settings),
        _acceptance(),
        _storage_scu(),
        _network_and_configuration(settings),
        _character_sets_and_security(),
        _annex(),
    ]
    return "\n".join(part.rstrip() + "\n" for part in parts)
