"""``python -m hl7_node [--config FILE]``: run the inbound HL7 listener until SIGINT/SIGTERM."""

from __future__ import annotations

import sys

from hl7_node.server import run_listener
from radassist.process_main import run_listener_main


def main(argv: list[str] | None = None) -> int:
    return run_listener_main("python -m hl7_node", "RadAssist inbound HL7 listener", run_listener, argv)


if __name__ == "__main__":
    sys.exit(main())
