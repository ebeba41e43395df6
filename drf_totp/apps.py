from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DrfTotpConfig(AppConfig):
    name = "drf_totp"
    verbose_name = _("Two-factor authentication (TOTP)")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, marks  # noqa: F401  (importing checks registers them)

        marks.connect()

        try:
            import drf_spectacular  # noqa: F401
        except ImportError:
            return
        from . import schema  # noqa: F401  (registers the OpenAPI extensions)
