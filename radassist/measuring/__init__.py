"""Measure: every draft against the signed final report of its study, once per report.

When the RIS sends a final or corrected report for a drafted study (:mod:`radassist.ris.reports`),
or a draft is stored after its final arrived, the scheduler's quality sweep (every ``[quality]
measure_interval_seconds``) finds the draft without a measurement against its study's newest
report (:mod:`~radassist.measuring.find`) and queues ``radassist.measure`` on the ``cpu`` queue;
the task compares the two (:func:`radassist.quality.compare_pair`, which loads spaCy and so torch:
never in the io worker or the web app) and stores one ``draft_measurements`` row
(:mod:`~radassist.measuring.record`).  Shadow drafts are measured the same way, against the same
finals.
"""
