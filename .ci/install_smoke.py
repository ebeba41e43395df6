"""A new user's install, as the README's quick start says, against the built wheel.

Run with the interpreter of a fresh virtualenv that has only the wheel installed: it configures
a minimal project (rest_framework + drf_totp, the URLconf included), migrates an in-memory
SQLite database, runs the system checks, and enrolls and validates a user over HTTP.
"""

import django
import pyotp
from django.conf import settings
from django.urls import include, path

settings.configure(
    SECRET_KEY="install-smoke-not-a-secret-0123456789-abcdefghijklmnopqrstuvwxyz",
    INSTALLED_APPS=[
        "django.contrib.contenttypes",
        "django.contrib.auth",
        "django.contrib.sessions",
        "rest_framework",
        "drf_totp",
    ],
    MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    ROOT_URLCONF=__name__,
    USE_TZ=True,
    TOTP_ISSUER_NAME="Install Smoke",
    # As the README's quick start sets it: without it, check warns (drf_totp.W005).
    REST_FRAMEWORK={"NUM_PROXIES": 0},
    # The security e-mail of enabling 2FA, rendered from the wheel's own templates (no engine).
    EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
)
django.setup()
urlpatterns = [path("auth/", include("drf_totp.urls"))]

from django.contrib.auth.models import User  # noqa: E402
from django.core import mail as outbox  # noqa: E402
from django.core.management import call_command  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

call_command("migrate", verbosity=0)
call_command("check", fail_level="WARNING")
user = User.objects.create_user("smoke", "smoke@example.com", "pw")
client = APIClient()
client.force_authenticate(user)
url = client.post("/auth/otp/generate/", format="json").json()["otpauth_url"]
assert url.startswith("otpauth://totp/Install%20Smoke:smoke%40example.com?"), url
totp = pyotp.parse_uri(url)
response = client.post("/auth/otp/verify/", {"token": totp.now()}, format="json")
assert response.status_code == 200, response.content
assert client.get("/auth/otp/status/").json()["enabled"] is True
[mail] = outbox.outbox
assert "turned on" in mail.subject and mail.to == ["smoke@example.com"], mail.subject
print("installed wheel works:", django.get_version(), url.split("?")[0])
