"""Security notifications: an e-mail to the user when 2FA is turned on or off, recovery codes are
regenerated or used, the account is locked, or the lockout after ``TOTP_MAX_FAILURES`` is reached.

Receivers of the signals of :mod:`drf_totp.signals`, which are sent once the change is committed
and once per lock, so a rolled-back change notifies nobody. ``TOTP_NOTIFY = False`` turns them
off; ``TOTP_NOTIFIER`` (a dotted path to a ``callable(event, user, context)``) replaces the
e-mail, and is called for every user. Users without an e-mail address get no e-mail. A notifier
that fails is logged at ERROR on the ``drf_totp`` logger and never fails the request. No context
carries a code, a secret, a ticket or a token.

Replacing a weak secret confirms a new device: it is notified as ``totp_enabled``.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.mail import EmailMultiAlternatives
from django.template import Context, Engine, TemplateDoesNotExist
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.module_loading import import_string

from . import signals
from .settings import totp_settings
from .throttling import CodeIPThrottle

logger = logging.getLogger("drf_totp")

EVENTS = (
    signals.totp_enabled,
    signals.totp_disabled,
    signals.recovery_codes_regenerated,
    signals.recovery_code_used,
    signals.totp_locked,
    signals.totp_locked_out,
)


@lru_cache(maxsize=1)
def _own_templates() -> Engine:
    """An engine over drf-totp's own templates alone, for a project that has none configured."""
    return Engine(
        dirs=[str(Path(__file__).resolve().parent / "templates")],
        libraries={"i18n": "django.templatetags.i18n"},
    )


def render(name: str, context: dict[str, Any]) -> str:
    """``name`` rendered by the project's template engines (so a project overrides it), or by
    drf-totp's own when they cannot find it: an API-only project may configure no engine."""
    try:
        return render_to_string(name, context)
    except TemplateDoesNotExist:
        return _own_templates().get_template(name).render(Context(context))


def send_email(event: str, user: Any, context: dict[str, Any]) -> None:
    """The default notifier: ``drf_totp/email/<event>_subject.txt``, ``.txt`` and ``.html``."""
    prefix = f"drf_totp/email/{event}"
    subject = " ".join(render(f"{prefix}_subject.txt", context).split())
    message = EmailMultiAlternatives(subject, render(f"{prefix}.txt", context), to=[user.email])
    message.attach_alternative(render(f"{prefix}.html", context), "text/html")
    message.send()


def client_ip(request: Any) -> str:
    """The client's address as the per-IP throttles read it (``NUM_PROXIES`` proxies trusted)."""
    return CodeIPThrottle().get_ident(request)


def site_name(request: Any) -> str:
    """The current Site's name with ``django.contrib.sites``, else the request's host, else
    ``TOTP_ISSUER_NAME`` (also for a host that ``ALLOWED_HOSTS`` does not name)."""
    if apps.is_installed("django.contrib.sites"):
        from django.contrib.sites.shortcuts import get_current_site

        return str(get_current_site(request).name)
    if request is not None:
        try:
            return str(request.get_host())
        except DisallowedHost:
            pass
    return str(totp_settings.ISSUER_NAME)


def notify(signal: signals.Event, user: Any, request: Any = None, **extra: Any) -> None:
    """Notify ``user`` of ``signal``, unless notifications are off or the user has no e-mail."""
    if not totp_settings.NOTIFY:
        return
    if signal is signals.totp_locked and extra["failure_count"] == totp_settings.MAX_FAILURES:
        return  # the lockout's own notification tells of this failure: one message per action
    try:  # whatever fails here (settings, templates, the mail server) must not fail the request
        _send(signal, user, request, extra)
    except Exception:
        logger.exception("notification %s for user=%s failed", signal.name, user.pk)


def _send(signal: signals.Event, user: Any, request: Any, extra: dict[str, Any]) -> None:
    notifier = (
        send_email if totp_settings.NOTIFIER is None else import_string(totp_settings.NOTIFIER)
    )
    if notifier is send_email and not getattr(user, "email", ""):
        return
    language = (
        translation.get_language_from_request(request) if request is not None else None
    ) or settings.LANGUAGE_CODE
    context: dict[str, Any] = {
        "user": user,
        "site_name": site_name(request),
        "time": timezone.now(),
        "ip": client_ip(request) if request is not None else None,
        "by_admin": request is None,
        **{key: extra[key] for key in ("remaining", "locked_until") if key in extra},
    }
    with translation.override(language):
        notifier(signal.name, user, context)


def _receiver(signal: signals.Event) -> Any:
    def receive(sender: Any, user: Any, request: Any = None, **extra: Any) -> None:
        extra.pop("signal", None)
        notify(signal, user, request, **extra)

    return receive


def connect() -> None:
    """Connect the notifications to the signals (from ``AppConfig.ready``)."""
    for signal in EVENTS:
        signal.connect(_receiver(signal), weak=False, dispatch_uid=f"drf_totp.notify.{signal.name}")
