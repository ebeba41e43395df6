from __future__ import annotations

from typing import Any

from django.db import models

from . import crypto


class EncryptedTextField(models.TextField):
    """A text column that holds only the Fernet token of its value; Python sees the plaintext.

    Serialization (``dumpdata``) writes the Fernet token too, and ``loaddata`` takes it back.
    """

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and value.startswith(crypto.TOKEN_PREFIX):
            return crypto.decrypt(value)
        return super().to_python(value)

    def value_to_string(self, obj: models.Model) -> str:
        value = self.value_from_object(obj)
        return "" if value is None else crypto.encrypt(str(value))

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        return None if value is None else crypto.decrypt(value)

    def get_prep_value(self, value: Any) -> str | None:
        value = super().get_prep_value(value)
        return None if value is None else crypto.encrypt(value)
