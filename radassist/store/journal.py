"""Whether a folder's file system journals its metadata, for the one case where the store must know.

With ``[storage] sync = "each-file"`` a received file is written unnamed (``O_TMPFILE``), fsynced, linked
to its name, and its folder fsynced.  On a journaled file system (ext4 with its journal, XFS, btrfs)
the link and the new entry are committed together, so the folder's fsync makes the name and the
file's link count durable at once.  On ext2, ext3 or ext4 without a journal it does not: the folder's
``fsync`` writes the folder's entries and its own inode, and the file's inode, whose link count went
from 0 to 1 with the link, waits for the kernel's later write-back (seen in the block layer's trace).
A power cut in between leaves a name whose inode counts no link, which the kernel will not open
until e2fsck repairs the count.  So there the store fsyncs the file once more after the link
(:meth:`radassist.store.instances.InstanceStore.write`).

Linux lists every jbd2 journal in ``/proc/fs/jbd2`` as ``<device>-<journal inode>``: an ext file
system whose device has no entry there has no journal.  Anything this cannot read counts as no
journal: the extra fsync costs one cache flush, never an instance.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

EXT_FAMILY = frozenset({"ext2", "ext3", "ext4"})
"""File systems that may run without a journal (the others named here journal, or keep no links on disk)."""
_MOUNTINFO = "/proc/self/mountinfo"
_JOURNALS = "/proc/fs/jbd2"


def has_journal(fstype: str | None, device: str | None, journals: Iterable[str]) -> bool:
    """Whether a file system of type ``fstype`` on block device ``device`` (its kernel name, e.g.
    ``vda1``) journals its metadata, given the entries of ``/proc/fs/jbd2``."""
    if fstype is None:
        return False
    if fstype not in EXT_FAMILY:
        return True
    return device is not None and any(entry.startswith(f"{device}-") for entry in journals)


def journals_metadata(folder: Path | str) -> bool:
    """:func:`has_journal` for the file system holding ``folder``, read from ``/proc`` and ``/sys``."""
    try:
        device = os.stat(folder).st_dev
        number = f"{os.major(device)}:{os.minor(device)}"
        fstype = _fstype(number)
        name, journals = None, []
        if fstype in EXT_FAMILY:  # only these need the device's name and the journals' list
            name = os.path.basename(os.readlink(f"/sys/dev/block/{number}"))
            journals = os.listdir(_JOURNALS)
    except OSError:
        return False
    return has_journal(fstype, name, journals)


def _fstype(number: str) -> str | None:
    """The type of the file system mounted from device ``major:minor`` (``/proc/self/mountinfo``)."""
    with open(_MOUNTINFO, encoding="utf-8") as mounts:
        for line in mounts:
            fields, _, rest = line.partition(" - ")
            parts = fields.split()
            if len(parts) > 2 and parts[2] == number and rest:
                return rest.split()[0]
    return None


__all__ = ["EXT_FAMILY", "has_journal", "journals_metadata"]
