"""The read side: one small query module per screen (worklist, study, system, metrics) and the row
types they return (:mod:`radassist.read.rows`), which the JSON API serves as they are.

Nothing here changes the database, and nothing here imports the write side (the stages, the
admin actions, the state transitions).
"""
