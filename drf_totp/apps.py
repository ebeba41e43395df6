from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy as _


class DrfTotpConfig(AppConfig):
    name = "drf_totp"
    verbose_name = _("Two-factor authentication (TOTP)")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, marks, notifications  # noqa: F401  (importing checks registers them)

        marks.connect()
        notifications.connect()

        try:
            import drf_spectacular  # noqa: F401
        except ImportError:
            return
        from . import schema  # noqa: F401  (registers the OpenAPI extensions)


class OTPAdminConfig(admin_apps.AdminConfig):
    """``django.contrib.admin`` with ``OTPAdminSite`` as ``admin.site``: put
    ``"drf_totp.apps.OTPAdminConfig"`` in ``INSTALLED_APPS`` in place of
    ``"django.contrib.admin"``."""

    default = False  # "drf_totp" in INSTALLED_APPS still means DrfTotpConfig
    default_site = "drf_totp.admin_site.OTPAdminSite"
