"""The worklist web app (process 3): server-rendered pages, a JSON API and the ops endpoints.

Importing this package creates nothing; :func:`radassist.web.app.create_app` builds an app.
"""
