"""Where it is recorded that a credential passed the second factor, and how it is read back.

- a Django session carries ``SESSION_KEY``: the device and the time;
- an opaque token (DRF authtoken, knox) has a ``VerifiedToken`` row, found by its digest;
- a SimpleJWT token carries the claims ``amr`` (with "otp"), ``auth_time`` and ``otp_device``.

A mark names the device that passed, so after 2FA is disabled and enabled again, no earlier
mark counts for the new device.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from django.db import connections, router
from django.db.models.constants import OnConflict
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request

from .models import TOTPDevice, VerifiedToken

SESSION_KEY = "drf_totp_verified"
AMR_PASSWORD = "pwd"
AMR_OTP = "otp"  # RFC 8176


def key_digest(key: str) -> str:
    """The digest that stands for a DRF authtoken key (the key itself is never stored here)."""
    return hashlib.sha256(key.encode()).hexdigest()


def token_digest(auth: Any) -> str | None:
    """The digest under which an opaque token's mark is kept, or None for other credentials."""
    if hasattr(auth, "digest") and hasattr(auth, "token_key"):  # knox AuthToken
        return str(auth.digest)
    key = getattr(auth, "key", None)  # DRF authtoken Token
    return key_digest(key) if isinstance(key, str) else None


def mark_session(session: Any, device: TOTPDevice, now: datetime) -> None:
    session[SESSION_KEY] = {"device": device.pk, "at": int(now.timestamp())}


_MARK_FIELDS = ("digest", "user", "device_id", "verified_at")
_MARK_UPDATES = ("user", "device_id", "verified_at")


def mark_token(digest: str, device: TOTPDevice, now: datetime) -> None:
    # One upsert statement: INSERT ... ON CONFLICT (digest) DO UPDATE, or on MySQL/MariaDB
    # ON DUPLICATE KEY UPDATE, which takes no conflict target (digest is the only unique key).
    using = router.db_for_write(VerifiedToken)
    with_target = connections[using].features.supports_update_conflicts_with_target
    row = VerifiedToken(digest=digest, user_id=device.user_id, device_id=device.pk, verified_at=now)
    queryset = VerifiedToken.objects.using(using)
    # bulk_create() wraps its statements in a transaction (it may need several batches): in
    # autocommit that is a BEGIN and a COMMIT around our one statement, two more round trips on
    # every validate with a token. _insert() is the step of bulk_create() that runs the
    # statement; it is private, so bulk_create() stays the fallback.
    insert = getattr(queryset, "_insert", None)
    if insert is None:
        queryset.bulk_create(
            [row],
            update_conflicts=True,
            unique_fields=["digest"] if with_target else None,
            update_fields=list(_MARK_UPDATES),
        )
        return
    field = VerifiedToken._meta.get_field
    insert(
        [row],
        fields=[field(name) for name in _MARK_FIELDS],
        on_conflict=OnConflict.UPDATE,
        update_fields=[field(name) for name in _MARK_UPDATES],
        unique_fields=[field("digest")] if with_target else None,
    )


def mark_request(request: Request, device: TOTPDevice, now: datetime) -> None:
    """Mark the credential of this request as having passed the second factor.

    A session gets a fresh key (against fixation); an opaque token gets its row. Nothing is
    created for other credentials: in particular no session for a token-authenticated request.
    """
    if isinstance(request.successful_authenticator, SessionAuthentication):
        request.session.cycle_key()
        mark_session(request.session, device, now)
    elif (digest := token_digest(request.auth)) is not None:
        mark_token(digest, device, now)


def verified_at(request: Request, device_pk: int) -> float | None:
    """When this request's credential passed the second factor on device ``device_pk``, if it did."""
    auth = request.auth
    if isinstance(request.successful_authenticator, SessionAuthentication):
        mark = request.session.get(SESSION_KEY)
        if isinstance(mark, dict) and mark.get("device") == device_pk:
            return float(mark["at"])
        return None
    payload = getattr(auth, "payload", None)
    if isinstance(payload, dict):  # a SimpleJWT token
        amr = payload.get("amr")
        if isinstance(amr, list) and AMR_OTP in amr and payload.get("otp_device") == device_pk:
            return float(payload["auth_time"])
        return None
    digest = token_digest(auth)
    if digest is None:
        return None
    at = (
        VerifiedToken.objects.filter(digest=digest, device_id=device_pk)
        .values_list("verified_at", flat=True)
        .first()
    )
    return at.timestamp() if at is not None else None
