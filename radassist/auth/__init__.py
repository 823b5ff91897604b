"""Who may use the web app: local users, their sessions and API tokens, CSRF and login limits."""
