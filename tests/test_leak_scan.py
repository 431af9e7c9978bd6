"""The leak scan: what the whole test session left behind holds no secret and no clear phone
number.

It reads the leftovers of every test that ran before it. ``scripts/test`` runs it alone
after the suite, over the directory the suite's xdist workers wrote
(``$MOMOFLOW_TEST_LEFTOVERS``); in a plain ``pytest`` run it comes last
(``tests/conftest.py`` moves it to the end) and reads its own session's. It reads:

* every ``*.log`` the tests wrote: the logs of every process of every stack, and the rest;
* the spans every process exported (each stack sends them to a stand-in collector,
  ``tests/otlp_sink.py``, one OTLP request body per file);
* the raw Temporal history of every workflow of the session stacks, fetched before their
  server stopped by a client **without** the payload codec, so what is searched is what the
  server stores (``Stack.keep_raw_histories``).

Forbidden: every secret the stacks' settings hold (provider credentials, webhook secrets
and tokens, notification and fingerprint secrets, codec keys, as
``momoflow.redaction.secret_values`` finds them), the sandboxes' own credentials, every API
key and operator token the tests use, and every phone number the tests use, in clear
(``+221*****0001`` is fine). Phone numbers are looked for two ways, and neither can pass or
fail by chance:

* every number written in the test files, in each form the code or a provider may write it
  (``+221771230001``, ``221771230001``, ``00221771230001``, international and national
  groupings such as ``+221 77 123 00 01`` and ``77 123 00 01``), anywhere in the text; these
  forms are long or spaced enough that no random id holds one by chance;
* a pattern, for the numbers tests build at run time, matched only as a whole token: not
  inside an identifier, a UUID (``…-9084-221912345518``), a traceparent, a ``$``-prefixed
  request id, a longer number or a masked form. Temporal keeps those ids in clear, and a
  digit run inside one is not a phone number.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat

from momoflow.devstack import DEV_CONSOLE_PASSWORD
from momoflow.redaction import MIN_SECRET_LENGTH, secret_values
from momoflow.sandbox.caurisflux import CaurisFluxSandboxConfig
from momoflow.sandbox.mobilepay import MobilePaySandboxConfig
from momoflow.sandbox.novasend import NovaSendSandboxConfig
from momoflow.settings import DEV_API_KEY, DEV_OPERATOR_TOKEN, Settings
from tests.console_support import PASSWORD as CONSOLE_PASSWORD
from tests.stack import RAW_HISTORIES, STACK_ENV

#: Set by ``scripts/test``: the directory of the run whose leftovers to scan.
LEFTOVERS_VARIABLE = "MOMOFLOW_TEST_LEFTOVERS"

TESTS = Path(__file__).resolve().parent
#: Credentials the tests hand out or send: API keys and operator tokens (``mf_…``, ``mfop_…``).
_KEY_LITERAL = re.compile(r"\bmf(?:op)?_[a-z]+_[A-Za-z0-9_]{4,}\b")
#: A phone number as the tests write it: ``+`` and the country code, then 8 to 10 digits.
_PHONE_LITERAL = re.compile(r"\+(2[0-9]{2})[0-9]{8,10}\b")


@dataclass(frozen=True)
class Leak:
    """Something forbidden, found somewhere; ``what`` names it without repeating it."""

    where: str
    what: str


def settings_of(env: dict[str, str]) -> Settings:
    """The settings processes run with in environment ``env`` (a stack's)."""
    with pytest.MonkeyPatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("MOMOFLOW_")]:
            patch.delenv(key)
        for key, value in env.items():
            patch.setenv(key, value)
        return Settings(_env_file=None)  # type: ignore[call-arg]


def forbidden_secrets(envs: Iterable[dict[str, str]]) -> dict[str, str]:
    """Secret value -> a name to report it by, from the environments of every stack."""
    values: list[str] = []
    for env in envs:
        settings = settings_of(env)
        values += secret_values(settings)
        # NovaSend's Basic credentials, as they travel.
        basic = f"{settings.novasend.api_key}:{settings.novasend.api_client.get_secret_value()}"
        values.append(base64.b64encode(basic.encode()).decode())
    for sandbox in (CaurisFluxSandboxConfig(), NovaSendSandboxConfig(), MobilePaySandboxConfig()):
        values += secret_values(sandbox)
    # Console operators' passwords (the tests' and the local stack's) too.
    values += [DEV_API_KEY, DEV_OPERATOR_TOKEN, CONSOLE_PASSWORD, DEV_CONSOLE_PASSWORD]
    for source in TESTS.glob("*.py"):
        values += _KEY_LITERAL.findall(source.read_text())
    named: dict[str, str] = {}
    for value in values:
        if len(value) >= MIN_SECRET_LENGTH and value not in named:
            named[value] = f"secret #{len(named) + 1} ({value[:4]}…, {len(value)} chars)"
    return named


