"""Settings of the drf-totp example project: for local trying out only, never production."""

from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "drf-totp-demo-only-insecure-key-do-not-use-anywhere-else-0123456789"
DEBUG = True
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]

INSTALLED_APPS = [
    # django.contrib.admin, whose login asks users with 2FA for their code (drf_totp.admin_site).
    "drf_totp.apps.OTPAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    # The OpenAPI schema (/api/schema/) and Swagger UI (/api/docs/); the sidecar app ships Swagger
    # UI's files as static files, so that the page loads nothing from a CDN. (No Redoc page: its
    # template loads Google Fonts.)
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "drf_totp",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "db.sqlite3",
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        # drf-totp's login tokens (TOTP_LOGIN_CREDENTIAL = "authtoken"), before DRF's own.
        "drf_totp.authentication.TokenAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    # runserver has no proxy in front: the client IP is REMOTE_ADDR. Behind a load balancer,
    # set the number of proxies (drf-totp's system check drf_totp.W005 asks for this setting).
    "NUM_PROXIES": 0,
    # drf-spectacular's AutoSchema describes drf-totp's endpoints (drf_totp/schema.py).
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "drf-totp demo",
    "DESCRIPTION": "TOTP (RFC 6238) two-factor authentication for Django REST Framework.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

TOTP_ISSUER_NAME = "drf-totp demo"

# drf-totp e-mails users when their 2FA changes (TOTP_NOTIFY). The demo has no mail server: the
# e-mails are printed on the terminal that runs `make demo`.
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
