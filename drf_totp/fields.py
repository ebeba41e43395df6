from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.query_utils import DeferredAttribute

from . import crypto, exceptions


@dataclass(frozen=True)
class Unreadable:
    """What an encrypted column reads as when no configured key decrypts it (``cause`` says why).

    Not a string, so it is never taken for the plaintext. ``values()`` returns it as it is;
    the attribute of a model instance raises ``SecretUnavailable`` instead, naming the row.
    """

    cause: str


class _DecryptedAttribute(DeferredAttribute):
    # A data descriptor (it has __set__), so that reading goes through __get__ even once the
    # value is in the instance's __dict__.
    def __get__(self, instance: Any, cls: Any = None) -> Any:
        value = super().__get__(instance, cls)
        if isinstance(value, Unreadable):
            raise exceptions.SecretUnavailable(value.cause, device=instance)
        return value

    def __set__(self, instance: Any, value: Any) -> None:
        instance.__dict__[self.field.attname] = value


class EncryptedTextField(models.TextField):
    """A text column that holds only the Fernet token of its value; Python sees the plaintext.

    Serialization (``dumpdata``) writes the Fernet token too, and ``loaddata`` takes it back.
    A value that cannot be decrypted fails where it is used, with the row's model instance at
    hand (``Unreadable``), rather than where a query reads it.
    """

    descriptor_class = _DecryptedAttribute

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and value.startswith(crypto.TOKEN_PREFIX):
            try:
                return crypto.decrypt(value)
            except crypto.KeyProblem as exc:
                raise ValidationError(str(exc)) from None
        return super().to_python(value)

    def value_to_string(self, obj: models.Model) -> str:
        value = self.value_from_object(obj)
        return "" if value is None else crypto.encrypt(str(value))

    def from_db_value(
        self, value: str | None, expression: Any, connection: Any
    ) -> str | Unreadable | None:
        if value is None:
            return None
        try:
            return crypto.decrypt(value)
        except crypto.KeyProblem as exc:
            return Unreadable(str(exc))

    def get_prep_value(self, value: Any) -> str | None:
        value = super().get_prep_value(value)
        if value is None:
            return None
        try:
            return crypto.encrypt(value)
        except crypto.KeyProblem as exc:
            raise exceptions.SecretUnavailable(str(exc)) from None
