"""Prefetch: between complete and draft, a job's priors are found, fetched, stored and recorded.

A job whose pipeline has ``[[prior_sources]]`` starts in state ``priors`` (:mod:`~radassist.prefetch.start`);
the io queue's ``radassist.fetch_priors`` task reads who and what the current study is
(:mod:`~radassist.prefetch.current`), searches the sources within ``[priors] time_limit_seconds``
(:mod:`radassist.priors`), stores each fetched image like a received one but in a study row marked
``prior`` (:mod:`~radassist.prefetch.sink`), and records what it found or why it found nothing while
moving the job to ``queued`` (:mod:`~radassist.prefetch.record`); the draft task follows.  A slow,
silent or failed source never holds the job back: it goes on without a prior, and the draft, the
SR, the ORU and the study page say why.  The drafting and output stages read the outcome through
:mod:`~radassist.prefetch.read`; :mod:`~radassist.prefetch.recover` hands back a search whose worker
or message was lost.
"""
