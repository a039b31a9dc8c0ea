"""Credentials out of URLs and messages, before they reach a log, a report or an artefact."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

# scheme://user:password@host or scheme://token@host, anywhere in a text.
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
MASK = "***"


def redact_url(url: str) -> str:
    """``url`` with its user and password (or token) replaced by ``***``; other URLs unchanged.

    >>> redact_url("https://bot:s3cret@git.example.org/org/manifests.git")
    'https://***@git.example.org/org/manifests.git'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact(url)
    if not (parts.username or parts.password):
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"{MASK}@{host}", parts.path, parts.query, parts.fragment))


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with every URL's userinfo, and each of ``secrets`` (non-empty), replaced by ``***``."""
    out = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    for secret in secrets:
        if secret:
            out = out.replace(secret, MASK)
    return out
