"""Draft: queued jobs become drafts, committed, each job then ``drafted``.

In flow order: :mod:`~radassist.drafting.claim` takes a batch of queued jobs (compare-and-set,
``attempts`` incremented: the fence against a presumed-dead holder); :mod:`~radassist.drafting.prepare`
turns each job's stored files and RIS order into what the model is shown; :mod:`~radassist.drafting.generate`
runs the model on the prepared batch; :mod:`~radassist.drafting.record` stores each draft (or requeues
or fails the job) only if the claim still holds.  Preparing and drafting meet only in
:class:`~radassist.drafting.prepare.PreparedJob`, so preparation can run elsewhere than the GPU.
Building the SR and ORU is the next stage (:mod:`radassist.outputs`), on the io queue.
"""
