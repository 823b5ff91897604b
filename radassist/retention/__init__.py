"""Retention: the files of studies that are done are removed, so a node that works for months never
fills its disk.

A study is *done* when it is complete, no job of it is in progress, and its latest job delivered
everything (or it had nothing to draft).  Its received instances (every revision: the study's whole
folder in the instance store) and its jobs' outputs (SR files, HL7 messages) are removed

* once it has been done for ``[retention] keep_done_hours`` (per pipeline), and
* earlier, oldest first, while free disk space is below the low-disk threshold plus
  ``[retention] headroom_bytes``, so intake is not refused for space that delivered studies hold.

A study not yet delivered (receiving, held for an identity conflict, drafting, delivering, failed,
cancelled) is never removed.  The study's rows, draft and timeline stay, with ``files_removed_at``
set and a ``study:files:removed`` event saying what was freed (:mod:`radassist.read.retention`
totals them for the System page).  The scheduler runs it (``workers/tasks/retention.py``).
"""
