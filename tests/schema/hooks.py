"""Schemathesis hooks for the Convene admin API.

A room's validity window has rules the OpenAPI schema cannot express (they depend on
the time of the request): validFrom at most 180 days from now, validUntil later than
both now and validFrom, and at most 180 days after validFrom. Right before each
request, string values of the two fields are rewritten into a valid window derived
from the generated values (so a seed still reproduces the run). Values of another
type are left alone, so negative tests stay negative.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import schemathesis

WINDOW = timedelta(days=180)
MARGIN = timedelta(minutes=10)


def _fraction(value: object, salt: str) -> float:
    digest = hashlib.sha256(f"{salt}:{value!r}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _fmt(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def fix_window(body: dict, both: bool) -> dict:
    """`both`: set both fields whenever either is there (an update is checked against
    the stored other field, which the test cannot see)."""
    vf, vu = body.get("validFrom"), body.get("validUntil")
    now = datetime.now(timezone.utc)
    # validFrom may lie in the past too; keep it within a day before now.
    start = now - timedelta(days=1) + (WINDOW - 2 * MARGIN) * _fraction(vf, "from")
    new = dict(body)
    set_from = isinstance(vf, str) or (both and ("validFrom" in body or "validUntil" in body))
    set_until = isinstance(vu, str) or (both and ("validFrom" in body or "validUntil" in body))
    # Only strings and nulls are rewritten: other types stay (negative tests).
    if (vf is not None and not isinstance(vf, str)) or (vu is not None and not isinstance(vu, str)):
        return new
    if set_from:
        new["validFrom"] = _fmt(start)
    if set_until:
        base = start if set_from else now
        floor = max(base, now) + MARGIN
        span = base + WINDOW - MARGIN - floor
        new["validUntil"] = _fmt(floor + span * _fraction(vu, "until"))
    return new


@schemathesis.hook.apply_to(path_regex=r"^/v1/rooms(/\{roomId\})?$")
def before_call(ctx, case, **kwargs):
    if case.method in ("POST", "PATCH") and isinstance(case.body, dict):
        if "validFrom" in case.body or "validUntil" in case.body:
            case.body = fix_window(case.body, both=case.method == "PATCH")
