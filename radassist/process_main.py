"""The ``python -m <listener>`` entry every listener process shares: ``--config``, logging, and one
line on a bad config (exit status 2) rather than a traceback an administrator has to read."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from radassist.config import Settings, load_settings
from radassist.errors import ConfigError
from radassist.logging import configure_logging


def run_listener_main(prog: str, description: str, run: Callable[[Settings], None], argv: list[str] | None) -> int:
    """Parse ``--config``, load the settings and run ``run`` until it returns (SIGINT/SIGTERM)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", metavar="FILE", help="TOML settings file (default: $RADASSIST_CONFIG)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
        configure_logging(settings.logging.level)
        run(settings)
    except ConfigError as exc:
        print(f"radassist: {exc}", file=sys.stderr)
        return 2
    return 0
