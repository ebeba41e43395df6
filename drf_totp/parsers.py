from __future__ import annotations

import io
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.utils.translation import gettext as _
from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with pathologically nested JSON answered by 400 rather than 500, and a
    body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` refused as Django refuses it.

    DRF from 3.17.2 reads the body through ``HttpRequest.body``, which enforces the limit; older
    versions hand the parser the stream, where Django's limit does not apply. Either way the
    exception handler answers ``RequestDataTooBig`` with a 413.
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None:
            body = stream.read(limit + 1)  # whatever Content-Length says
            if len(body) > limit:
                raise RequestDataTooBig("Request body exceeded DATA_UPLOAD_MAX_MEMORY_SIZE.")
            stream = io.BytesIO(body)
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(_("JSON parse error - too deeply nested.")) from None
