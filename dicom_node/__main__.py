"""``python -m dicom_node [--config FILE]``: run the DICOM listener until SIGINT/SIGTERM."""

from __future__ import annotations

import sys

from dicom_node.server import run_listener
from radassist.process_main import run_listener_main


def main(argv: list[str] | None = None) -> int:
    return run_listener_main("python -m dicom_node", "RadAssist DICOM listener", run_listener, argv)


if __name__ == "__main__":
    sys.exit(main())
