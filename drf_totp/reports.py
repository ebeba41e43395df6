"""Error reports never show a password, a code, a ticket, a recovery code or a TOTP secret.

Django's reports of an error (the technical 500 page, the mail of ``AdminEmailHandler``) show the
local variables of every frame of the traceback and the request's POST data. With ``DEBUG =
False`` its exception reporter filter hides what is marked; two marks are used:

- ``sensitive_variables()`` on every function that holds such a value (``login``, ``devices``,
  ``verification``, ``tickets``, ``recovery``): its variables are hidden, and those of the
  functions it calls (pyotp, Django's signing and hashers), whatever their names;
- ``secret_request`` on the views that receive or return one: their request's POST data and
  every frame's variables are hidden. A JSON body is not POST data: it is seen only through
  variables (``request.data``, a serializer, the parser). Hiding all of them also covers frames
  that a ``sensitive_variables`` mark cannot reach: Django's ``authenticate()`` marks only its
  ``credentials``, and that narrower mark is the one that applies to the authentication backends
  it calls, whose ``password`` variable would show.

With ``DEBUG = True`` Django shows everything, as it always does.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from types import FrameType
from typing import Any, TypeVar, cast

from django.http import HttpRequest, HttpResponseBase
from django.views.debug import get_exception_reporter_filter
from django.views.decorators.debug import sensitive_post_parameters


class HidingFilter:
    """The project's exception reporter filter, with the variables of every frame hidden."""

    def __init__(self, configured: Any) -> None:
        self.configured = configured

    def __getattr__(self, name: str) -> Any:
        return getattr(self.configured, name)

    def get_traceback_frame_variables(self, request: Any, tb_frame: FrameType) -> Any:
        if not self.configured.is_active(request):
            return self.configured.get_traceback_frame_variables(request, tb_frame)
        return [(name, self.configured.cleansed_substitute) for name in tb_frame.f_locals]


View = TypeVar("View", bound=Callable[..., HttpResponseBase])


def secret_request(view: View) -> View:
    """Mark the requests of ``view`` as carrying secrets: error reports hide their POST data
    (``sensitive_post_parameters``) and the variables of every frame (``HidingFilter``)."""

    @wraps(view)
    def marked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        # Django's per-request hook (``request.exception_reporter_filter``): no setting to change.
        # The filter is duck-typed: a wrapper, not a subclass, so the project's filter keeps working.
        cast(Any, request).exception_reporter_filter = HidingFilter(
            get_exception_reporter_filter(request)
        )
        return view(request, *args, **kwargs)

    return cast(View, sensitive_post_parameters()(marked))
