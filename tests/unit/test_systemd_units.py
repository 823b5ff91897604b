"""The systemd units in deploy/systemd start real ``radassist`` commands, hardened, and systemd accepts them.

A unit whose ExecStart names a subcommand or an option the CLI no longer has fails only when an
administrator starts it on a hospital's machine; this catches it here: each ExecStart is parsed by
the CLI's own parser and run with ``--help``, and ``systemd-analyze verify`` reads every unit (with
the installed ``radassist`` in place of ``/opt/radassist/bin/radassist``) when it is installed.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from radassist.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "deploy" / "systemd"
BINARY = "/opt/radassist/bin/radassist"
CONFIG = "/etc/radassist/radassist.toml"
SERVICES = sorted(UNITS.glob("*.service"))
HARDENING = {
    "User": "radassist",
    "NoNewPrivileges": "true",
    "ProtectSystem": "strict",
    "ProtectHome": "true",
    "PrivateTmp": "true",
    "ReadWritePaths": "/var/lib/radassist",
    "UMask": "0077",
}


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Section -> key -> values (a key may repeat, as ``Environment=`` does), comments left out."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path.name}: {line!r} before any section"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: {line!r} is not key=value"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def exec_argv(path: Path, instance: str = "0") -> list[str]:
    """The unit's ExecStart as argv, with the template's ``%i`` filled in."""
    (command,) = parse_unit(path)["Service"]["ExecStart"]
    return shlex.split(command.replace("%i", instance))


def test_the_units_are_there() -> None:
    names = {p.name for p in SERVICES}
    assert {
        "radassist-dicom.service",
        "radassist-hl7.service",
        "radassist-scheduler.service",
        "radassist-web.service",
        "radassist-worker-io@.service",
        "radassist-worker-cpu@.service",
        "radassist-worker-gpu@.service",
        "radassist-migrate.service",
    } <= names
    assert (UNITS / "radassist.target").is_file()


@pytest.mark.parametrize("unit", SERVICES, ids=lambda p: p.name)
def test_exec_start_is_a_radassist_command(unit: Path) -> None:
    argv = exec_argv(unit)
    assert argv[0] == BINARY
    assert argv[argv.index("--config") + 1] == CONFIG, "every part reads the same config file"
    args = build_parser().parse_args(argv[1:])  # exits (a failure here) on an unknown command or option
    assert callable(args.func)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "radassist", *argv[1:], "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: radassist {argv[1]}"), result.stdout[:200]


@pytest.mark.parametrize("unit", SERVICES, ids=lambda p: p.name)
def test_units_are_hardened(unit: Path) -> None:
    service = parse_unit(unit)["Service"]
    for key, value in HARDENING.items():
        assert service.get(key) == [value], f"{unit.name}: {key}={service.get(key)}"
    assert parse_unit(unit)["Install"]["WantedBy"] == ["radassist.target"]
    if unit.name != "radassist-dicom.service":  # the only one that may bind port 104
        assert "AmbientCapabilities" not in service, unit.name
        assert service.get("CapabilityBoundingSet") == [""], unit.name


def test_one_gpu_per_drafting_process() -> None:
    unit = UNITS / "radassist-worker-gpu@.service"
    service = parse_unit(unit)["Service"]
    assert "CUDA_VISIBLE_DEVICES=%i" in service["Environment"]
    argv = exec_argv(unit, "3")
    assert argv[argv.index("--queues") + 1] == "gpu"
    assert argv[argv.index("--concurrency") + 1] == "1"
    assert argv[argv.index("--name") + 1] == "gpu3"
    assert service.get("PrivateDevices") is None, "the GPU's device nodes must stay visible"


def test_no_worker_runs_the_scheduler() -> None:
    """Beat runs once per installation, in its own unit, never in a templated worker."""
    beats = [p.name for p in SERVICES if "--beat" in exec_argv(p) or exec_argv(p)[1] == "beat"]
    assert beats == ["radassist-scheduler.service"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    """``systemd-analyze verify`` on a copy whose ExecStart names an executable that exists here;
    a template is verified as its instance ``@0``.  Unknown keys or bad values are only warnings to
    systemd, so any line it prints about our units fails the test."""
    radassist = Path(sys.executable).parent / "radassist"
    if not radassist.exists():
        pytest.skip(f"{radassist} is not installed (pip install -e .)")
    names = []
    for unit in [*SERVICES, UNITS / "radassist.target"]:
        name = unit.name.replace("@.", "@0.")
        (tmp_path / name).write_text(unit.read_text().replace(BINARY, str(radassist)))
        names.append(str(tmp_path / name))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *names],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    ours = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if str(tmp_path) in line or "radassist" in line
    ]
    assert result.returncode == 0 and not ours, result.stdout + result.stderr
