"""The demo page (example/, as `make demo` serves it) driven in headless Chromium, the way a
newcomer clicks through it: sign up, log in, turn 2FA on, recovery codes, the two-step login,
wrong and reused codes, a lock, an expired login, throttling, turning 2FA off; on a phone-sized
screen and with the keyboard alone.

Codes are computed with pyotp from the key the page shows, as an authenticator app would.
Each step leaves a screenshot in build/screenshots/.
"""

from __future__ import annotations

import re
import time
from itertools import count
from pathlib import Path

import pyotp
import pytest

try:
    from playwright.sync_api import Page, expect
except ImportError:  # the `playwright` fixture skips, or fails with DRF_TOTP_E2E=1, and says why
    Page = expect = None  # type: ignore[assignment,misc]

pytestmark = pytest.mark.e2e

PASSWORD = "a walk in the demo park"
PERIOD = 30
CODE_FIELDS = ["#code-token", "#enroll-token", "#regenerate-token", "#disable-token"]
PHONE = {"width": 390, "height": 844}

_usernames = count(1)


def new_username(what: str) -> str:
    """A name no other test of this run uses (each test gets a user of its own)."""
    return f"{what}-{next(_usernames)}-{int(time.time())}"


class Authenticator:
    """The phone: codes from the key the page shows, each of a step the server has not seen."""

    def __init__(self, key: str):
        self.totp = pyotp.TOTP(key)
        self.last_step: int | None = None

    def code(self) -> str:
        """A code the server accepts now: of the current step, or of the next one when the
        current one is used up (the window allows one step ahead); waits if both are used."""
        while True:
            now_step = int(time.time()) // PERIOD
            step = now_step if self.last_step is None else max(now_step, self.last_step + 1)
            if step <= now_step + 1:
                break
            time.sleep((now_step + 1) * PERIOD - time.time() + 0.2)
        self.last_step = step
        return self.totp.generate_otp(step)

    def used_code(self) -> str:
        """The code last handed out, to send a second time."""
        assert self.last_step is not None
        return self.totp.generate_otp(self.last_step)

    def wrong_code(self) -> str:
        """A well-formed code that no step near now has."""
        now_step = int(time.time()) // PERIOD
        taken = {self.totp.generate_otp(s) for s in range(now_step - 3, now_step + 4)}
        return next(c for c in (f"{n:06d}" for n in range(1_000_000)) if c not in taken)


