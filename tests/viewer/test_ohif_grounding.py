"""Seen in a real viewer: a grounded finding's box drawn by OHIF v3 where the finding is.

A synthetic CT slice with a bright marker at a known place goes through the steps a grounded draft
takes: the picture is prepared as the drafting pipeline does (decode, window, shrink to the model's
``image_size``, pad to a square) and resized by Qwen2.5-VL's processor rule; the marker found in
that picture is written as Qwen2.5-VL writes a box; the text is parsed, the box mapped back to the
source, and the TID 1500 measurement report built.  Orthanc stores the slice and the report; OHIF
(built app behind nginx, Orthanc's DICOMweb on the same origin) opens the report in headless
Chromium, and the test reads the box OHIF drew (an SVG polyline over the viewport) and the marker
on the viewport's canvas, and checks that they coincide.  The screenshot is kept under
tests/artifacts/ohif-grounded-box.png.

OHIF draws an SR's regions with its DICOMSRDisplay tool only on a WebGL viewport (the tool returns
early when the viewport has no rendering actors, which is so under ``useCPURendering``), so this
test serves OHIF's configuration with CPU rendering off and gives headless Chromium a software
WebGL (SwiftShader), as a reading workstation's GPU would.  The viewport's visible canvas is a 2D
canvas that cornerstone copies each rendered frame into, so its pixels can be read.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pydicom
import pytest
from PIL import Image

from radassist.grounding import PictureGeometry, Resize, Size, map_findings, pad_to_square, parser_for
from radassist.grounding.processors import qwen2_vl_resize
from radassist.imaging.pixels import frame_to_rgb, to_image
from radassist.sr.measurement_report import SERIES_DESCRIPTION, build_measurement_report, grounding_sr_uids
from tests.grounding.marked import bright_box, marked_ct
from tests.viewer.conftest import APP_CONFIG, CHROMIUM, ViewerSite

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.viewer

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"]
WEBGL_CONFIG = APP_CONFIG.replace("useCPURendering: true", "useCPURendering: false")
COLUMNS, ROWS = 320, 240
MARKER = (200, 60, 250, 100)  # columns 200..249, rows 60..99
FINDING = "Dense focus in the right upper zone"

# The drawn polyline(s) of the SR display tool and the viewport canvas, in page (CSS) pixels.
READ_PAGE = """() => {
  const canvas = document.querySelector('canvas.cornerstone-canvas') || document.querySelector('canvas');
  const rect = canvas.getBoundingClientRect();
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1;
  for (let y = 0; y < canvas.height; y++) {
    for (let x = 0; x < canvas.width; x++) {
      const i = 4 * (y * canvas.width + x);
      if (pixels[i] > 200 && pixels[i + 1] > 200 && pixels[i + 2] > 200) {
        x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x + 1); y1 = Math.max(y1, y + 1);
      }
    }
  }
  const sx = rect.width / canvas.width, sy = rect.height / canvas.height;
  const marker = [rect.left + x0 * sx, rect.top + y0 * sy, rect.left + x1 * sx, rect.top + y1 * sy];
  const lines = [];
  for (const line of document.querySelectorAll('svg.svg-layer polyline')) {
    const box = line.ownerSVGElement.getBoundingClientRect();
    lines.push({points: Array.from(line.points).map(p => [box.left + p.x, box.top + p.y]),
                stroke: line.getAttribute('stroke')});
  }
  return {marker, lines, canvas: [rect.left, rect.top, rect.width, rect.height]};
}"""


@dataclass
class GroundedStudy:
    study_uid: str
    source_box: tuple[float, float, float, float]


def _grounded_report(tmp_path: Path) -> tuple[list[Path], GroundedStudy]:
    """The slice, and the report of the box a Qwen2.5-VL would draw around its marker."""
    ds = marked_ct(COLUMNS, ROWS, MARKER)
    rgb = frame_to_rgb(ds)
    picture = to_image(rgb, 160)
    steps = [Resize(Size(COLUMNS, ROWS), Size(*picture.size)), pad_to_square(Size(*picture.size))]
    padded = Image.new("RGB", (steps[-1].after.width, steps[-1].after.height))
    padded.paste(picture, (steps[-1].left, steps[-1].top))
    steps.append(qwen2_vl_resize(steps[-1].after))
    seen = padded.resize((steps[-1].after.width, steps[-1].after.height), Image.Resampling.BICUBIC)
    model_output = "```json\n" + json.dumps([{"bbox_2d": list(bright_box(seen)), "label": FINDING}]) + "\n```"
    geometry = PictureGeometry(str(ds.SOPInstanceUID), 1, COLUMNS, ROWS, 0, tuple(steps))
    mapped = map_findings(parser_for("qwen2_5_vl")(model_output).findings, [geometry])
    (box,) = mapped.findings[0].boxes
    paths = [tmp_path / "slice.dcm", tmp_path / "grounding.dcm"]
    ds.save_as(paths[0], enforce_file_format=True)
    series_uid, sop_uid = grounding_sr_uids(uuid.uuid4())
    report = build_measurement_report(
        [pydicom.dcmread(paths[0], stop_before_pixels=True)],
        mapped.findings,
        series_instance_uid=series_uid,
        sop_instance_uid=sop_uid,
        model_name="tiny-grounding-model",
        model_revision="1",
        software_version="0.1.0",
    )
    report.save_as(paths[1], enforce_file_format=True)
    return paths, GroundedStudy(str(ds.StudyInstanceUID), (box.x_min, box.y_min, box.x_max, box.y_max))


@pytest.fixture
def grounded_study(ohif_site: ViewerSite, tmp_path: Path) -> Iterator[GroundedStudy]:
    paths, study = _grounded_report(tmp_path)
    for path in paths:
        httpx.post(f"{ohif_site.orthanc.url}/instances", content=path.read_bytes(), timeout=30).raise_for_status()
    yield study


def open_report_in_ohif(page: Page, ohif_url: str, study_uid: str, artifact: str) -> dict[str, Any]:
    """Open the study in OHIF (WebGL), open the measurement report and decline hydration, as a reader
    who keeps the report's display; what :data:`READ_PAGE` reads once its one box is drawn.

    Under CI load OHIF has once drawn nothing within a minute: the page is then kept as
    ``<artifact>-not-drawn.png`` and the study opened once more, with the same expectation.
    """
    from playwright.sync_api import expect

    page.route("**/app-config.js", lambda route: route.fulfill(
        status=200, content_type="application/javascript", body=WEBGL_CONFIG))
    page.add_init_script("localStorage.setItem('shownTours', JSON.stringify(['basicViewerTour']));")
    ARTIFACTS.mkdir(exist_ok=True)
    for attempt in (1, 2):
        page.goto(f"{ohif_url}/viewer?StudyInstanceUIDs={study_uid}", wait_until="domcontentloaded")
        thumbnail = page.get_by_text(SERIES_DESCRIPTION).first
        expect(thumbnail).to_be_visible(timeout=90_000)
        thumbnail.dblclick()
        # OHIF offers to turn the report's regions into the reader's own tracked measurements;
        # the reader declines here and keeps the report's display.
        page.locator("[data-cy=no-hydrate-btn]").click(timeout=60_000)
        try:
            expect(page.locator("svg.svg-layer polyline")).to_have_count(1, timeout=60_000)
            break
        except AssertionError:
            page.screenshot(path=str(ARTIFACTS / f"{artifact}-not-drawn.png"))
            if attempt == 2:
                raise
    seen: dict[str, Any] = page.evaluate(READ_PAGE)
    page.screenshot(path=str(ARTIFACTS / f"{artifact}.png"))
    return seen


def _bounds(points: list[list[float]]) -> tuple[float, float, float, float]:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def test_ohif_draws_the_grounded_box_over_the_marker(ohif_site: ViewerSite, grounded_study: GroundedStudy) -> None:
    from playwright.sync_api import sync_playwright

    assert WEBGL_CONFIG != APP_CONFIG  # the shared configuration still names CPU rendering
    # The mapping put the box on the marker in source pixels (to about one pixel).
    assert all(abs(a - b) <= 2.5 for a, b in zip(grounded_study.source_box, MARKER, strict=True))
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            seen = open_report_in_ohif(page, ohif_site.url, grounded_study.study_uid, "ohif-grounded-box")
        finally:
            browser.close()
    (line,) = seen["lines"]
    assert len(line["points"]) == 5 and line["points"][0] == line["points"][-1]  # a closed rectangle
    drawn = _bounds(line["points"])
    marker = seen["marker"]
    width = marker[2] - marker[0]
    assert width > 50, seen  # the marker is on screen, magnified
    # The box is drawn where the marker is: each edge within 4 % of the marker's width.
    assert all(abs(d - m) <= 0.04 * width for d, m in zip(drawn, marker, strict=True)), (drawn, marker)