#: What may stand right before a phone number for it to be one: not a character of an
#: identifier, a UUID or traceparent (``-``), a request id (``$``), a masked form (``*``) or
#: a ``+`` (the match would have started there).
_TOKEN_START = r"(?<![0-9A-Za-z_*$+-])"
#: ... and right after it: not a digit, a letter or the rest of an id.
_TOKEN_END = r"(?![0-9A-Za-z_-])"


def phone_pattern() -> tuple[re.Pattern[str], set[str]]:
    """A pattern for every clear phone number of the tests' countries, matched as a whole
    token, and the literals the test files hold (each must match it)."""
    literals: set[str] = set()
    codes: set[str] = set()
    for source in TESTS.glob("*.py"):
        for found in _PHONE_LITERAL.finditer(source.read_text()):
            literals.add(found.group(0))
            codes.add(found.group(1))
    alternatives = "|".join(sorted(codes))
    pattern = re.compile(rf"{_TOKEN_START}\+?(?:{alternatives})[0-9]{{8,10}}{_TOKEN_END}")
    return pattern, literals


def written_forms(number: str) -> set[str]:
    """The forms of an E.164 ``number`` that code or a provider may write, each long or
    spaced enough not to occur by chance in a random id: E.164 with and without ``+``,
    ``00``-prefixed, and the international and national groupings. Bare national digits
    (``771230001``) are left to the whole-token pattern, being short enough to turn up
    inside a hex id."""
    digits = number.lstrip("+")
    forms = {number, digits, "00" + digits}
    try:
        parsed = phonenumbers.parse(number)
    except phonenumbers.NumberParseException:
        return forms
    for style in (PhoneNumberFormat.INTERNATIONAL, PhoneNumberFormat.NATIONAL):
        written = phonenumbers.format_number(parsed, style)
        if " " in written:
            forms.add(written)
    return forms


def literal_forms(literals: Iterable[str]) -> dict[str, str]:
    """Every written form of every literal -> the masked literal to report it by."""
    return {form: mask(number) for number in literals for form in written_forms(number)}


def mask(number: str) -> str:
    return f"{number[:4]}*****{number[-4:]}"


def find_leaks(
    text: str,
    where: str,
    secrets: dict[str, str],
    phones: re.Pattern[str],
    known_phones: dict[str, str] | None = None,
) -> list[Leak]:
    """Every forbidden secret and clear phone number in ``text``: the pattern's whole-token
    matches and, anywhere, the written forms of the known numbers."""
    found = [Leak(where, name) for value, name in secrets.items() if value in text]
    matched = {mask("+" + m.group(0).lstrip("+")) for m in phones.finditer(text)}
    matched |= {masked for form, masked in (known_phones or {}).items() if form in text}
    found += [Leak(where, f"phone {masked}") for masked in sorted(matched)]
    return found


# ------------------------------------------------------------------------------ what is searched


def leftovers_root(basetemp: Path) -> Path:
    """Where the session to scan left its files: the run ``scripts/test`` names (its
    workers ran the suite in other processes), or this session's own temporary directory."""
    named = os.environ.get(LEFTOVERS_VARIABLE)
    return Path(named) if named else basetemp


def log_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.log") if p.is_file())


def span_files(root: Path) -> list[Path]:
    """What every stack's stand-in collector received (the session stacks and those some
    tests start for themselves)."""
    return sorted(p for p in root.rglob("*.pb") if p.parent.name == "spans")


def stack_environments(root: Path) -> list[dict[str, str]]:
    return [json.loads(p.read_text()) for p in sorted(root.rglob(STACK_ENV))]


def raw_histories(root: Path) -> list[tuple[str, bytes]]:
    """(workflow id, serialized history, as the server stored it) of every workflow the
    session stacks kept (``Stack.keep_raw_histories``)."""
    found: list[tuple[str, bytes]] = []
    for index in sorted(root.rglob(f"{RAW_HISTORIES}/index.json")):
        for name, workflow_id in json.loads(index.read_text()).items():
            found.append((workflow_id, (index.parent / name).read_bytes()))
    return found


