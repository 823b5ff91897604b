"""The database, the bottom layer: tables, engine, migrations and compare-and-set state transitions."""
