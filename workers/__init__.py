"""Celery workers and the scheduler: drafting (``gpu`` queue); building outputs, delivering and the
sweep (``io`` queue; the sweep on the scheduler's timetable).

The task modules only wire Celery to the stage packages of :mod:`radassist`.
"""
