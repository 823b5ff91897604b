"""What the OHIF viewer test needs: OHIF v3's built app, Debian's nginx and chromium.

The test skips only when these are not installed locally; ``.ci/run`` installs all three, and with
``CI`` set a missing piece fails the test instead of skipping it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import free_port, wait_for_port
from tests.peers import OrthancServer, orthanc

OHIF_VERSION = "3.12.0"
OHIF_DIST = Path(
    os.environ.get("RADASSIST_OHIF_DIST", str(Path.home() / ".cache" / "radassist-ohif" / f"ohif-{OHIF_VERSION}" / "dist"))
)
CHROMIUM = "/usr/bin/chromium"
NGINX = "/usr/sbin/nginx"

#: OHIF's configuration: one DICOMweb source on the same origin; CPU rendering, because headless
#: Chromium without a GPU draws WebGL viewports black; no first-visit dialogs.
APP_CONFIG = """\
window.config = {
  routerBasename: '/',
  extensions: [],
  modes: [],
  customizationService: {},
  showStudyList: true,
  maxNumberOfWebWorkers: 1,
  showWarningMessageForCrossOrigin: false,
  showCPUFallbackMessage: false,
  showLoadingIndicator: true,
  useCPURendering: true,
  investigationalUseDialog: { option: 'never' },
  defaultDataSourceName: 'orthanc',
  dataSources: [
    {
      namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
      sourceName: 'orthanc',
      configuration: {
        friendlyName: 'Orthanc (RadAssist test)',
        name: 'orthanc',
        wadoUriRoot: '/dicom-web',
        qidoRoot: '/dicom-web',
        wadoRoot: '/dicom-web',
        qidoSupportsIncludeField: false,
        supportsReject: false,
        imageRendering: 'wadors',
        thumbnailRendering: 'wadors',
        enableStudyLazyLoad: true,
        supportsFuzzyMatching: false,
        supportsWildcard: true,
        omitQuotationForMultipartRequest: true,
        bulkDataURI: { enabled: true },
      },
    },
  ],
};
"""

NGINX_CONF = """\
worker_processes 1;
daemon off;
{user}
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 256; }}
http {{
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  access_log off;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  client_max_body_size 100m;
  server {{
    listen 127.0.0.1:{port};
    root {dist};
    location = /app-config.js {{ alias {tmp}/app-config.js; }}
    location /dicom-web/ {{
      proxy_pass http://127.0.0.1:{orthanc_port}/dicom-web/;
      proxy_http_version 1.1;
      proxy_read_timeout 120s;
    }}
    location / {{ try_files $uri $uri/ /index.html; }}
  }}
}}
"""


def _missing() -> str | None:
    if not (OHIF_DIST / "index.html").is_file():
        return f"OHIF {OHIF_VERSION} dist not found at {OHIF_DIST} (.ci/run installs it)"
    for tool in (CHROMIUM, NGINX):
        if not Path(tool).is_file():
            return f"{tool} is not installed (.ci/run installs it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright (Python) is not installed"
    return None


@pytest.fixture
def viewer_requirements() -> None:
    reason = _missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@dataclass
class ViewerSite:
    url: str
    orthanc: OrthancServer


@pytest.fixture
def ohif_site(viewer_requirements: None, tmp_path: Path) -> Iterator[ViewerSite]:
    """Orthanc (DICOMweb) and, in front of it, nginx on a free loopback port: OHIF's dist at /,
    Orthanc's DICOMweb proxied at /dicom-web/ -- one origin, as a hospital would deploy it."""
    tmp = tmp_path / "nginx"
    tmp.mkdir()
    (tmp / "app-config.js").write_text(APP_CONFIG, encoding="utf-8")
    port = free_port()
    user = "user root;" if os.geteuid() == 0 else ""
    with orthanc(tmp_path / "orthanc") as server:
        conf = tmp / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(user=user, tmp=tmp, port=port, dist=OHIF_DIST, orthanc_port=server.http_port),
            encoding="utf-8",
        )
        process = subprocess.Popen([NGINX, "-p", str(tmp), "-c", str(conf)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            wait_for_port(port, timeout=30)
            yield ViewerSite(f"http://127.0.0.1:{port}", server)
        finally:
            process.terminate()
            process.wait(timeout=10)