class Demo:
    """The demo page, used the way a person does: by labels and button names."""

    def __init__(self, page: Page, url: str, shots):
        self.page = page
        self.url = url
        self.shot = shots

    # -- navigation

    def open(self) -> None:
        self.page.goto(self.url + "/")
        expect(self.page.locator("#loading")).to_be_hidden()

    def form(self, form_id: str):
        return self.page.locator(f"#{form_id}")

    def error(self, name: str):
        return self.page.locator(f"#{name}-error")

    def notice(self):
        return self.page.locator("#notice")

    def status(self, what: str):
        return self.page.locator(f"#status-{what}")

    # -- the steps

    def sign_up(self, username: str, password: str = PASSWORD, email: str = "") -> None:
        form = self.form("signup-form")
        form.get_by_label("Username").fill(username)
        form.get_by_label("Email").fill(email)
        form.get_by_label("Password").fill(password)
        form.get_by_role("button", name="Create account").click()

    def log_in(self, username: str, password: str = PASSWORD) -> None:
        form = self.form("login-form")
        form.get_by_label("Username").fill(username)
        form.get_by_label("Password").fill(password)
        form.get_by_role("button", name="Log in").click()

    def expect_logged_in(self, username: str) -> None:
        expect(self.page.locator("#whoami")).to_contain_text(f"Logged in as {username}")
        expect(self.status("enabled")).not_to_have_text("…")

    def expect_code_step(self) -> None:
        expect(self.page.get_by_role("heading", name="Enter your code")).to_be_visible()
        expect(self.page.locator("#code-token")).to_be_focused()

    def enter_login_code(self, code: str) -> None:
        expect(self.page.locator("#view-code")).to_be_visible()
        self.form("code-form").get_by_label("Code from your app").fill(code)
        self.form("code-form").get_by_role("button", name="Log in").click()

    def enter_recovery_code(self, code: str) -> None:
        expect(self.page.locator("#view-code")).to_be_visible()
        details = self.page.locator("#recovery-login")
        if details.get_attribute("open") is None:
            details.get_by_text("Use a recovery code").click()
        form = self.form("recovery-form")
        form.get_by_label("Recovery code").fill(code)
        form.get_by_role("button", name="Log in with the recovery code").click()

    def show_qr_code(self) -> Authenticator:
        self.page.get_by_role("button", name=re.compile("Show my QR code")).click()
        expect(self.page.get_by_role("heading", name="Scan this QR code")).to_be_visible()
        key = self.page.locator("#enroll-secret").inner_text()
        return Authenticator(re.sub(r"\s+", "", key))

    def confirm(self, code: str) -> None:
        self.form("enroll-form").get_by_label("Code from your app").fill(code)
        self.form("enroll-form").get_by_role("button", name="Turn on").click()

    def recovery_codes(self) -> list[str]:
        expect(self.page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
        return self.page.locator("#codes-list li").all_inner_texts()

    def saved_them(self) -> None:
        self.page.get_by_role("button", name="I have saved them").click()
        expect(self.page.locator("#codes")).to_be_hidden()

    def log_out(self) -> None:
        self.page.get_by_role("button", name="Log out").click()
        expect(self.notice()).to_have_text("You are logged out.")
        expect(self.page.get_by_role("heading", name="Log in")).to_be_visible()

    # -- shortcuts for tests about a later step

    def new_user_with_2fa(self, what: str) -> tuple[str, Authenticator, list[str]]:
        """Sign up, log in, turn 2FA on: the user, their authenticator, their recovery codes."""
        username = new_username(what)
        self.sign_up(username)
        expect(self.notice()).to_contain_text("Account created")
        self.log_in(username)
        self.expect_logged_in(username)
        phone = self.show_qr_code()
        self.confirm(phone.code())
        codes = self.recovery_codes()
        self.saved_them()
        expect(self.status("enabled")).to_have_text("On")
        return username, phone, codes


def no_horizontal_scroll(page: Page, width: int) -> None:
    """Nothing wider than the screen (a phone would zoom out, or scroll sideways)."""
    scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert inner == width, f"window.innerWidth is {inner}, not {width}: the page zoomed out"
    assert scroll <= inner, f"the page scrolls sideways: scrollWidth {scroll} > {inner}"


def seconds_left(text: str) -> int:
    """The wait a throttle message states: "1 minute", "1 minute 5 seconds" or "42 seconds"."""
    match = re.search(r"Try again in (?:(\d+) minutes?)? ?(?:(\d+) seconds?)?\.", text)
    assert match and any(match.groups()), text
    return int(match.group(1) or 0) * 60 + int(match.group(2) or 0)


@pytest.fixture
def demo(page, demo_server, screenshots, request) -> Demo:
    marker = request.node.get_closest_marker("shots")
    prefix = marker.args[0] if marker else request.node.name
    return Demo(page, demo_server.url, screenshots(page, prefix))


def test_code_fields_have_labels_a_numeric_keypad_and_one_time_code_autofill(demo):
    demo.open()
    for selector in CODE_FIELDS:
        field = demo.page.locator(selector)
        assert field.get_attribute("inputmode") == "numeric", selector
        assert field.get_attribute("autocomplete") == "one-time-code", selector
    assert demo.page.locator("#recovery-token").get_attribute("autocomplete") == "one-time-code"
    unlabelled = demo.page.evaluate(
        """[...document.querySelectorAll("input, button, select, textarea")]
            .filter((el) => el.tagName === "BUTTON"
                ? !el.textContent.trim()
                : el.labels.length === 0 && !el.getAttribute("aria-label"))
            .map((el) => el.id || el.outerHTML)"""
    )
    assert unlabelled == []


@pytest.mark.shots("1-walkthrough")
def test_sign_up_turn_2fa_on_and_log_in_with_a_code(demo, tmp_path: Path):
    page = demo.page
    username = new_username("newcomer")

    demo.open()
    expect(page.get_by_text("demo-password-2fa")).to_be_visible()
    demo.shot("start")

    # Sign up: Django's password validators speak first.
    demo.sign_up(username, password="12345678")
    expect(demo.error("signup")).to_contain_text("too common")
    expect(demo.error("signup")).to_contain_text("entirely numeric")
    expect(page.locator("#signup-password")).to_have_attribute("aria-invalid", "true")
    demo.shot("sign-up-weak-password")
    demo.sign_up(username, email="newcomer@example.com")
    expect(demo.notice()).to_have_text(
        f"Account created for {username}. Log in with your password."
    )
    expect(page.locator("#login-username")).to_have_value(username)
    expect(page.locator("#login-password")).to_be_focused()
    demo.shot("signed-up")

    # A wrong password, then the right one: no 2FA yet, so the password is enough.
    demo.log_in(username, password="not the password")
    expect(demo.error("login")).to_have_text("The username or password is not correct.")
    demo.log_in(username)
    demo.expect_logged_in(username)
    expect(demo.status("enabled")).to_have_text("Off")
    expect(demo.status("last-used")).to_have_text("Never")
    expect(demo.status("locked")).to_have_text("No")
    demo.shot("logged-in-without-2fa")

    # Turn 2FA on: the QR code from qr_svg, the key for manual entry, a field for the first code.
    phone = demo.show_qr_code()
    qr = page.locator("#enroll-qr")
    assert qr.get_attribute("src").startswith("data:image/svg+xml")
    assert page.evaluate("document.getElementById('enroll-qr').naturalWidth") > 0
    expect(page.locator("#enroll-account")).to_have_text("newcomer@example.com")
    expect(page.locator("#enroll-issuer")).to_have_text("drf-totp demo")
    expect(page.locator("#enroll-type")).to_have_text(
        "Time-based, 6 digits, a new code every 30 seconds"
    )
    assert_qr_code_scans_to(qr.screenshot(path=str(tmp_path / "qr.png")), phone.totp.secret)
    page.get_by_role("button", name="Copy the key").click()
    expect(page.locator("#enroll-copy-feedback")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == phone.totp.secret
    demo.shot("qr-code-and-key")

    demo.confirm(phone.wrong_code())
    expect(demo.error("enroll")).to_contain_text("That code is not right.")
    expect(page.locator("#enroll-token")).to_be_focused()
    demo.shot("wrong-first-code")
    demo.confirm(phone.code())

    # The recovery codes, shown once: copy them, download them.
    codes = demo.recovery_codes()
    assert len(codes) == 10
    assert all(re.fullmatch(r"[A-Z0-9]{5}(-[A-Z0-9]{5}){3}", code) for code in codes), codes
    expect(demo.notice()).to_contain_text("Two-factor authentication is on.")
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#codes-feedback")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()").split("\n")[3:13] == codes
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download as a file").click()
    download = download_info.value
    assert download.suggested_filename == "drf-totp-demo-recovery-codes.txt"
    downloaded = Path(download.path()).read_text()
    assert all(code in downloaded for code in codes)
    demo.shot("recovery-codes")
    demo.saved_them()
    assert page.locator("#codes-list li").count() == 0

    # The status at a glance.
    expect(demo.status("enabled")).to_have_text("On")
    expect(demo.status("last-used")).not_to_have_text("Never")
    expect(demo.status("remaining")).to_have_text("10")
    expect(page.locator("#enroll")).to_be_hidden()
    demo.shot("status-2fa-on")

    # Log out and in again: now the password is not enough.
    demo.log_out()
    demo.shot("logged-out")
    demo.log_in(username)
    demo.expect_code_step()
    expect(page.locator("#code-username")).to_have_text(username)
    demo.shot("asks-for-the-code")

    demo.enter_login_code(phone.used_code())
    expect(demo.error("code")).to_contain_text("That code was already used.")
    demo.shot("reused-code")
    demo.enter_login_code(phone.wrong_code())
    expect(demo.error("code")).to_contain_text("That code is not right.")
    demo.enter_login_code(phone.code())
    demo.expect_logged_in(username)
    expect(demo.notice()).to_have_text("Logged in with your password and a code.")
    expect(demo.status("enabled")).to_have_text("On")
    demo.shot("logged-in-with-a-code")

    # Every request the page sent went to the public JSON API (or the demo's three endpoints).
    log = page.locator("#log li").all_text_contents()
    assert log and all(
        re.match(r"(GET|POST) /(auth/otp|demo)/[a-z/-]+ → \d{3}", line) for line in log
    ), log


def assert_qr_code_scans_to(png: bytes, secret: str) -> None:
    """The QR code, as Chromium drew it, reads back as the otpauth URL of the key shown."""
    import io

    import zxingcpp
    from PIL import Image

    png_image = Image.open(io.BytesIO(png))
    found = zxingcpp.read_barcodes(png_image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert len(found) == 1, found
    totp = pyotp.parse_uri(found[0].text)
    assert totp.secret == secret
    assert totp.issuer == "drf-totp demo"


@pytest.mark.shots("2-recovery")
def test_log_in_with_a_recovery_code_and_get_new_ones(demo):
    page = demo.page
    demo.open()
    username, phone, codes = demo.new_user_with_2fa("recovery")
    demo.log_out()

    demo.log_in(username)
    demo.expect_code_step()
    demo.enter_recovery_code(codes[0].lower())  # typed by hand, in lower case
    demo.expect_logged_in(username)
    expect(demo.notice()).to_have_text(
        "Logged in with a recovery code. That code is used up: you have 9 left."
    )
    expect(demo.status("remaining")).to_have_text("9")
    expect(page.locator("#manage-remaining")).to_have_text("9 recovery codes")
    demo.shot("logged-in-with-a-recovery-code")

    # A new set, given a code from the app: the old set stops working.
    form = demo.form("regenerate-form")
    form.get_by_label("Code from your app").fill(phone.code())
    form.get_by_role("button", name="Get new recovery codes").click()
    new_codes = demo.recovery_codes()
    assert len(new_codes) == 10 and not set(new_codes) & set(codes)
    expect(demo.notice()).to_have_text("New recovery codes: the old ones no longer work.")
    demo.shot("new-recovery-codes")
    demo.saved_them()
    expect(demo.status("remaining")).to_have_text("10")

    demo.log_out()
    demo.log_in(username)
    demo.enter_recovery_code(codes[1])
    expect(demo.error("recovery")).to_contain_text("That recovery code is not right")
    demo.shot("old-recovery-code")
    demo.enter_recovery_code(new_codes[0])
    demo.expect_logged_in(username)
    # The page writes its notice once the status is back: wait for it before logging out, or
    # that late notice would replace "You are logged out." (seen under CI load).
    expect(demo.notice()).to_contain_text("Logged in with a recovery code.")
    demo.log_out()

    demo.log_in(username)
    demo.enter_recovery_code(new_codes[0])
    expect(demo.error("recovery")).to_contain_text("That recovery code was already used.")
    demo.shot("used-recovery-code")


@pytest.mark.shots("3-disable")
def test_turn_2fa_off_with_a_code(demo):
    page = demo.page
    demo.open()
    username, phone, _codes = demo.new_user_with_2fa("disable")

    form = demo.form("disable-form")
    form.get_by_label("Code from your app").fill(phone.wrong_code())
    form.get_by_role("button", name="Turn off").click()
    expect(demo.error("disable")).to_contain_text("That code is not right.")
    demo.shot("wrong-code")
    form.get_by_label("Code from your app").fill(phone.code())
    form.get_by_role("button", name="Turn off").click()
    expect(demo.notice()).to_have_text(
        "Two-factor authentication is off. Logging in asks for the password only."
    )
    expect(demo.status("enabled")).to_have_text("Off")
    expect(demo.status("remaining")).to_have_text("None (2FA is off)")
    expect(page.get_by_role("button", name="Show my QR code")).to_be_visible()
    expect(page.locator("#manage-disable")).to_be_hidden()
    demo.shot("2fa-off")

    demo.log_out()
    demo.log_in(username)
    demo.expect_logged_in(username)  # no code asked


@pytest.mark.shots("4-lock")
def test_wrong_codes_lock_the_login_with_a_countdown(demo, demo_server):
    page = demo.page
    demo.open()
    username, phone, _codes = demo.new_user_with_2fa("lock")
    demo.log_out()
    demo.log_in(username)
    demo.expect_code_step()

    # Four wrong codes are free; the fifth locks for 30 seconds.
    for _ in range(5):
        demo.enter_login_code(phone.wrong_code())
        expect(demo.error("code")).to_contain_text("That code is not right.")
        expect(page.locator("#code-form button[type=submit]")).to_be_enabled()
    demo.shot("fifth-wrong-code")

    # While locked, even the right code is refused, unread: the page counts down Retry-After.
    code = phone.code()
    demo.enter_login_code(code)
    error = demo.error("code")
    expect(error).to_contain_text("Too many wrong codes")
    expect(error.get_by_role("timer")).to_have_text(re.compile(r"\d+ seconds"))
    first = seconds_left(error.inner_text())
    assert 10 <= first <= 30, first
    demo.shot("locked-countdown")
    expect(error.get_by_role("timer")).not_to_have_text(f"{first} seconds", timeout=3000)
    assert seconds_left(error.inner_text()) < first

    # An administrator unlocks the account; the same login (ticket) goes on with that code.
    demo_server.unlock(username)
    demo.enter_login_code(code)
    demo.expect_logged_in(username)
    expect(demo.status("locked")).to_have_text("No")

    # Logged in, wrong codes lock too, and the status shows until when.
    form = demo.form("disable-form")
    for _ in range(5):
        form.get_by_label("Code from your app").fill(phone.wrong_code())
        form.get_by_role("button", name="Turn off").click()
        expect(demo.error("disable")).to_contain_text("That code is not right.")
    form.get_by_label("Code from your app").fill(phone.wrong_code())
    form.get_by_role("button", name="Turn off").click()
    expect(demo.error("disable").get_by_role("timer")).to_be_visible()
    page.get_by_role("button", name="Refresh").click()
    expect(demo.status("locked")).to_have_text(re.compile(r"^Until .*\d{1,2}:\d{2}:\d{2}"))
    demo.shot("status-locked-until")


def test_an_expired_login_asks_to_log_in_again(page, short_ticket_server, screenshots):
    demo = Demo(page, short_ticket_server.url, screenshots(page, "5-expired"))
    demo.open()
    username, phone, _codes = demo.new_user_with_2fa("expired")
    demo.log_out()
    demo.log_in(username)
    demo.expect_code_step()
    time.sleep(2.5)  # the ticket of this server lives 1 second

    demo.enter_login_code(phone.code())
    expect(demo.error("login")).to_have_text("Your login expired, please log in again.")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(page.locator("#login-username")).to_have_value(username)
    expect(page.locator("#login-password")).to_be_focused()
    demo.shot("login-expired")


@pytest.mark.shots("6-throttled")
def test_too_many_logins_are_throttled_in_plain_words(demo):
    demo.open()
    username = new_username("throttled")  # no such user: the limit is per submitted name
    for _ in range(10):  # totp_login_user: 10/min
        demo.log_in(username, password="wrong")
        expect(demo.error("login")).to_have_text("The username or password is not correct.")
    demo.log_in(username, password="wrong")
    error = demo.error("login")
    expect(error).to_contain_text("Too many attempts in a short time. Try again in")
    assert 1 <= seconds_left(error.inner_text()) <= 60
    demo.shot("throttled")


@pytest.mark.shots("7-keyboard")
def test_log_in_with_the_keyboard_alone(demo):
    page = demo.page
    demo.open()
    username, phone, _codes = demo.new_user_with_2fa("keyboard")
    demo.log_out()
    demo.open()  # a fresh page load: nothing focused yet

    def focused() -> str:
        return page.evaluate("document.activeElement.id")

    page.keyboard.press("Tab")
    assert focused() == "login-username"
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    assert focused() == "login-password"
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Log in"
    demo.shot("focus-on-log-in")
    page.keyboard.press("Enter")

    demo.expect_code_step()  # the focus moved to the code field
    page.keyboard.type(phone.code())
    page.keyboard.press("Enter")
    demo.expect_logged_in(username)
    expect(page.locator("#status-title")).to_be_focused()
    demo.shot("logged-in")

    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.textContent") == "Log out"
    page.keyboard.press("Enter")
    expect(demo.notice()).to_have_text("You are logged out.")
    assert focused() == "login-username"


def test_the_page_fits_a_phone_screen(open_browser, demo_server, screenshots):
    page = open_browser(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    demo = Demo(page, demo_server.url, screenshots(page, "8-phone"))
    demo.open()
    no_horizontal_scroll(page, PHONE["width"])
    demo.shot("start")

    username = new_username("phone")
    demo.sign_up(username)
    expect(demo.notice()).to_contain_text("Account created")
    demo.log_in(username)
    demo.expect_logged_in(username)
    phone = demo.show_qr_code()
    no_horizontal_scroll(page, PHONE["width"])
    demo.shot("qr-code")
    demo.confirm(phone.code())
    demo.recovery_codes()
    no_horizontal_scroll(page, PHONE["width"])
    demo.shot("recovery-codes")
    demo.saved_them()
    for summary in page.locator("footer summary").all():
        summary.click()
    no_horizontal_scroll(page, PHONE["width"])
    demo.shot("status-and-api")

    demo.log_out()
    demo.log_in(username)
    demo.expect_code_step()
    page.locator("#recovery-login summary").click()
    no_horizontal_scroll(page, PHONE["width"])
    demo.shot("code-step")


@pytest.mark.shots("9-demo-user")
def test_the_demo_user_make_demo_prints_can_log_in(demo):
    demo.open()
    demo.page.get_by_role("button", name="Fill it in").click()
    expect(demo.page.locator("#login-username")).to_have_value("demo")
    demo.form("login-form").get_by_role("button", name="Log in").click()
    demo.expect_logged_in("demo")
    expect(demo.status("enabled")).to_have_text("Off")
    demo.shot("logged-in")
