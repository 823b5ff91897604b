"""The HL7 v2 interface specification, rendered from the builders' and readers' own tables.

Every table below is the one the code uses: the ORU^R01 field table the builder writes through,
the ACK outcome tables the sender decides by, the order and report field tables the listener reads
by, the refusal table it answers by, the escaping table and the ``[hl7]`` settings.  The example
message is built by :func:`radassist.hl7.oru.build_oru` itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

import pydicom

from radassist.config import Hl7Settings
from radassist.delivery.in_order import WAIT_FOR_OLDER_S, WAITING_CODE
from radassist.delivery.superseded import SUPERSEDED_CODE
from radassist.hl7 import escaping, mllp, oru, oru_fields, ris_ack
from radassist.hl7.ack import ACK_MEANING
from radassist.ris import orders, reading, refusals, reports
from radassist.ris.context import FINAL_STATUSES
from radassist.sr import codes

_EXAMPLE_NOW = dt.datetime(2024, 5, 1, 12, 30, 15, tzinfo=dt.UTC)


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _hex(data: bytes) -> str:
    return " ".join(f"`0x{b:02X}`" for b in data)


def _settings_table(prefixes: tuple[str, ...]) -> str:
    fields = Hl7Settings.model_fields
    rows = [
        (f"`{name}`", f"`{info.default!r}`", info.description or "")
        for name, info in fields.items()
        if name.startswith(prefixes)
    ]
    return _table(("setting", "default", "meaning"), rows)


def _example() -> str:
    source = pydicom.Dataset()
    source.PatientID = "PAT-0001"
    source.IssuerOfPatientID = "HOSP"
    source.PatientName = "DOE^JANE"
    source.PatientBirthDate = "19700101"
    source.PatientSex = "F"
    source.AccessionNumber = "ACC-0001"
    source.StudyDescription = "CT CHEST W/O CONTRAST"
    source.StudyDate, source.StudyTime = "20240501", "101500"
    er7 = oru.build_oru(
        source,
        findings="Lungs are clear.\nNo pleural effusion | no pneumothorax.",
        impression="No acute disease.",
        control_id="0123456789abcdef0123",
        study_instance_uid="1.2.826.0.1.3680043.10.1.1",
        hl7=Hl7Settings(),
        now=_EXAMPLE_NOW,
    )
    return "```\n" + er7.replace("\r", "\n") + "```"


def _outbound() -> str:
    fields = [
        (f"`{f.position}`", f.name, f.datatype, f.limit, f.source, f.fit) for f in oru_fields.ORU_FIELDS
    ]
    statuses = [(f"`{obr}`", f"`{obx}`") for obr, obx in oru.OBX_STATUS.items()]
    return "\n\n".join(
        [
            "## 2. Messages we send: ORU^R01",
            "One ORU^R01 per draft, built once and stored, so every retry sends the same bytes and the "
            f"same MSH-10. Versions: {', '.join(oru.SUPPORTED_VERSIONS)} (`[hl7] version`).",
            "### Segments",
            _table(
                ("segment", "repeats", "content"),
                [(f"`{s.name}`", s.repeats, s.meaning) for s in oru_fields.ORU_SEGMENTS],
            ),
            "### Fields",
            "Every field written, its source and what happens to a value longer than the limit "
            "(counted as written, after escaping). Fields not listed are empty.",
            _table(("field", "name", "type", "limit", "source", "too long"), fields),
            _table(("too long", "what happens"), [(k, v) for k, v in oru_fields.FIT_MEANING.items()]),
            "### Not verified: how the RIS is told",
            "OBR-25 is never `F` or `C`: the text is preliminary until a radiologist signs it in the RIS. "
            "Each OBX-11 follows OBR-25:",
            _table(("OBR-25", "OBX-11"), statuses),
            f"NTE-3 says: *{oru.NTE_NOTICE}*",
            f"The first OBX (Findings code) says: *{codes.DRAFT_NOTICE_ASCII}*",
            "### Example (v2.5.1, TX)",
            _example(),
        ]
    )


def _acks_accepted() -> str:
    acks = [
        (f"`{code}`", o.next, f"`{o.error_code}`" if o.error_code else "", o.meaning)
        for code, o in ris_ack.ACK_OUTCOMES.items()
    ]
    transport = [(f"`{code}`", o.next, o.meaning) for code, o in ris_ack.TRANSPORT_OUTCOMES.items()]
    return "\n\n".join(
        [
            "## 3. ACKs we accept",
            "Original-mode acknowledgement on the same connection. Only an ACK whose MSA-2 is our MSH-10 "
            "counts. The RIS's reason (MSA-3, else ERR-8, ERR-3 or ERR-1) is shown on the worklist.",
            _table(("MSA-1", "next", "error code", "meaning"), acks),
            "Without a usable ACK:",
            _table(("error code", "next", "when"), transport),
            "`retry`: the delivery is sent again with backoff until `[delivery] max_age_seconds`; "
            "`fail`: the delivery fails with the reason. An ORU waiting for its retry is cancelled instead "
            f"(`{SUPERSEDED_CODE}`) once a newer draft of the same study has its own ORU for the same RIS "
            "pending, sent or held: the RIS keeps the last ORU of an order it receives. A newer draft's ORU "
            f"waits ({WAIT_FOR_OLDER_S:.0f} s at a time) while an older draft's ORU of the study to the same "
            "RIS is being sent, so the ORUs of a study arrive in the order their drafts were made; the "
            f"study page shows the waiting ORU with `{WAITING_CODE}`.",
        ]
    )


def _inbound() -> str:
    order_rows = [
        (f"`{f.column}`", ", ".join(f"`{p}`" for p in f.paths), f.length, f.use) for f in orders.ORDER_FIELDS
    ]
    accession_rows = [(f"`{k}`", ", ".join(f"`{p}`" for p in v)) for k, v in orders.ACCESSION_PATHS.items()]
    return "\n\n".join(
        [
            "## 4. Messages we receive",
            "The inbound listener (`radassist hl7-listener`, `python -m hl7_node`) takes:",
            _table(
                ("message", "what it gives us"),
                [(f"`{t}^{e}`", m) for (t, e), m in reading.MESSAGE_TYPES.items()],
            ),
            "### MSH",
            _table(("field", "use"), reading.HEADER_FIELDS),
            "### Orders (ORM^O01, OMI^O23)",
            "One order per ORC/OBR block, stored per accession number (only its hash is kept); a later "
            "message for the same accession updates what it carries. First non-empty position wins:",
            _table(("order attribute", "read from", "kept characters", "used for"), order_rows),
            "Accession number, by `[hl7] accession_field`:",
            _table(("accession_field", "read from"), accession_rows),
            f"Indication: {orders.INDICATION_RULE}.",
            "### Signed reports (ORU^R01)",
            f"Stored when OBR-25 is one of {', '.join(sorted(FINAL_STATUSES))}; other results are acknowledged only.",
            _table(("field", "use"), reports.REPORT_FIELDS),
        ]
    )


def _acks_answered() -> str:
    rows = [
        (f"`{r.ack.value}`", f"{r.error.value}", f"`{r.code}`", r.reason, condition)
        for condition, r in refusals.REFUSALS.items()
    ]
    return "\n\n".join(
        [
            "## 5. ACKs we answer",
            "Every message that ends with an end block gets one ACK, after the database commit for AA. "
            "The ACK swaps the sender's MSH-3/4 into MSH-5/6, echoes MSH-9's event, MSH-10 (in MSA-2), "
            "MSH-11 and MSH-12, and is written with the sender's separators.",
            _table(("MSA-1", "meaning"), [(f"`{code.value}`", text) for code, text in ACK_MEANING.items()]),
            "Why a message is not accepted (MSA-3, and ERR: ERR-3 code and ERR-8 text from v2.4, ERR-1 before; "
            "codes from HL7 table 0357). A message not accepted is kept raw in `inbound_messages`:",
            _table(("MSA-1", "0357", "error code", "reason", "condition"), rows),
        ]
    )


def _transport() -> str:
    return "\n\n".join(
        [
            "## 6. MLLP framing, TLS and limits",
            f"A frame is {_hex(mllp.START_BLOCK)} (VT), the message as UTF-8, {_hex(mllp.END_BLOCK)} (FS CR). A message "
            "holding VT or FS is never framed. An ACK larger than "
            f"{mllp.MAX_ACK_BYTES} bytes is unusable. One connection per ORU^R01; the listener takes many "
            "messages per connection, answered in order.",
            "### Sending (MLLP client)",
            _settings_table(("host", "port", "ack_timeout", "tls")),
            "### Receiving (MLLP server)",
            _settings_table(("listen_",)),
        ]
    )


def _encoding() -> str:
    return "\n\n".join(
        [
            "## 7. Character encoding and escaping",
            "We send UTF-8 (MSH-18 `UNICODE UTF-8`; `UNICODE` in v2.3.1) with the standard separators "
            "`|^~\\&`. Every value is escaped (HL7 v2 section 2.7), whatever its source: DICOM header, RIS "
            "order, model text or configuration.",
            _table(("sequence", "stands for"), [(f"`{s}`", m) for s, m in escaping.ESCAPE_SEQUENCES]),
            "Control characters: in identifiers, names, codes and descriptions every C0 character "
            "(0x00-0x1F: CR, LF, VT, FS, ...) and DEL is written as `\\Xhh\\`, so the value comes back "
            "exactly; C1 characters (U+0080-U+009F) are dropped. In report text the text is cut into lines "
            "at every line break (CR, LF, CRLF, VT, FF, FS, GS, RS, NEL, U+2028, U+2029), other control "
            "characters are dropped and runs of blanks become one space: TX has one OBX per line, FT joins "
            "the lines of a section with `\\.br\\`.",
            "Before a message is stored it is parsed back with python-hl7 and must give exactly the "
            "segments and values meant, then pass hl7apy's STRICT validation; otherwise nothing is stored "
            "or sent and the delivery fails with `hl7.build.mismatch` or `hl7.build.invalid`.",
            "Received values are unescaped under the sender's separators: `\\Xhh..\\` as bytes (UTF-8, else "
            "ISO 8859-1), `\\.br\\`, `\\.sp\\`, `\\.ce\\` as line breaks; highlighting, other formatting and "
            "character-set switches are dropped. A value read from an order and written into our ORU^R01 "
            "is escaped again, so `\\X0D\\` stays `\\X0D\\`.",
        ]
    )


def render() -> str:
    head = "\n\n".join(
        [
            "# HL7 Interface Specification",
            "Generated by `radassist docs write` from the code's own tables; `radassist docs check` fails "
            "when this file and the code differ. The administrator's guide is [hl7.md](hl7.md).",
            "## 1. Overview",
            _table(
                ("direction", "messages", "transport"),
                [
                    ("RadAssist -> RIS", "ORU^R01 (the draft, preliminary)", "MLLP client, optional TLS"),
                    (
                        "RIS -> RadAssist",
                        "ORM^O01, OMI^O23 (orders); ORU^R01 (signed reports)",
                        "MLLP server, optional TLS",
                    ),
                ],
            ),
        ]
    )
    sections = [head, _outbound(), _acks_accepted(), _inbound(), _acks_answered(), _transport(), _encoding()]
    return "\n\n".join(sections) + "\n"
