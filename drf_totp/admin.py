"""Read-only admin pages for devices and recovery codes, with the two administrator actions.

Nothing here shows a secret or a recovery code digest. Devices change only through the actions
"Reset 2FA" and "Unlock", which call ``devices.reset`` / ``devices.unlock`` (so they are logged
and signalled as the API's changes are) and record an admin ``LogEntry``. Neither touches the
acting user's own device unless their session passed the second factor, on any admin site
(``admin_site.OTPAdminSite`` asks for it at login).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename, get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import devices, lockout
from .admin_site import session_passed_2fa
from .models import RecoveryCode, TOTPDevice


def _user_search_fields() -> tuple[str, ...]:
    """Search by the user's username field, and email when the user model has one."""
    user_model = get_user_model()
    names = [user_model.USERNAME_FIELD]
    email = user_model.get_email_field_name()
    try:
        user_model._meta.get_field(email)
    except FieldDoesNotExist:
        pass
    else:
        if email not in names:
            names.append(email)
    return tuple(f"user__{name}" for name in names)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows are viewed, never added, edited or deleted here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting a row would turn 2FA off without the signal and log line of a reset.
        return False

    def get_search_fields(self, request: HttpRequest) -> tuple[str, ...]:
        return _user_search_fields()


class LockedFilter(admin.SimpleListFilter):
    title = _("locked")
    parameter_name = "locked"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[TOTPDevice]
    ) -> QuerySet[TOTPDevice]:
        # Locked for now, or locked out of TOTP until a recovery code or an unlock: the rows
        # that the code check would refuse a TOTP code.
        may_check = lockout.unlocked(timezone.now(), totp=True)
        if self.value() == "yes":
            return queryset.exclude(may_check)
        if self.value() == "no":
            return queryset.filter(may_check)
        return queryset


@admin.register(TOTPDevice)
class TOTPDeviceAdmin(ReadOnlyAdmin):
    list_display = (
        "user",
        "name",
        "is_confirmed",
        "created_at",
        "confirmed_at",
        "last_used_at",
        "failure_count",
        "locked_until",
        "weak_secret",
    )
    list_filter = ("is_confirmed", LockedFilter, "weak_secret", "created_at", "last_used_at")
    list_select_related = ("user",)
    ordering = ("-created_at",)
    # Every field but the secret, which is never shown, not even read-only.
    fields = (
        "user",
        "name",
        "is_confirmed",
        "digits",
        "period",
        "algorithm",
        "created_at",
        "confirmed_at",
        "last_used_at",
        "last_used_step",
        "use_count",
        "failure_count",
        "locked_until",
        "weak_secret",
    )
    readonly_fields = fields
    exclude = ("secret",)
    actions = ["reset_2fa", "unlock"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[TOTPDevice]:
        # Pages never need the secret, so it is not even read (nor decrypted).
        return super().get_queryset(request).defer("secret")

    def has_reset_permission(self, request: HttpRequest) -> bool:
        return self._has_model_permission(request, "delete")

    def has_unlock_permission(self, request: HttpRequest) -> bool:
        return self._has_model_permission(request, "change")

    def _has_model_permission(self, request: HttpRequest, action: str) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.{get_permission_codename(action, opts)}")

    @admin.action(
        description=_("Reset 2FA (delete device and recovery codes)"), permissions=["reset"]
    )
    def reset_2fa(self, request: HttpRequest, queryset: QuerySet[TOTPDevice]) -> None:
        if self._refused_for_own_device(request, queryset):
            return
        done = 0
        for user in _owners(queryset):
            with transaction.atomic():
                # Logged before the delete: the entries name rows that are about to go.
                self._log_deletions(request, self.get_queryset(request).filter(user=user))
                if devices.reset(user, request=request):
                    done += 1
        self.message_user(
            request,
            ngettext(
                "Two-factor authentication was reset for %(count)d user.",
                "Two-factor authentication was reset for %(count)d users.",
                done,
            )
            % {"count": done},
            messages.SUCCESS,
        )

    @admin.action(description=_("Unlock (clear failures and lock)"), permissions=["unlock"])
    def unlock(self, request: HttpRequest, queryset: QuerySet[TOTPDevice]) -> None:
        if self._refused_for_own_device(request, queryset):
            return
        done = 0
        selected = list(queryset.select_related("user"))
        for user in _owners(queryset):
            with transaction.atomic():
                if not devices.unlock(user, request=request):
                    continue
                done += 1
                for device in selected:
                    if device.user_id == user.pk:
                        self.log_change(
                            request, device, str(_("Unlocked: failures and lock cleared."))
                        )
        level = messages.SUCCESS if done else messages.INFO
        skipped = len({device.user_id for device in selected}) - done
        text = ngettext("Unlocked %(count)d user.", "Unlocked %(count)d users.", done) % {
            "count": done
        }
        if skipped:
            text += " " + ngettext(
                "%(count)d user was not locked.", "%(count)d users were not locked.", skipped
            ) % {"count": skipped}
        self.message_user(request, text, level)

    def _refused_for_own_device(self, request: HttpRequest, queryset: QuerySet[TOTPDevice]) -> bool:
        """Refuse, with a message, an action on the acting user's own device from a session that
        did not pass their second factor: else a password alone would undo it (reset) or lift
        the guess limit (unlock)."""
        acting = request.user.pk
        own = acting is not None and queryset.filter(user_id=acting).exists()
        if not own or session_passed_2fa(request):
            return False
        self.message_user(
            request,
            _(
                "Nothing was done: your own device is selected, and this session did not pass "
                "your two-factor authentication. Log in with your code first."
            ),
            messages.ERROR,
        )
        return True

    def _log_deletions(self, request: HttpRequest, queryset: QuerySet[TOTPDevice]) -> None:
        # Django 5.1 added log_deletions() and deprecated log_deletion(); 6.0 removed the latter.
        if hasattr(admin.ModelAdmin, "log_deletions"):
            self.log_deletions(request, queryset.select_related("user"))
        else:  # Django < 5.1
            for device in queryset.select_related("user"):
                self.log_deletion(request, device, str(device))  # type: ignore[attr-defined]


def _owners(queryset: QuerySet[TOTPDevice]) -> QuerySet[Any]:
    """The users of the selected devices, each once."""
    user_model = get_user_model()
    return user_model._default_manager.filter(pk__in=queryset.values("user_id")).order_by("pk")


@admin.register(RecoveryCode)
class RecoveryCodeAdmin(ReadOnlyAdmin):
    list_display = ("user", "created_at", "used_at")
    list_filter = (("used_at", admin.EmptyFieldListFilter), "created_at")
    list_select_related = ("user",)
    ordering = ("user", "created_at")
    # The digest is a keyed hash, useless to an admin and better kept off screens.
    fields = ("user", "created_at", "used_at")
    readonly_fields = fields
    exclude = ("digest",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[RecoveryCode]:
        return super().get_queryset(request).defer("digest")