def _report(leaks: Iterable[Leak]) -> str:
    leaks = list(leaks)
    lines = [f"{leak.where}: {leak.what}" for leak in leaks[:40]]
    more = f"\n… and {len(leaks) - 40} more" if len(leaks) > 40 else ""
    return f"{len(leaks)} leaks:\n" + "\n".join(lines) + more


# ------------------------------------------------------------------------------ tests


def test_the_scanner_finds_what_it_looks_for() -> None:
    """The scan below can fail: planted secrets and clear numbers are found, in every form
    the code may write them; masked numbers and the random ids Temporal keeps in clear are
    not."""
    pattern, literals = phone_pattern()
    known = literal_forms(literals)
    secrets = {"sk_live_planted_secret": "planted"}
    assert {"+221771230001", "+2250701230003"} <= literals
    assert all(pattern.fullmatch(number) for number in literals)
    assert {"+221771230001", "221771230001", "+221 77 123 00 01", "77 123 00 01"} <= set(known)
    text = (
        "paid 221771230001 and +2250701231001 with sk_live_planted_secret; "
        "masked +221*****0001, ids TRF2250701231001 and 12212345678901234"
    )
    leaks = find_leaks(text, "sample", secrets, pattern, known)
    assert sorted(leak.what for leak in leaks) == [
        "phone +221*****0001",
        "phone +225*****1001",
        "planted",
    ]
    # A known number is found whatever stands around it, in each written form.
    for form in ("x+2250701230003y", "phone:0022507012300031", "tel 07 01 23 0003."):
        assert [leak.what for leak in find_leaks(form, "s", {}, pattern, known)] == [
            "phone +225*****0003"
        ], form


@pytest.mark.parametrize(
    "clear_id",
    [
        # A request id or an update id: a UUID, here with a run of digits in its last group.
        "$7261e2d5-ef8f-427e-9084-221912345518 ",
        "7261e2d5-ef8f-427e-9084-221912345518",
        "update-22191234551-2",
        # A traceparent whose span id is all digits, and one whose trace id ends in digits.
        "00-4bf92f3577b34da6a3ce929d0e0e4736-2250701234567890-01",
        "00-4bf92f3577b34da6a3ce9222191234551-00f067aa0ba902b7-01",
        # Hex ids with a run of digits against a hex letter.
        "a221912345518f",
        "2219123455181e2d",
    ],
)
def test_random_ids_kept_in_clear_are_not_phone_numbers(clear_id: str) -> None:
    # The pattern only: a known test number is a leak wherever it stands, so these samples
    # are checked against the pattern that finds numbers built at run time.
    pattern, _ = phone_pattern()
    assert find_leaks(clear_id, "sample", {}, pattern) == []


def test_no_secret_or_clear_phone_number_in_logs_spans_or_raw_histories(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = leftovers_root(tmp_path_factory.getbasetemp())
    if LEFTOVERS_VARIABLE not in os.environ:
        # The suite ran in this process, and its stack still runs: keep its histories now.
        request.getfixturevalue("stack").keep_raw_histories()
    secrets = forbidden_secrets(stack_environments(root))
    phones, literals = phone_pattern()
    known = literal_forms(literals)
    assert len(secrets) >= 10
    leaks: list[Leak] = []
    scanned = {"log files": 0, "span exports": 0, "histories": 0}

    for path in log_files(root):
        text = path.read_bytes().decode("latin-1")
        leaks += find_leaks(text, f"log {path.relative_to(root)}", secrets, phones, known)
        scanned["log files"] += 1

    for path in span_files(root):
        text = path.read_bytes().decode("latin-1")
        leaks += find_leaks(text, f"spans {path.relative_to(root)}", secrets, phones, known)
        scanned["span exports"] += 1

    for workflow_id, raw in raw_histories(root):
        leaks += find_leaks(raw.decode("latin-1"), f"history {workflow_id}", secrets, phones, known)
        scanned["histories"] += 1

    if scanned["histories"] == 0:
        # Run alone there is nothing to scan; in CI the whole suite runs first, so an empty
        # scan there means the scan itself is broken.
        if os.environ.get("CI"):
            pytest.fail(f"the leak scan found no workflow history to read under {root}")
        pytest.skip("no workflow ran in this session: run the scan with the tests it checks")
    # Not vacuous: there was something to read in each place.
    assert all(count > 0 for count in scanned.values()), scanned
    assert not leaks, f"scanned {scanned}; " + _report(leaks)
