"""What grounding adds to a draft and to its outputs, per draft.

    .venv/bin/python bench/grounding.py [--boxes N] [--repeat N]

Times, for a Qwen2.5-VL output with N boxes over 8 pictures (each 896 x 896 after preparation,
sized by the processor's ``smart_resize``): reading the boxes, mapping them onto the source frames
and making the stored record (``radassist.models.grounded.ground``, in the drafting worker), and
building the measurement report with one planar ROI per box (``build_grounding_file``, on the io
worker), next to building the draft SR of the same study for scale.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout

from PIL import Image  # noqa: E402

from radassist.db.tables import Draft  # noqa: E402
from radassist.grounding import BoxGrammar, PictureGeometry, Resize, Size  # noqa: E402
from radassist.imaging.context import ClinicalContext  # noqa: E402
from radassist.imaging.prepare import PreparedStudy  # noqa: E402
from radassist.models.grounded import ground  # noqa: E402
from radassist.outputs.grounding import build_grounding_file, grounded_findings  # noqa: E402
from radassist.outputs.inputs import BuildInputs, read_headers  # noqa: E402
from radassist.outputs.sr import build_sr_file  # noqa: E402
from radassist.store.outputs import OutputStore  # noqa: E402
from tests.dicom_factories import make_ct_study, write_study  # noqa: E402


class Backend:
    box_grammar = BoxGrammar.QWEN2_5_VL

    def picture_steps(self, size: Size, pictures: int) -> tuple[Resize, ...]:
        return (Resize(size, Size(868, 868)),)


def best_ms(action: Callable[[], object], repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boxes", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        instances = make_ct_study(series_count=1, instances_per_series=8, rows=512, columns=512)
        inputs = BuildInputs(sources=read_headers(write_study(instances, Path(folder) / "study")), order=None,
                             indication=None)
        uids = [str(ds.SOPInstanceUID) for ds in instances]
        geometries = tuple(PictureGeometry(uid, 1, 512, 512, i, (Resize(Size(512, 512), Size(896, 896)),))
                           for i, uid in enumerate(uids))
        study = PreparedStudy(images=tuple(Image.new("RGB", (1, 1)) for _ in uids), context=ClinicalContext(),
                              source_sop_instance_uids=tuple(uids), geometries=geometries)
        boxes = [{"bbox_2d": [100 + i, 120, 300 + i, 340], "label": f"Finding {i % 4}", "image": i % 8 + 1}
                 for i in range(args.boxes)]
        text = "Findings: Several foci. Impression: Foci.\n```json\n" + json.dumps(boxes) + "\n```"
        _, record = ground(Backend(), study, text)
        assert record is not None
        job = uuid.uuid4()
        draft = Draft(job_id=job, findings="Several foci.", impression="Foci.", raw_text=text, model_name="bench",
                      prompt="", prompt_version="2", generation={"grounding": record})
        findings = grounded_findings(draft.generation)
        outputs = OutputStore(Path(folder) / "outputs")
        now = dt.datetime.now(dt.UTC)
        figures = {
            "ground (parse + map + record)": best_ms(lambda: ground(Backend(), study, text), args.repeat),
            "measurement report (build + store)": best_ms(
                lambda: build_grounding_file(inputs, findings, draft, job, "enhanced", now, outputs), args.repeat),
            "draft SR (build + store), for scale": best_ms(
                lambda: build_sr_file(inputs, draft, job, "enhanced", now, outputs), args.repeat),
        }
    print(f"{args.boxes} boxes on 8 pictures, best / median of {args.repeat}:")
    for name, (best, median) in figures.items():
        print(f"  {name:40s} {best:8.2f} ms  {median:8.2f} ms")


if __name__ == "__main__":
    main()
