"""Tenant ids as Loki accepts them (dskit's tenant validation), for every route to check."""

from __future__ import annotations

import re

MAX_LENGTH = 150
# Letters, digits and ! - _ . * ' ( ) only: the characters safe in object-store paths.
_ALLOWED = re.compile(r"[a-zA-Z0-9!\-_.*'()]*")


def tenant_error(tenant: str) -> str:
    """Why Loki would refuse `tenant` as an X-Scope-OrgID, or "" when valid ("" itself is valid
    here: no header, so the client's tenant_id applies)."""
    if not tenant:
        return ""
    if len(tenant) > MAX_LENGTH:
        return f"tenant id too long: {len(tenant)} characters, at most {MAX_LENGTH}"
    if tenant in (".", ".."):
        return f"tenant id {tenant!r} is not allowed"
    if not _ALLOWED.fullmatch(tenant):
        bad = next(c for c in tenant if not _ALLOWED.fullmatch(c))
        return f"tenant id {tenant[:40]!r} has an unsupported character {bad!r}"
    return ""
