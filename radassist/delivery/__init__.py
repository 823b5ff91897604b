"""Deliver: each outbox row (one output to one destination) sent and retried until delivered or failed.

In flow order: :mod:`~radassist.delivery.attempt` claims a due row and sends its stored payload
(:mod:`~radassist.delivery.send`, through :mod:`radassist.pacs` or :mod:`radassist.hl7.mllp`);
:mod:`~radassist.delivery.outcome` records the result, retrying by the policy of
:mod:`~radassist.delivery.retry`, and closes the job when its last delivery is final;
:mod:`~radassist.delivery.recover` hands lost attempts back to the sweep.
"""
