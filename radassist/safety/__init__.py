"""Drafts a radiologist can trust: the checks on a draft's text (:mod:`radassist.safety.checks`,
words in :mod:`radassist.safety.vocabulary`) and the gate that applies ``[safety]``'s policy to
each warning (:mod:`radassist.safety.gate`).

A building block without a database: the draft stage runs the gate where the draft is recorded
(:mod:`radassist.drafting.record`), the outputs state what it decided, and the read side explains it.
Importing it loads no model code.
"""

from radassist.safety.checks import EXPLANATIONS, Check, SafetyWarning, StudyFacts, consistency_warnings
from radassist.safety.gate import AppliedWarning, GateDecision, decide, stated_warnings

__all__ = [
    "EXPLANATIONS", "AppliedWarning", "Check", "GateDecision", "SafetyWarning", "StudyFacts", "consistency_warnings",
    "decide", "stated_warnings",
]
