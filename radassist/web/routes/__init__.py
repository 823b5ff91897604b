"""One router per resource: the worklist (pages and JSON) and the ops endpoints."""
