"""Create the demo user, or put it back the way a new one starts out."""

from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

USERNAME = "demo"
PASSWORD = "demo-password-2fa"
EMAIL = "demo@example.com"
URL = "http://127.0.0.1:8000/"


def _user_rows(user) -> list:
    """Querysets of every drf-totp and API-token row that belongs to ``user``."""
    user_model = get_user_model()
    labels = ["drf_totp", "authtoken", "knox"]
    querysets = []
    for label in labels:
        try:
            config = apps.get_app_config(label)
        except LookupError:
            continue
        for model in config.get_models():
            if model._meta.proxy:  # its rows are the concrete model's, handled there
                continue
            for field in model._meta.get_fields():
                if (
                    field.is_relation
                    and field.concrete
                    and (field.many_to_one or field.one_to_one)
                    and field.related_model is user_model
                ):
                    querysets.append(model._default_manager.filter(**{field.name: user}))
    return querysets


class Command(BaseCommand):
    help = (
        f"Create the demo user {USERNAME!r} with password {PASSWORD!r}, or reset it: "
        "password restored, account unlocked, and its 2FA devices, recovery codes and "
        "API tokens removed so it can enroll again."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--keep-2fa",
            action="store_true",
            help="Only reset the password; keep the user's 2FA devices and tokens.",
        )

    @transaction.atomic
    def handle(self, *args, keep_2fa: bool = False, **options):
        user_model = get_user_model()
        user, created = user_model._default_manager.get_or_create(
            **{user_model.USERNAME_FIELD: USERNAME},
            defaults={"email": EMAIL} if hasattr(user_model, "email") else {},
        )
        user.set_password(PASSWORD)
        user.is_active = True
        user.save()

        removed = 0
        if not created and not keep_2fa:
            for queryset in _user_rows(user):
                removed += queryset.delete()[0]

        action = "Created" if created else "Reset"
        self.stdout.write(self.style.SUCCESS(f"{action} the demo user."))
        if removed:
            self.stdout.write(f"Removed {removed} row(s) of 2FA state and tokens.")
        self.stdout.write(f"  username: {USERNAME}")
        self.stdout.write(f"  password: {PASSWORD}")
        issuer = getattr(settings, "TOTP_ISSUER_NAME", "")
        if issuer:
            self.stdout.write(f"  issuer:   {issuer}")
        self.stdout.write(f"  open:     {URL}")
