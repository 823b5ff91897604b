"""Celery workers and the scheduler: drafting (``gpu`` queue), delivery (``io`` queue), sweeps (beat)."""
