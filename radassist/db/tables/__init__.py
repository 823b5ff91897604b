"""The tables: what came in (studies, series, instances), what we did (jobs, drafts, deliveries), and when (events).

Patient identity is deliberately not stored here: the SR and ORU builders read it from the received
files when they need it, so the database (and everything that lists it) holds no names or IDs.
``__repr__`` shows keys and state only, so a logged object can never leak anything else.
"""

from __future__ import annotations

from radassist.db.tables.conversation import ConversationTurn
from radassist.db.tables.jobs import Delivery, Draft, Event, Job
from radassist.db.tables.node import Association, NodeStatus
from radassist.db.tables.ops import ApiToken, AuditEntry, IntakePause, User, WebSession
from radassist.db.tables.prepared import PreparedBlob
from radassist.db.tables.priors import JobPrior, PriorSearch
from radassist.db.tables.quality import DraftMeasurement
from radassist.db.tables.review import DraftVerdict, Verdict, VerdictReason
from radassist.db.tables.ris import InboundMessage, Order, Report
from radassist.db.tables.studies import Instance, Series, Study, UnsyncedInstance
from radassist.db.tables.workers import WorkerPresence

__all__ = [
    "ApiToken", "Association", "AuditEntry", "ConversationTurn", "Delivery", "Draft", "DraftMeasurement",
    "DraftVerdict", "Event", "InboundMessage", "Instance", "IntakePause", "Job", "JobPrior", "NodeStatus", "Order",
    "PreparedBlob", "PriorSearch", "Report", "Series", "Study", "UnsyncedInstance", "User", "Verdict", "VerdictReason", "WebSession",
    "WorkerPresence",
]
