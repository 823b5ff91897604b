"""Build outputs: a committed draft becomes the files each destination receives, and the outbox.

In flow order: :mod:`~radassist.outputs.plan` resolves the study's pipeline once (which
destinations, which SR classes, whether an ORU goes to the RIS); :mod:`~radassist.outputs.inputs`
reads what the builders need (the received headers, the RIS order, an earlier job's SRs);
:mod:`~radassist.outputs.sr` and :mod:`~radassist.outputs.oru` build one file each through
:mod:`radassist.sr` and :mod:`radassist.hl7.oru`; :mod:`~radassist.outputs.build` builds each output
on its own, so one that cannot be built does not hold back the others; :mod:`~radassist.outputs.outbox`
moves the job drafted -> delivering with one delivery row per output.  Delivering them is the next
stage (:mod:`radassist.delivery`).
"""
