"""The outbox: one row per output and destination, sent and retried until delivered or failed."""
