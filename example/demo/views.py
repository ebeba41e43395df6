"""The index page of the example project: what it is and which endpoints drf-totp serves."""

from __future__ import annotations

import re
from collections.abc import Iterator

from django.shortcuts import render
from django.urls import URLPattern, URLResolver, get_resolver

API_PREFIX = "auth/"
HIDDEN_METHODS = {"head", "options", "trace"}


def _route(pattern) -> str:
    text = str(pattern)
    # DRF routers use regex patterns: show them the way a person reads a path.
    text = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"<\1>", text)
    return text.removeprefix("^").removesuffix("$").replace("\\", "")


def _methods(callback) -> list[str]:
    actions = getattr(callback, "actions", None)  # DRF viewsets: {"get": "list", ...}
    if actions:
        return sorted(m.upper() for m in actions if m not in HIDDEN_METHODS)
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    if view_class is None:
        return []
    return [
        m.upper()
        for m in view_class.http_method_names
        if m not in HIDDEN_METHODS and hasattr(view_class, m)
    ]


def _summary(callback) -> str:
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    doc = (view_class or callback).__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _walk(patterns, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in patterns:
        route = prefix + _route(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, route)
        else:
            yield route, entry


def api_endpoints() -> list[dict]:
    endpoints = []
    for route, entry in _walk(get_resolver().url_patterns):
        # Skip the ".json"-style format-suffix twins DRF adds next to each route.
        if not route.startswith(API_PREFIX) or re.search(r"[<:]format>", route):
            continue
        endpoints.append(
            {
                "path": "/" + route,
                "name": entry.name or "",
                "methods": ", ".join(_methods(entry.callback)),
                "summary": _summary(entry.callback),
            }
        )
    return endpoints


def index(request):
    return render(request, "demo/index.html", {"endpoints": api_endpoints()})
