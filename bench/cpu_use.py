"""CPU time spent during a bench run: by the receiver's processes, by the sender, by the whole machine.

``bench/ingest.py`` says how fast each receiver is; this says what each instance cost in CPU, which
decides how fast a receiver can go once the machine's cores are busy (the four-association cases on a
2-vCPU VM, where the sender shares the cores).  Read from ``/proc`` (Linux):

- the receiver: its process and every live descendant (our listener's other processes), user and
  system time, plus what its reaped children used (storescp's per-association forks);
- the sender: the CPU of this process's children that ended meanwhile (``RUSAGE_CHILDREN``: the
  storescu processes :func:`ingest.send` starts and waits for);
- the machine: every core's busy time (user, nice, system, irq, softirq), which includes the kernel
  threads that write the files back and finish their extents.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuUse:
    """Seconds of CPU between two :class:`Snapshot` s."""

    receiver: float
    sender: float
    machine_busy: float


@dataclass(frozen=True)
class Snapshot:
    """CPU seconds so far: the receiver's process tree, this process's ended children, the machine."""

    receiver: float
    children: float
    machine_busy: float

    @classmethod
    def take(cls, receiver_pid: int) -> Snapshot:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return cls(_tree_seconds(receiver_pid), children.ru_utime + children.ru_stime, _machine_busy())

    def until(self, later: Snapshot) -> CpuUse:
        return CpuUse(later.receiver - self.receiver, later.children - self.children,
                      later.machine_busy - self.machine_busy)


def stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (which may hold spaces): state,
    ppid, ..., utime (index 11), stime, cutime, cstime.  None once the process has ended."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def process_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of one process so far."""
    fields = stat_fields(pid)
    if fields is None:
        raise ProcessLookupError(pid)
    return int(fields[11]) / _TICKS, int(fields[12]) / _TICKS


def tree(root: int) -> list[int]:
    """``root`` and its live descendants, ``root`` first."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := stat_fields(int(entry))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [root], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def _tree_seconds(root: int) -> float:
    """User and system seconds of ``root`` and its live descendants, with their reaped children's."""
    ticks = 0
    for pid in tree(root):
        if (fields := stat_fields(pid)) is not None:
            ticks += sum(int(value) for value in fields[11:15])
    return ticks / _TICKS


def _machine_busy() -> float:
    """Busy seconds of all cores together since boot (``/proc/stat``'s first line, idle and iowait left out)."""
    with open("/proc/stat", encoding="ascii") as handle:
        user, nice, system, _idle, _iowait, irq, softirq, *_ = (int(v) for v in handle.readline().split()[1:])
    return (user + nice + system + irq + softirq) / _TICKS
