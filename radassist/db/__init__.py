"""The database: tables, engine, state transitions and read-side queries."""
