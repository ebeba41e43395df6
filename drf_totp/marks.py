"""Where it is recorded that a credential passed the second factor, and how it is read back.

- a Django session carries ``SESSION_KEY``: the device and the time;
- an opaque token of drf-totp (``LoginToken``) or of knox has a ``VerifiedToken`` row, found by
  its digest, deleted with its token;
- a SimpleJWT token carries the claims ``amr`` (with "otp"), ``auth_time`` and ``otp_device``.

A mark names the device that passed, so after 2FA is disabled and enabled again, no earlier
mark counts for the new device. DRF's own authtoken ``Token`` never carries a mark: DRF hands
the same key to anyone with the password (``obtain_auth_token``, and every login that does
``Token.objects.get_or_create``), so a mark on it would let a password alone pass.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.apps import apps
from django.db import transaction
from django.db.models import Q
from django.db.models.signals import post_delete
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.request import Request

from . import authentication, exceptions, statements
from .models import LoginToken, TOTPDevice, VerifiedToken
from .verification import Accepted, Action, record

SESSION_KEY = "drf_totp_verified"
AMR_PASSWORD = "pwd"
AMR_OTP = "otp"  # RFC 8176


def token_digest(auth: Any) -> str | None:
    """The digest under which an opaque token's mark is kept, or None for other credentials."""
    if isinstance(auth, LoginToken):
        return auth.digest
    if hasattr(auth, "digest") and hasattr(auth, "token_key"):  # knox AuthToken
        return str(auth.digest)
    return None


def _is_drf_token(request: Request) -> bool:
    """Authenticated by DRF's TokenAuthentication (or a subclass), not by drf-totp's own."""
    authenticator = request.successful_authenticator
    return isinstance(authenticator, TokenAuthentication) and not isinstance(
        authenticator, authentication.TokenAuthentication
    )


def forget(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A token's mark goes with its token (logged out, replaced, expired, deleted)."""
    VerifiedToken.objects.filter(digest=instance.digest).delete()


def clear_stale(now: datetime) -> int:
    """Delete the marks whose token is gone (or, for knox, expired); return how many.

    Deleting a token deletes its mark; this catches the rest: knox tokens that expired and were
    never presented again, tokens deleted by raw SQL, marks of other kinds of token.
    """
    live = Q(digest__in=LoginToken.objects.values("digest"))
    if apps.is_installed("knox"):
        from knox.models import get_token_model

        unexpired = Q(expiry__isnull=True) | Q(expiry__gt=now)
        live |= Q(digest__in=get_token_model().objects.filter(unexpired).values("digest"))
    deleted, _ = VerifiedToken.objects.exclude(live).delete()
    return deleted


def connect() -> None:
    """Delete the mark of every deleted ``LoginToken`` and knox token (from ``AppConfig.ready``)."""
    post_delete.connect(forget, sender=LoginToken, dispatch_uid="drf_totp.marks.login_token")
    if apps.is_installed("knox"):
        from knox.models import get_token_model

        post_delete.connect(forget, sender=get_token_model(), dispatch_uid="drf_totp.marks.knox")


def mark_session(session: Any, device: TOTPDevice, now: datetime) -> None:
    session[SESSION_KEY] = {"device": device.pk, "at": int(now.timestamp())}


def recording(request: Request) -> Action:
    """The success action for a code sent with this request's credential.

    For an opaque token, the accepted code and the token's mark are written in one transaction
    (on PostgreSQL, in one statement): one commit, and never a code used up without its mark.
    Otherwise, the plain ``record``. DRF's authtoken cannot carry a mark: refused before any
    code is checked, so the code stays unused and no guess is counted.
    """
    if _is_drf_token(request):
        raise exceptions.CredentialNotMarkable()
    if is_session(request) or (digest := token_digest(request.auth)) is None:
        return record

    def record_and_mark(accepted: Accepted) -> int:
        if accepted.step is not None:  # a TOTP code
            return statements.accept(
                accepted.device, accepted.step, accepted.at, mark_digest=digest
            )
        # A recovery code. No savepoint: inside a caller's transaction this just joins it.
        with transaction.atomic(savepoint=False):
            updated = record(accepted)
            if updated:
                statements.mark(digest, accepted.device, accepted.at)
        return updated

    return record_and_mark


def is_session(request: Request) -> bool:
    return isinstance(request.successful_authenticator, SessionAuthentication)


def mark_request(request: Request, device: TOTPDevice, now: datetime) -> None:
    """Mark the credential of this request as having passed the second factor.

    A session gets a fresh key (against fixation); an opaque token of drf-totp or knox gets its
    row. Nothing is created for other credentials: in particular no session for a
    token-authenticated request, and no mark for DRF's authtoken.
    """
    if is_session(request):
        request.session.cycle_key()
        mark_session(request.session, device, now)
    elif (digest := token_digest(request.auth)) is not None:
        statements.mark(digest, device, now)


def session_verified_at(session: Any, device_pk: int) -> float | None:
    """When this Django session passed the second factor on device ``device_pk``, if it did."""
    mark = session.get(SESSION_KEY)
    if isinstance(mark, dict) and mark.get("device") == device_pk:
        return float(mark["at"])
    return None


def verified_at(request: Request, device_pk: int) -> float | None:
    """When this request's credential passed the second factor on device ``device_pk``, if it did."""
    auth = request.auth
    if is_session(request):
        return session_verified_at(request.session, device_pk)
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
