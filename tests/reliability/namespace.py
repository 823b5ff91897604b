"""A part of the service started in its own mount namespace where the storage folder is hidden.

``unshare --mount`` gives the process a private copy of the mount table (propagation private, so
nothing it mounts reaches the host); inside it an empty tmpfs is mounted over ``[storage] path``
before ``radassist`` is exec'd, so the process sees an empty folder where the listener's files are,
as a GPU machine that mounts no shared disk would.  What the process saw at its start is written to
a file outside the hidden folder, and :func:`visible_files` looks again from inside the namespace
while it runs (``nsenter``): the evidence that the hiding held, not only that the work got done.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.reliability.harness import Part, Stack

UNSHARE, NSENTER, MOUNT, FINDMNT = (
    "/usr/bin/unshare",
    "/usr/bin/nsenter",
    "/usr/bin/mount",
    "/usr/bin/findmnt",
)

# $1 the folder to hide, $2 the file that records what the process sees there, then the command.
_HIDE = """\
hidden=$1; view=$2; shift 2
mount -t tmpfs -o size=64m,mode=0700 radassist-hidden "$hidden" || exit 97
{ echo "fstype $(findmnt -n -o FSTYPE --mountpoint "$hidden")"; ls -A "$hidden"; } > "$view"
exec "$@"
"""


def in_private_mounts(script: str, *args: str) -> list[str]:
    """The command line running the shell ``script`` (``$0`` and on: ``args``) in a new mount
    namespace with private propagation.  The probe of :func:`namespace_unavailable` and
    :func:`start_hidden` share it, so the probe asks for exactly what a start will need."""
    return [UNSHARE, "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, *args]


def namespace_unavailable() -> str | None:
    """Why a process cannot be started with the storage folder hidden here, or None when it can."""
    if os.geteuid() != 0:
        return "mounting a tmpfs in a new mount namespace needs root (unshare -m)"
    for tool in (UNSHARE, NSENTER, MOUNT, FINDMNT):
        if not Path(tool).exists():
            return f"{tool} is not installed (util-linux)"
    with tempfile.TemporaryDirectory(prefix="radassist-ns-probe-") as probe:
        result = subprocess.run(
            in_private_mounts('mount -t tmpfs probe "$0"', probe),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            return f"unshare --mount is refused here (a container without CAP_SYS_ADMIN?): {result.stderr.strip()}"
    return None


def start_hidden(stack: Stack, name: str, *args: str) -> tuple[Part, Path]:
    """Start ``radassist <args>`` like :meth:`Stack.start`, but in a mount namespace where the stack's
    storage folder is an empty tmpfs; returns the part and the file recording what it saw at start."""
    stack.data.mkdir(parents=True, exist_ok=True)  # the mount point
    view = stack.root / f"{name}.view"
    log = stack.root / f"{name}.log"
    command = [sys.executable, "-m", "radassist", *args, "--config", str(stack.config)]
    argv = in_private_mounts(_HIDE, "hide", str(stack.data), str(view), *command)
    # unshare and sh exec what follows: the pid (and process group) is radassist's own.
    process = subprocess.Popen(
        argv,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env=stack.env,
        start_new_session=True,
        cwd=stack.root,
    )
    part = Part(name, argv, process, log)
    stack.parts[name] = part
    return part, view


def visible_files(pid: int, folder: Path) -> list[str]:
    """The files under ``folder`` as the process ``pid`` sees them (from inside its mount namespace)."""
    result = subprocess.run(
        [NSENTER, "--target", str(pid), "--mount", "--", "find", str(folder), "-type", "f"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return sorted(line for line in result.stdout.splitlines() if line)


def host_files(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*") if p.is_file())
