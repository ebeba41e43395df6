// drf-totp demo: the whole two-factor life cycle in one page, through the public JSON API only.
//
//   sign up (/demo/signup/) -> log in with the password (/auth/otp/login/)
//   -> turn 2FA on (/auth/otp/generate/, /auth/otp/verify/) -> recovery codes, shown once
//   -> log out (/demo/logout/) and in again: password, then a code (/auth/otp/login/verify/)
//   -> new recovery codes (/auth/otp/recovery-codes/) -> turn 2FA off (/auth/otp/disable/)
//
// Plain JavaScript, no build step. The session cookie is the credential; every POST carries the
// CSRF token from the csrftoken cookie in X-CSRFToken, as Django's SessionAuthentication wants.

"use strict";

(function () {
  const API = {
    signup: "/demo/signup/",
    logout: "/demo/logout/",
    me: "/demo/me/",
    login: "/auth/otp/login/",
    loginVerify: "/auth/otp/login/verify/",
    status: "/auth/otp/status/",
    generate: "/auth/otp/generate/",
    verify: "/auth/otp/verify/",
    recoveryCodes: "/auth/otp/recovery-codes/",
    disable: "/auth/otp/disable/",
  };

  const DEMO_USER = { username: "demo", password: "demo-password-2fa" };
  const LOG_LENGTH = 40;

  // What the page remembers between steps. Nothing is stored beyond the tab's memory.
  const state = {
    username: "",
    ticket: null, // the login ticket between the password and the code
    recoveryCodes: [], // the set on screen, until the user says it is saved
  };

  function $(id) {
    return document.getElementById(id);
  }

  // ---- Talking to the API --------------------------------------------------------------------

  function cookie(name) {
    for (const part of document.cookie.split(";")) {
      const [key, ...rest] = part.trim().split("=");
      if (key === name) {
        return decodeURIComponent(rest.join("="));
      }
    }
    return "";
  }

  // One request to the API. Never throws: the answer is {ok, status, data, retryAfter}, where
  // data is the JSON body (for errors: {detail, code, errors?, retry_after?, locked_until?}).
  async function call(method, url, body) {
    const options = {
      method: method,
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json" },
    };
    if (method !== "GET") {
      options.headers["Content-Type"] = "application/json";
      options.headers["X-CSRFToken"] = cookie("csrftoken");
      options.body = JSON.stringify(body || {});
    }

    let response;
    try {
      response = await fetch(url, options);
    } catch (error) {
      logRequest(method, url, "no answer", "network");
      return { ok: false, status: 0, data: { code: "network" }, retryAfter: 0 };
    }

    let data = {};
    try {
      data = await response.json();
    } catch (error) {
      data = {}; // not JSON: an HTML error page from a proxy or a crashed server
    }
    const header = parseInt(response.headers.get("Retry-After") || "", 10);
    const retryAfter = header > 0 ? header : data.retry_after || 0;
    logRequest(method, url, response.status, response.ok ? "" : data.code);
    return { ok: response.ok, status: response.status, data: data, retryAfter: retryAfter };
  }

  // ---- Errors in plain words -----------------------------------------------------------------

  const PLAIN_WORDS = {
    invalid_token:
      "That code is not right. Use the code your app shows for “drf-totp demo” now, " +
      "and check that your phone's clock is correct.",
    token_reused:
      "That code was already used. Wait for your app to show the next one " +
      "(a new code comes every 30 seconds).",
    invalid_credentials: "The username or password is not correct.",
    ticket_expired: "Your login expired, please log in again.",
    invalid_ticket:
      "This login is no longer valid: it was already used, or the account changed. " +
      "Please log in again.",
    locked_out:
      "Too many wrong codes in a row: codes from your app are blocked. Log in with a " +
      "recovery code, or ask an administrator to unlock your account.",
    not_enabled: "Two-factor authentication is off for this account.",
    already_enabled: "Two-factor authentication is already on for this account.",
    no_pending_device: "Press “Show my QR code” first, then enter the code from your app.",
    not_authenticated: "You are not logged in any more. Please log in again.",
    authentication_failed: "You are not logged in any more. Please log in again.",
    network: "The server did not answer. Is `make demo` still running?",
  };

  // Where the field takes a recovery code, the same error codes mean something else.
  const RECOVERY_WORDS = {
    invalid_token:
      "That recovery code is not right, or it belongs to an older set that no longer works.",
    token_reused: "That recovery code was already used. Each one works once: try another.",
  };

  // The error of one answer, as a sentence for people. Field errors (a sign-up password that is
  // too short and too common) are all listed; everything else is one sentence.
  function plainWords(result, words) {
    const data = result.data;
    if (words && words[data.code]) {
      return words[data.code];
    }
    if (PLAIN_WORDS[data.code]) {
      return PLAIN_WORDS[data.code];
    }
    if (data.code === "permission_denied" && /CSRF/i.test(data.detail || "")) {
      return "The page's security token is out of date. Reload the page and try again.";
    }
    if (data.errors) {
      const messages = [];
      for (const field of Object.keys(data.errors)) {
        for (const error of data.errors[field]) {
          if (!messages.includes(error.message)) {
            messages.push(error.message);
          }
        }
      }
      return messages.join(" ");
    }
    if (data.detail) {
      return data.detail;
    }
    if (result.status >= 500) {
      return "The server had a problem (HTTP " + result.status + "). Its console says more.";
    }
    return "Something went wrong (HTTP " + result.status + ").";
  }

  function duration(seconds) {
    const minutes = Math.floor(seconds / 60);
    const rest = seconds % 60;
    const parts = [];
    if (minutes > 0) {
      parts.push(minutes === 1 ? "1 minute" : minutes + " minutes");
    }
    if (rest > 0 || minutes === 0) {
      parts.push(rest === 1 ? "1 second" : rest + " seconds");
    }
    return parts.join(" ");
  }

  function formatTime(iso) {
    return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
  }

  // ---- Form errors, with a countdown for "locked" and "throttled" ---------------------------

  const countdowns = new Map(); // form -> interval id

  function errorBox(form) {
    return $(form.id.replace(/-form$/, "-error"));
  }

  function clearError(form) {
    stopCountdown(form);
    const box = errorBox(form);
    box.hidden = true;
    box.textContent = "";
    for (const input of form.querySelectorAll("input")) {
      input.removeAttribute("aria-invalid");
    }
  }

  function showError(form, result) {
    clearError(form);
    const box = errorBox(form);
    const code = result.data.code;
    if ((code === "locked" || code === "throttled") && result.retryAfter > 0) {
      startCountdown(form, code, result.retryAfter);
    } else {
      box.textContent = plainWords(result, form.id === "recovery-form" ? RECOVERY_WORDS : null);
    }
    box.hidden = false;

    // Point at the fields the error is about; the first of them gets the focus.
    const fields = Object.keys(result.data.errors || {});
    let target = null;
    for (const input of form.querySelectorAll("input")) {
      if (fields.includes(input.name) || (!fields.length && input.classList.contains("code"))) {
        input.setAttribute("aria-invalid", "true");
        input.setAttribute("aria-errormessage", box.id);
        target = target || input;
      }
    }
    target = target || form.querySelector("input");
    if (target) {
      target.focus();
      target.select();
    }
  }

  // "Try again in 27 seconds", counting down. The sentence is announced once; the number ticks
  // in a timer element, which screen readers do not announce at every second.
  function startCountdown(form, code, seconds) {
    const box = errorBox(form);
    const until = Date.now() + seconds * 1000;
    const timer = document.createElement("span");
    timer.setAttribute("role", "timer");
    const reason =
      code === "locked"
        ? "Too many wrong codes, so codes are refused for a while to keep your account safe."
        : "Too many attempts in a short time.";
    box.append(reason + " Try again in ", timer, ".");

    function tick() {
      const left = Math.ceil((until - Date.now()) / 1000);
      if (left > 0) {
        timer.textContent = duration(left);
        return;
      }
      stopCountdown(form);
      box.textContent = "The wait is over: you can try again now.";
    }
    tick();
    countdowns.set(form, setInterval(tick, 1000));
  }

  function stopCountdown(form) {
    if (countdowns.has(form)) {
      clearInterval(countdowns.get(form));
      countdowns.delete(form);
    }
  }

  // Run a form's request with its submit button disabled, so a double click sends one request.
  function onSubmit(form, handler) {
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        await handler(form);
      } finally {
        button.disabled = false;
      }
    });
  }

  function value(id) {
    return $(id).value;
  }

  // ---- Views ---------------------------------------------------------------------------------

  function showView(name) {
    $("loading").hidden = true;
    for (const view of ["anonymous", "code", "account"]) {
      $("view-" + view).hidden = view !== name;
    }
    $("whoami").hidden = name !== "account";
  }

  function notify(text) {
    $("notice").textContent = text;
    $("notice").hidden = !text;
  }

  function resetForms() {
    for (const form of document.querySelectorAll("form")) {
      form.reset();
      clearError(form);
    }
  }

  function showAnonymous(options) {
    notify("");
    state.ticket = null;
    state.username = "";
    hideRecoveryCodes();
    hideSetup();
    resetForms();
    showView("anonymous");
    $("login-username").value = options.username || "";
    if (options.error) {
      const box = $("login-error");
      box.textContent = options.error;
      box.hidden = false;
    }
    if (options.focus) {
      (options.username ? $("login-password") : $("login-username")).focus();
    }
  }

  function showCodeStep(username, expiresIn) {
    state.username = username;
    notify("");
    resetForms();
    $("recovery-login").open = false;
    $("code-username").textContent = username;
    $("code-expires").textContent = duration(expiresIn || 300);
    showView("code");
    $("code-token").focus();
  }

  // Logged in: ask the server who we are (unless the caller just did) and what our 2FA state
  // is, then show it. Returns the status, or null.
  async function showAccount(message, me) {
    me = me || (await call("GET", API.me));
    if (!me.ok) {
      showAnonymous({ focus: true, error: plainWords(me) });
      return null;
    }
    state.username = me.data.username;
    state.ticket = null;
    $("whoami-name").textContent = me.data.username;
    resetForms();
    showView("account");
    notify(message || "");
    const status = await refreshStatus();
    $("status-title").focus();
    return status;
  }

  async function refreshStatus() {
    const result = await call("GET", API.status);
    if (!result.ok) {
      if (result.status === 401 || result.status === 403) {
        showAnonymous({ focus: true, error: plainWords(result) });
      } else {
        notify(plainWords(result));
      }
      return null;
    }
    renderStatus(result.data);
    return result.data;
  }

  function renderStatus(status) {
    let enabled = status.enabled ? "On" : "Off";
    if (!status.enabled && status.pending) {
      enabled = "Off (set-up started, waiting for the first code)";
    }
    $("status-enabled").textContent = enabled;
    $("status-last-used").textContent = status.last_used_at
      ? formatTime(status.last_used_at)
      : "Never";

    if (status.locked_out) {
      $("status-locked").textContent =
        "Yes: codes from your app are blocked until you use a recovery code or an " +
        "administrator unlocks you";
    } else if (status.locked_until) {
      $("status-locked").textContent = "Until " + formatTime(status.locked_until);
    } else {
      $("status-locked").textContent = "No";
    }
    $("status-remaining").textContent = status.enabled
      ? String(status.recovery_codes_remaining)
      : "None (2FA is off)";

    $("enroll").hidden = status.enabled;
    $("enroll-pending").hidden = !status.pending || !$("enroll-setup").hidden;
    $("manage-codes").hidden = !status.enabled;
    $("manage-disable").hidden = !status.enabled;
    $("manage-remaining").textContent =
      status.recovery_codes_remaining === 1
        ? "1 recovery code"
        : status.recovery_codes_remaining + " recovery codes";
    if (!status.enabled) {
      $("enroll-start").textContent = status.pending ? "Show my QR code again" : "Show my QR code";
    }
  }

  // ---- Sign up and log in ----------------------------------------------------------------------

  onSubmit($("signup-form"), async function (form) {
    clearError(form);
    const body = { username: value("signup-username"), password: value("signup-password") };
    if (value("signup-email")) {
      body.email = value("signup-email");
    }
    const result = await call("POST", API.signup, body);
    if (!result.ok) {
      showError(form, result);
      return;
    }
    form.reset();
    resetForms();
    $("login-username").value = result.data.username;
    notify("Account created for " + result.data.username + ". Log in with your password.");
    $("login-password").focus();
  });

  onSubmit($("login-form"), async function (form) {
    clearError(form);
    notify("");
    const username = value("login-username");
    const result = await call("POST", API.login, {
      username: username,
      password: value("login-password"),
    });
    if (!result.ok) {
      showError(form, result);
      return;
    }
    if (result.data.mfa_required) {
      state.ticket = result.data.ticket;
      showCodeStep(username, result.data.expires_in);
      return;
    }
    await showAccount("Logged in with your password. This account has no second factor yet.");
  });

  $("fill-demo").addEventListener("click", function () {
    $("login-username").value = DEMO_USER.username;
    $("login-password").value = DEMO_USER.password;
    $("login-form").querySelector("button[type=submit]").focus();
  });

  // The second step: the ticket from the password step, and a code or a recovery code.
  // Returns the account's status once logged in, else null.
  async function finishLogin(form, token, message) {
    clearError(form);
    const result = await call("POST", API.loginVerify, { ticket: state.ticket, token: token });
    if (result.ok) {
      return await showAccount(message);
    }
    const code = result.data.code;
    if (code === "ticket_expired" || code === "invalid_ticket") {
      showAnonymous({ username: state.username, focus: true, error: plainWords(result) });
    } else {
      showError(form, result);
    }
    return null;
  }

  onSubmit($("code-form"), async function (form) {
    await finishLogin(form, value("code-token"), "Logged in with your password and a code.");
  });

  onSubmit($("recovery-form"), async function (form) {
    const status = await finishLogin(form, value("recovery-token"), "");
    if (status) {
      let message =
        "Logged in with a recovery code. That code is used up: you have " +
        status.recovery_codes_remaining +
        " left.";
      if (status.recovery_codes_remaining <= 3) {
        message += " Get a new set below.";
      }
      notify(message);
    }
  });

  $("code-cancel").addEventListener("click", function () {
    showAnonymous({ username: state.username, focus: true });
  });

  $("logout-button").addEventListener("click", async function () {
    const result = await call("POST", API.logout, {});
    if (!result.ok) {
      notify(plainWords(result));
      return;
    }
    showAnonymous({ focus: true });
    notify("You are logged out.");
  });

  $("status-refresh").addEventListener("click", async function () {
    notify("");
    await refreshStatus();
  });

  // ---- Turning 2FA on ------------------------------------------------------------------------

  async function startSetup() {
    clearError($("enroll-form"));
    const result = await call("POST", API.generate, {});
    if (!result.ok) {
      notify(plainWords(result));
      await refreshStatus();
      return;
    }
    showSetup(result.data);
  }

  // The QR code is the API's qr_svg (a data: URI); the manual-entry facts come from otpauth_url.
  function showSetup(data) {
    const url = new URL(data.otpauth_url);
    const params = url.searchParams;
    const label = decodeURIComponent(url.pathname.replace(/^\/+(totp\/)?/, ""));
    const account = label.includes(":") ? label.slice(label.indexOf(":") + 1) : label;
    const digits = params.get("digits") || "6";
    const period = params.get("period") || "30";

    $("enroll-qr").src = data.qr_svg;
    $("enroll-secret").textContent = data.secret.replace(/(.{4})(?=.)/g, "$1 ");
    $("enroll-account").textContent = account;
    $("enroll-issuer").textContent = params.get("issuer") || "";
    $("enroll-type").textContent =
      "Time-based, " + digits + " digits, a new code every " + period + " seconds";
    $("enroll-copy-feedback").textContent = "";
    $("enroll-setup").hidden = false;
    $("enroll-pending").hidden = true;
    $("enroll-start").hidden = true;
    $("enroll-scan-title").focus();
  }

  function hideSetup() {
    $("enroll-setup").hidden = true;
    $("enroll-start").hidden = false;
    $("enroll-qr").removeAttribute("src");
    $("enroll-secret").textContent = "";
  }

  $("enroll-start").addEventListener("click", startSetup);
  $("enroll-restart").addEventListener("click", startSetup);

  $("enroll-copy-secret").addEventListener("click", async function () {
    const secret = $("enroll-secret").textContent.replace(/\s+/g, "");
    $("enroll-copy-feedback").textContent = await copyText(secret, $("enroll-secret"));
  });

  onSubmit($("enroll-form"), async function (form) {
    clearError(form);
    const result = await call("POST", API.verify, { token: value("enroll-token") });
    if (!result.ok) {
      showError(form, result);
      if (result.data.code === "no_pending_device" || result.data.code === "already_enabled") {
        hideSetup();
        await refreshStatus();
      }
      return;
    }
    hideSetup();
    form.reset();
    notify("Two-factor authentication is on. From now on, logging in asks for a code.");
    await refreshStatus();
    showRecoveryCodes(result.data.recovery_codes);
  });

  // ---- Recovery codes ------------------------------------------------------------------------

  function showRecoveryCodes(codes) {
    state.recoveryCodes = codes.slice();
    const list = $("codes-list");
    list.textContent = "";
    for (const code of codes) {
      const item = document.createElement("li");
      item.textContent = code;
      list.append(item);
    }
    $("codes-feedback").textContent = "";
    $("codes").hidden = false;
    $("codes-title").focus();
  }

  function hideRecoveryCodes() {
    state.recoveryCodes = [];
    $("codes-list").textContent = "";
    $("codes").hidden = true;
  }

  function recoveryCodesText() {
    return (
      "Recovery codes for " + state.username + " on drf-totp demo (" + location.host + ")\n" +
      "Each code works once. Keep them somewhere safe.\n\n" +
      state.recoveryCodes.join("\n") +
      "\n"
    );
  }

  // The clipboard API, or, where the browser refuses it, the text selected for Ctrl+C.
  async function copyText(text, element) {
    try {
      await navigator.clipboard.writeText(text);
      return "Copied.";
    } catch (error) {
      const range = document.createRange();
      range.selectNodeContents(element);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      return "Your browser does not let the page copy: the text is selected, press Ctrl+C.";
    }
  }

  $("codes-copy").addEventListener("click", async function () {
    $("codes-feedback").textContent = await copyText(recoveryCodesText(), $("codes-list"));
  });

  $("codes-download").addEventListener("click", function () {
    const blob = new Blob([recoveryCodesText()], { type: "text/plain" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = "drf-totp-demo-recovery-codes.txt";
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(function () {
      URL.revokeObjectURL(link.href);
    }, 1000);
    $("codes-feedback").textContent = "Downloaded drf-totp-demo-recovery-codes.txt.";
  });

  $("codes-done").addEventListener("click", function () {
    hideRecoveryCodes();
    notify("");
    $("status-title").focus();
  });

  onSubmit($("regenerate-form"), async function (form) {
    clearError(form);
    const result = await call("POST", API.recoveryCodes, { token: value("regenerate-token") });
    if (!result.ok) {
      showError(form, result);
      return;
    }
    form.reset();
    notify("New recovery codes: the old ones no longer work.");
    await refreshStatus();
    showRecoveryCodes(result.data.recovery_codes);
  });

  // ---- Turning 2FA off -----------------------------------------------------------------------

  onSubmit($("disable-form"), async function (form) {
    clearError(form);
    const result = await call("POST", API.disable, { token: value("disable-token") });
    if (!result.ok) {
      showError(form, result);
      return;
    }
    form.reset();
    hideRecoveryCodes();
    notify("Two-factor authentication is off. Logging in asks for the password only.");
    await refreshStatus();
    $("status-title").focus();
  });

  // ---- The request log -----------------------------------------------------------------------

  function logRequest(method, url, status, code) {
    const item = document.createElement("li");
    const request = document.createElement("code");
    request.textContent = method + " " + url;
    item.append(request, " → " + status + (code ? " " + code : ""));
    if (code) {
      item.className = "failed";
    }
    const log = $("log");
    log.prepend(item);
    while (log.children.length > LOG_LENGTH) {
      log.lastElementChild.remove();
    }
  }

  // ---- Start -----------------------------------------------------------------------------------

  async function start() {
    const me = await call("GET", API.me);
    if (me.ok) {
      await showAccount("", me);
    } else {
      // 403 is the usual answer for a visitor who is not logged in: nothing to report.
      showAnonymous({ focus: false, error: me.status ? "" : plainWords(me) });
    }
  }

  start();
})();
