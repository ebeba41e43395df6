"""Translations: every message a user can see comes in German, French and Spanish.

The catalogs (drf_totp/locale/*/LC_MESSAGES/django.po) are complete, their compiled .mo files
are up to date, and they hold every string the code marks for translation (``make messages``
re-extracts and recompiles). An error answers in the language of ``Accept-Language``, with
the same ``code``.
"""

from __future__ import annotations

import ast
import gettext
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings

from tests.code_checks import wrong_code

PACKAGE = Path(__file__).resolve().parent.parent / "drf_totp"
LOCALES = ["de", "es", "fr"]
VALIDATE = "/auth/otp/validate/"


def po_path(locale: str) -> Path:
    return PACKAGE / "locale" / locale / "LC_MESSAGES" / "django.po"


def mo_path(locale: str) -> Path:
    return po_path(locale).with_suffix(".mo")


# --- Reading .po files ------------------------------------------------------------------------


@dataclass
class Entry:
    msgid: str = ""
    msgid_plural: str | None = None
    msgstr: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)


_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}


def _unquote(text: str) -> str:
    assert text.startswith('"') and text.endswith('"'), text
    return re.sub(r"\\(.)", lambda m: _ESCAPES[m.group(1)], text[1:-1])


def parse_po(path: Path) -> list[Entry]:
    """The entries of a .po file, the header (msgid "") first; obsolete (#~) entries left out."""
    entries = []
    for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8").strip()):
        entry, keyword = Entry(), ""
        for line in block.splitlines():
            if line.startswith("#,"):
                entry.flags |= {flag.strip() for flag in line[2:].split(",")}
            elif line.startswith("#"):
                continue
            elif match := re.match(r"^(msgid_plural|msgid|msgstr(?:\[\d+\])?) (\".*\")$", line):
                keyword, text = match.group(1), _unquote(match.group(2))
                if keyword == "msgid":
                    entry.msgid = text
                elif keyword == "msgid_plural":
                    entry.msgid_plural = text
                else:
                    entry.msgstr.append(text)
            else:  # a continuation line of the keyword before
                text = _unquote(line)
                if keyword == "msgid":
                    entry.msgid += text
                elif keyword == "msgid_plural":
                    entry.msgid_plural = (entry.msgid_plural or "") + text
                else:
                    entry.msgstr[-1] += text
        if keyword:  # not a block of obsolete (#~) entries or comments only
            entries.append(entry)
    return entries


def messages(path: Path) -> list[Entry]:
    """The entries of a .po file without its header."""
    return [entry for entry in parse_po(path) if entry.msgid]


def msgids(path: Path) -> set[str]:
    return {entry.msgid for entry in messages(path)}


# --- The catalogs -----------------------------------------------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
def test_the_catalog_and_its_compiled_form_are_shipped(locale):
    assert po_path(locale).is_file()
    assert mo_path(locale).is_file()


@pytest.mark.parametrize("locale", LOCALES)
def test_the_header_names_the_language_charset_and_plural_forms(locale):
    header = parse_po(po_path(locale))[0]
    assert header.msgid == "" and "fuzzy" not in header.flags
    fields = dict(line.split(": ", 1) for line in header.msgstr[0].splitlines() if ": " in line)
    assert fields["Language"] == locale
    assert fields["Content-Type"] == "text/plain; charset=UTF-8"
    assert fields["Plural-Forms"].startswith("nplurals=")


@pytest.mark.parametrize("locale", LOCALES)
def test_every_message_is_translated(locale):
    entries = messages(po_path(locale))
    assert len(entries) > 50
    fuzzy = [entry.msgid for entry in entries if "fuzzy" in entry.flags]
    assert not fuzzy, f"{locale}: fuzzy (unchecked) translations: {fuzzy}"
    untranslated = [entry.msgid for entry in entries if not all(entry.msgstr)]
    assert not untranslated, f"{locale}: untranslated: {untranslated}"
    copied = [
        entry.msgid for entry in entries if entry.msgstr == [entry.msgid] and len(entry.msgid) > 3
    ]
    assert not copied, f"{locale}: left in English: {copied}"


@pytest.mark.parametrize("locale", LOCALES)
def test_every_placeholder_is_kept(locale):
    placeholder = re.compile(r"%\((\w+)\)[a-z]|%[a-z]")
    for entry in messages(po_path(locale)):
        wanted = sorted(placeholder.findall(entry.msgid_plural or entry.msgid))
        for text in entry.msgstr:
            assert sorted(placeholder.findall(text)) == wanted, f"{locale}: {entry.msgid!r}"


def test_every_locale_has_the_same_messages():
    assert msgids(po_path("de")) == msgids(po_path("es")) == msgids(po_path("fr"))


@pytest.mark.parametrize("locale", LOCALES)
def test_the_compiled_catalog_holds_what_the_po_file_says(locale):
    with mo_path(locale).open("rb") as mo:
        compiled = dict(gettext.GNUTranslations(mo)._catalog)  # type: ignore[attr-defined]
    compiled.pop("", None)  # the header
    expected: dict[object, str] = {}
    for entry in messages(po_path(locale)):
        if entry.msgid_plural is None:
            expected[entry.msgid] = entry.msgstr[0]
        else:
            expected.update({(entry.msgid, n): text for n, text in enumerate(entry.msgstr)})
    assert compiled == expected, f"{locale}: django.mo is out of date: run `make messages`"


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="GNU gettext (msgfmt) not installed")
@pytest.mark.parametrize("locale", LOCALES)
def test_the_mo_file_is_what_msgfmt_makes_of_the_po_file(locale, tmp_path):
    out = tmp_path / "django.mo"
    # The command compilemessages runs.
    subprocess.run(
        ["msgfmt", "--check-format", "-o", str(out), str(po_path(locale))],
        check=True,
        capture_output=True,
    )
    assert out.read_bytes() == mo_path(locale).read_bytes(), (
        f"{locale}: django.mo is out of date: run `make messages`"
    )


@pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("xgettext", "msgmerge", "msguniq", "msgattrib")),
    reason="GNU gettext (xgettext, msgmerge) not installed",
)
def test_the_catalogs_hold_exactly_the_strings_of_the_code(tmp_path, monkeypatch):
    """makemessages run on a copy of the package finds the strings the catalogs hold."""
    copy = tmp_path / "drf_totp"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("locale", "__pycache__"))
    (copy / "locale").mkdir()
    monkeypatch.chdir(copy)
    with override_settings(LOCALE_PATHS=[]):
        call_command("makemessages", locale=["de"], verbosity=0)
    extracted = msgids(copy / "locale" / "de" / "LC_MESSAGES" / "django.po")
    assert len(extracted) > 50
    for locale in LOCALES:
        catalog = msgids(po_path(locale))
        assert not extracted - catalog, f"{locale}: not in the catalog, run `make messages`"
        assert not catalog - extracted, f"{locale}: no longer in the code, run `make messages`"


_GETTEXT_FUNCTIONS = {
    "_",
    "gettext",
    "gettext_lazy",
    "ngettext",
    "ngettext_lazy",
    "pgettext",
    "pgettext_lazy",
    "npgettext",
    "npgettext_lazy",
}


def marked_strings() -> dict[str, str]:
    """Every literal string the package passes to a gettext function: ``{msgid: "file:line"}``.

    Read from the syntax tree, so calls inside f-strings count too.
    """
    found: dict[str, str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name not in _GETTEXT_FUNCTIONS:
                continue
            # pgettext(context, message): the message is the second argument.
            arg = node.args[1 if name.startswith(("pgettext", "npgettext")) else 0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.setdefault(arg.value, f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    return found


def test_every_string_marked_in_the_code_is_in_the_catalogs():
    marked = marked_strings()
    assert len(marked) > 50
    for locale in LOCALES:
        missing = {
            msgid: where for msgid, where in marked.items() if msgid not in msgids(po_path(locale))
        }
        assert not missing, f"{locale}: not in the catalog: {missing}"


# --- Accept-Language ------------------------------------------------------------------------


@pytest.fixture
def locale_middleware(settings):
    """Django's LocaleMiddleware, after the session (it may read the session's language)."""
    middleware = list(settings.MIDDLEWARE)
    middleware.insert(
        middleware.index("django.contrib.sessions.middleware.SessionMiddleware") + 1,
        "django.middleware.locale.LocaleMiddleware",
    )
    settings.MIDDLEWARE = middleware


INVALID_TOKEN = {
    "de": "Dieser Code ist nicht gültig.",
    "es": "Este código no es válido.",
    "fr": "Ce code n'est pas valide.",
}
INVALID_FORMAT = {
    "de": "Geben Sie den 6-stelligen Code aus Ihrer Authenticator-App oder einen "
    "Wiederherstellungscode ein.",
    "es": "Introduzca el código de 6 dígitos de su aplicación de autenticación, o un código de "
    "recuperación.",
    "fr": "Saisissez le code à 6 chiffres de votre application d'authentification, ou un code de "
    "récupération.",
}
NOT_ENABLED = {
    "de": "Die Zwei-Faktor-Authentifizierung ist nicht aktiviert.",
    "es": "La autenticación de dos factores no está activada.",
    "fr": "L'authentification à deux facteurs n'est pas activée.",
}


@pytest.mark.parametrize("locale", LOCALES)
def test_a_wrong_code_is_refused_in_the_language_asked_for(
    locale, locale_middleware, auth_client, user, make_device, no_throttles
):
    device = make_device(user)
    response = auth_client.post(
        VALIDATE, {"token": wrong_code(device)}, format="json", HTTP_ACCEPT_LANGUAGE=locale
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_token"
    assert body["detail"] == INVALID_TOKEN[locale]
    assert body["errors"] == {
        "token": [{"message": INVALID_TOKEN[locale], "code": "invalid_token"}]
    }
    assert response["Content-Language"] == locale


@pytest.mark.parametrize("locale", LOCALES)
def test_a_message_with_a_placeholder_is_translated(
    locale, locale_middleware, auth_client, user, make_device, no_throttles
):
    make_device(user)
    response = auth_client.post(
        VALIDATE, {"token": "12-34"}, format="json", HTTP_ACCEPT_LANGUAGE=f"{locale},en;q=0.5"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_format"
    assert response.json()["detail"] == INVALID_FORMAT[locale]


@pytest.mark.parametrize("locale", LOCALES)
def test_a_state_error_is_translated(locale, locale_middleware, auth_client, no_throttles):
    response = auth_client.post(
        VALIDATE, {"token": "123456"}, format="json", HTTP_ACCEPT_LANGUAGE=locale
    )
    assert response.status_code == 409
    assert response.json() == {"detail": NOT_ENABLED[locale], "code": "not_enabled"}


@pytest.mark.parametrize("accept_language", [None, "en", "ja"], ids=["none", "en", "no-catalog"])
def test_english_without_a_catalog_for_the_language(
    accept_language, locale_middleware, auth_client, user, make_device, no_throttles
):
    device = make_device(user)
    headers = {"HTTP_ACCEPT_LANGUAGE": accept_language} if accept_language else {}
    response = auth_client.post(VALIDATE, {"token": wrong_code(device)}, format="json", **headers)
    assert response.json()["detail"] == "This code is not valid."
    assert response.json()["code"] == "invalid_token"
