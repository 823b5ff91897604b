"""CSRF tokens bound to the login: HMAC(secret key, session token), so nothing extra is stored.

A page embeds the token in every form; a POST made with the session cookie must send it back.
Requests authenticated by an API token carry no cookie a third-party page could ride on, so they
need none.
"""

from __future__ import annotations

import hashlib
import hmac

FIELD = "csrf_token"


def csrf_token(secret: bytes, session_token: str) -> str:
    return hmac.new(secret, b"csrf:" + session_token.encode("utf-8"), hashlib.sha256).hexdigest()


def csrf_valid(secret: bytes, session_token: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(csrf_token(secret, session_token), presented or "")
