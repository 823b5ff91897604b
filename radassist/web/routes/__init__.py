"""One router per screen or resource: the worklist and study pages (and their JSON), the system page,
the admin actions, login, and the ops endpoints."""
