"""The example project's settings, as the end-to-end tests serve it.

Exactly ``example_project.settings`` (what ``make demo`` runs), except:

``DEMO_DB_PATH``
    the SQLite file, one per test server, instead of ``example/db.sqlite3``;
``DEMO_TICKET_MAX_AGE``
    ``TOTP_TICKET_MAX_AGE`` (default 300), so one server can let login tickets expire quickly;
the per-IP throttles, raised
    every test drives the browser from 127.0.0.1, so the suite as a whole would reach the
    per-IP rates that protect one real client. The per-user and per-username rates stay as
    they are (one test reaches ``totp_login_user`` on purpose).
"""

import os

from example_project.settings import *  # noqa: F403
from example_project.settings import REST_FRAMEWORK

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["DEMO_DB_PATH"],
    }
}

# Fast and insecure: the accounts of a test server live for seconds.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

TOTP_TICKET_MAX_AGE = int(os.environ.get("DEMO_TICKET_MAX_AGE", "300"))

REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {"totp_ip": "1000/min", "totp_login_ip": "1000/min"},
}
