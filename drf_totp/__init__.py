"""TOTP (RFC 6238) two-factor authentication for Django REST Framework."""

__version__ = "1.0.0.dev0"
