"""The embedded broker (Celery's SQLAlchemy transport on SQLite) keeps every message it delivered:
kombu marks a fetched message invisible and never deletes it.  Those rows are never read again (an
unacknowledged message is put back as a new row), so they are removed here, and the file stops
growing with every sweep."""

from __future__ import annotations

import logging

from sqlalchemy import create_engine, inspect, text

logger = logging.getLogger(__name__)

MESSAGE_TABLE = "kombu_message"


def is_embedded(broker_url: str) -> bool:
    """True for the SQLAlchemy transport (``sqla+...``), the one that keeps delivered messages."""
    return broker_url.startswith("sqla+")


def remove_delivered_messages(broker_url: str) -> int:
    """Delete the messages the broker has delivered; returns how many (0 for other brokers)."""
    if not is_embedded(broker_url):
        return 0
    engine = create_engine(broker_url.removeprefix("sqla+"), connect_args={"timeout": 30})
    try:
        with engine.begin() as connection:
            if not inspect(connection).has_table(MESSAGE_TABLE):
                return 0
            result = connection.execute(text(f"DELETE FROM {MESSAGE_TABLE} WHERE visible = :no"), {"no": False})
            removed = int(result.rowcount or 0)
    finally:
        engine.dispose()
    if removed:
        logger.info("removed %d delivered messages from the embedded broker", removed)
    return removed
