"""The console's doors: logins, sessions, CSRF, roles and its security headers, over real
HTTP to the stack's gateway, with operators made by the real CLI."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.console_support import PASSWORD, ROOT, add_operator, console, logged_in
from tests.stack import Stack

pytestmark = pytest.mark.timeout(120)


def test_an_operator_logs_in_sees_the_console_and_logs_out(stack: Stack) -> None:
    viewer = add_operator(stack, "viewer")
    with console(stack) as browser:
        first = browser.get("/console/transactions")
        assert first.status_code == 303
        assert first.headers["location"].startswith("/console/login?next=")
        answer = browser.try_login(viewer.name, viewer.password)
        assert answer.status_code == 303
        cookie = answer.headers["set-cookie"]
        for attribute in ("HttpOnly", "Secure", "SameSite=strict", "Path=/console"):
            assert attribute.lower() in cookie.lower()
        page = browser.get("/console/transactions")
        assert page.status_code == 200
        assert viewer.name in page.text
        stolen = dict(browser.cookies)
        assert browser.post("/console/logout").status_code == 303
        # The cookie copied before logout opens nothing any more.
        browser.cookies = stolen
        after = browser.get("/console/transactions")
        assert after.status_code == 303 and "/console/login" in after.headers["location"]


def test_a_wrong_password_and_an_unknown_name_get_the_same_answer(stack: Stack) -> None:
    viewer = add_operator(stack, "viewer")
    with console(stack) as browser:
        wrong = browser.try_login(viewer.name, "not the password at all")
        unknown = browser.try_login("nobody-here", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    assert "session" not in str(wrong.headers.get_list("set-cookie"))


def test_logins_are_rate_limited_per_name(stack: Stack) -> None:
    target = add_operator(stack, "admin")
    with console(stack) as browser:
        codes = [browser.try_login(target.name, f"guess number {n}").status_code for n in range(5)]
        assert codes == [401] * 5
        # Even the right password is refused now, without being checked.
        refused = browser.try_login(target.name, target.password)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    # The merchant's checkers see the attempts on their operator's name.
    with logged_in(stack, add_operator(stack, "checker")) as checker:
        trail = checker.get(f"/console/audit?actor={target.name}")
    assert trail.status_code == 200
    assert trail.text.count('data-outcome="failed"') == 5
    assert trail.text.count('data-outcome="throttled"') == 1


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(stack: Stack) -> None:
    viewer = add_operator(stack, "viewer")
    with logged_in(stack, viewer) as browser:
        refused = browser.post("/console/logout", csrf=False)
        assert refused.status_code == 403
        forged = browser.post("/console/logout", {"csrf_token": "forged"})
        assert forged.status_code == 403
        # The session is still open: the forged logouts did nothing.
        assert browser.get("/console/transactions").status_code == 200
        other_site = browser.post("/console/logout", headers={"origin": "https://evil.example"})
        assert other_site.status_code == 403
        assert browser.get("/console/transactions").status_code == 200


def test_the_login_form_never_sends_an_operator_to_another_site(stack: Stack) -> None:
    viewer = add_operator(stack, "viewer")
    with console(stack) as browser:
        form = browser.get("/console/login?next=https://evil.example/")
        assert 'name="next" value="/console/transactions"' in form.text
        answer = browser.try_login(viewer.name, viewer.password)
    assert answer.headers["location"] == "/console/transactions"


def test_console_pages_carry_security_headers(stack: Stack) -> None:
    with console(stack) as browser:
        page = browser.get("/console/login")
    headers = page.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store"


def test_operators_cli_refuses_weak_passwords_and_unknown_merchants(stack: Stack) -> None:
    def add(*args: str, password: str = PASSWORD) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "momoflow.cli", "operators", "add", *args, "--password-stdin"],
            input=password + "\n",
            env=stack.env | {"PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )

    short = add("shorty", "--role", "viewer", "--merchant", "acme", password="short")
    assert short.returncode == 2 and "at least 12 characters" in short.stderr
    stranger = add("stranger", "--role", "viewer", "--merchant", "initech")
    assert stranger.returncode == 2 and "initech" in stranger.stderr
    ambiguous = add("ambiguous", "--role", "viewer")
    assert ambiguous.returncode == 2 and "--merchant is required" in ambiguous.stderr
    bad_role = add("badrole", "--role", "owner", "--merchant", "acme")
    assert bad_role.returncode == 2
    taken = add_operator(stack, "viewer")
    again = add(taken.name, "--role", "viewer", "--merchant", "acme")
    assert again.returncode == 2 and "exists already" in again.stderr


def _operators(stack: Stack, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "momoflow.cli", "operators", *args],
        input=stdin,
        env=stack.env | {"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_disabling_an_operator_or_changing_a_password_ends_their_sessions(
    stack: Stack,
) -> None:
    checker = add_operator(stack, "checker")
    with logged_in(stack, checker) as browser:
        assert _operators(stack, "disable", checker.name).returncode == 0
        assert browser.get("/console/transactions").status_code == 303
        assert browser.try_login(checker.name, checker.password).status_code == 401
        assert _operators(stack, "enable", checker.name).returncode == 0
        browser.login(checker)
        new_password = "a different passphrase entirely"
        changed = _operators(
            stack, "password", checker.name, "--password-stdin", stdin=new_password + "\n"
        )
        assert changed.returncode == 0, changed.stderr
        assert browser.get("/console/transactions").status_code == 303
        assert browser.try_login(checker.name, checker.password).status_code == 401
        assert browser.try_login(checker.name, new_password).status_code == 303
    listed = _operators(stack, "list")
    assert f"{checker.name}\tchecker\tacme\tAfrica/Abidjan\tfr\tactive" in listed.stdout
