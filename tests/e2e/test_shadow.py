"""A shadow model on live traffic, with real peers: ``radassist run`` with a second tiny model in
``[[quality.shadows]]``, dcmtk's storescu as the modality, storescp as the PACS and python-hl7's MLLP
server as the RIS; the RIS then sends the signed final to our HL7 listener with python-hl7's client.

The shadow model drafts the same study, and its draft reaches neither the PACS nor the RIS; both
drafts are measured against the final by the cpu worker, and the Quality page compares them.
"""

from __future__ import annotations

from pathlib import Path

import hl7
import pytest
from hl7.client import MLLPClient

from tests.conftest import free_port, wait_for_port, wait_until
from tests.e2e.test_pipeline import run_service, send, tiny_model, write_config  # noqa: F401
from tests.evaluation.factories import GeneratedStudy, chest_film
from tests.peers import mllp_ris, storescp
from tests.quality.live import MISSED_PNEUMOTHORAX, oru

pytestmark = pytest.mark.e2e

SHADOW_REPORT = "Findings: Small left apical pneumothorax. No pleural effusion. Impression: Left pneumothorax."


def test_a_shadow_model_drafts_the_same_study_delivers_nothing_and_is_measured(
    tmp_path: Path, tiny_model: Path, run_service  # noqa: F811
) -> None:
    from radassist.config import ModelSettings
    from radassist.models.identity import model_identity
    from radassist_devtools.tiny_models import write_tiny_model

    shadow_model = write_tiny_model(tmp_path / "shadow-model", arch="gemma3", report=SHADOW_REPORT)
    study = GeneratedStudy("1.2.826.0.1.3680043.10.1.777", "E2E-SHADOW-1", "F", "071Y", MISSED_PNEUMOTHORAX)
    film = chest_film(tmp_path / "film", study, 7)
    hl7_in = free_port()

    with storescp(tmp_path / "pacs") as pacs, mllp_ris() as ris:
        config = tmp_path / "radassist.toml"
        ports = write_config(config, data=tmp_path / "data", model=str(tiny_model), pacs=pacs, ris=ris)
        text = config.read_text().replace(
            "ack_timeout_seconds = 5",
            f'ack_timeout_seconds = 5\nlisten_host = "127.0.0.1"\nlisten_port = {hl7_in}\naccession_field = "OBR-18"',
        )
        config.write_text(text + f'[quality]\nmeasure_interval_seconds = 1\n[[quality.shadows]]\nmodel_name = "{shadow_model}"\n')
        service = run_service(config, *ports)
        send(service.dicom_port, film)

        def both_done() -> dict | None:
            studies = service.studies()
            if len(studies) != 1 or studies[0]["state"] != "done":
                return None
            detail = service.get(f"/api/studies/{studies[0]['id']}").json()
            return detail if [j["state"] for j in detail["jobs"]] == ["done", "done"] else None

        detail = wait_until(both_done, timeout=300, interval=1)
        assert [(j["model_name"], j["shadow"]) for j in detail["jobs"]] == [(str(tiny_model), False),
                                                                           (str(shadow_model), True)]
        assert "shadow</span>" in service.get(f"/studies/{detail['id']}").text
        assert detail["model_name"] == str(tiny_model)  # the worklist shows the pipeline's own job
        assert "No acute cardiopulmonary abnormality" in (detail["draft"]["impression"] or "")

        # The RIS signs the report: the final goes to our HL7 listener, and both drafts are measured.
        wait_for_port(hl7_in)
        with MLLPClient("127.0.0.1", hl7_in) as client:
            ack = hl7.parse(client.send_message(oru(study.accession_number, MISSED_PNEUMOTHORAX,
                                                    control_id="E2E-FINAL-1")).decode("utf-8"))
        assert str(ack.segment("MSA")[1]) == "AA"

        def measured() -> dict | None:
            view = service.get("/api/quality?drafts=all").json()
            return view if view["pairs"] == 2 else None

        view = wait_until(measured, timeout=180, interval=1)
        # Drafts (and so their measurements) name a local model by its id, never its path.
        live_id = model_identity(ModelSettings(name=str(tiny_model)))[0]
        shadow_id = model_identity(ModelSettings(name=str(shadow_model)))[0]
        rows = {(m["model_name"], m["shadow"]): m for m in view["models"]}
        assert rows[(live_id, False)]["critical_miss_rate"] == 1.0  # the live draft said "normal"
        assert rows[(shadow_id, True)]["critical_miss_rate"] == 0.0
        (comparison,) = view["comparisons"]
        assert comparison["shadow_model"] == shadow_id and comparison["studies"] == 1
        live_only = service.get("/api/quality").json()
        assert live_only["pairs"] == 1 and [c["study_id"] for c in live_only["critical_misses"]] == [detail["id"]]

        # Only the pipeline's own draft went out: one SR to the PACS, one ORU (one control id) to the RIS.
        assert len(pacs.received()) == 1
        control_ids = {str(hl7.parse(m).segment("MSH")[10]) for m in ris.messages}
        assert len(control_ids) == 1
        assert all(str(shadow_model) not in m for m in ris.messages)
        assert [d["channel"] for d in detail["deliveries"]] and all(
            d["state"] == "delivered" for d in detail["deliveries"])
    log = service.log.read_text()
    assert "shadow draft stored; nothing is delivered" in log
    assert "SENTINEL" not in log and "E2E-SHADOW-1" not in log
