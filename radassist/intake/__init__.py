"""Intake: from a received instance to database rows, and from quiet studies to jobs."""
