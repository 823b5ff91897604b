"""``python -m hl7_node [--config FILE]``: run the inbound HL7 listener until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import sys

from hl7_node.server import run_listener
from radassist.config import load_settings
from radassist.errors import ConfigError
from radassist.logging import configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hl7_node", description="RadAssist inbound HL7 listener")
    parser.add_argument("--config", metavar="FILE", help="TOML settings file (default: $RADASSIST_CONFIG)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
        configure_logging(settings.logging.level)
        run_listener(settings)
    except ConfigError as exc:
        print(f"radassist: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
