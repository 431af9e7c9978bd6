"""Reading a campaign file: CSV or JSON lines in, checked payout requests out.

Pure functions, no I/O: the gateway calls :func:`inspect_file` to refuse a malformed upload
before anything starts, and the prepare activity calls :func:`check_lines` to find every
problem of every line at once.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from pydantic import ValidationError

from momoflow.business_requests import PayoutRequest, check_payout_request
from momoflow.campaigns.models import CAMPAIGN_COLUMNS, REQUIRED_COLUMNS, FileFormat, LineProblem
from momoflow.models import Direction, Operator, ProviderName
from momoflow.money import Country
from momoflow.phones import normalize_phone
from momoflow.providers.catalog import find_spec

#: Largest campaign file accepted (bytes) and most lines per campaign.
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_LINES = 200_000

#: Problem fields are the file's column names, not the API's nested ones.
_FIELD_FROM_REQUEST = {"recipient.phone": "phone", "recipient.name": "name"}
#: Key marking a CSV row with more values than the header has columns.
EXTRA_VALUES = "__extra_values__"

E = TypeVar("E", Country, Operator, ProviderName)
_Problem = Callable[[str, str, str], None]

_THOUSANDS_SEPARATORS = re.compile(r"[ \u00a0\u202f_]")


class FileRejected(ValueError):
    """The upload cannot be read as a campaign file; ``problems`` says why, by field."""

    def __init__(self, problems: Sequence[LineProblem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(p.message for p in self.problems))


@dataclass(frozen=True)
class FileSummary:
    """A readable campaign file: its format and how many lines it has."""

    file_format: FileFormat
    lines: int
    columns: tuple[str, ...]


@dataclass
class CheckedLines:
    """Every line of a file, checked: payable requests and problems, by line number."""

    requests: dict[int, PayoutRequest] = field(default_factory=dict)
    problems: list[LineProblem] = field(default_factory=list)
    lines: int = 0

    @property
    def invalid_lines(self) -> int:
        """Lines with at least one problem."""
        return len({p.line for p in self.problems})


def detect_format(content_type: str | None, filename: str | None = None) -> FileFormat | None:
    """The format named by a content type or a file name, or None."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind in ("text/csv", "application/csv"):
        return FileFormat.CSV
    if kind in ("application/x-ndjson", "application/jsonl", "application/x-jsonlines"):
        return FileFormat.JSONL
    name = (filename or "").lower()
    if name.endswith(".csv"):
        return FileFormat.CSV
    if name.endswith((".jsonl", ".ndjson")):
        return FileFormat.JSONL
    return None


def iter_rows(data: bytes, file_format: FileFormat) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, raw values) for each data line; line numbers count from 1 after the
    header. Raises :class:`FileRejected` when the file itself is unreadable."""
    text = _decode(data)
    if file_format is FileFormat.CSV:
        yield from _csv_rows(text)
    else:
        yield from _jsonl_rows(text)


def inspect_file(data: bytes, file_format: FileFormat) -> FileSummary:
    """Check the file's structure (encoding, header, size); per-line rules come later."""
    if not data.strip():
        raise FileRejected([_file_problem("file", "not_empty", "the file has no lines")])
    if len(data) > MAX_FILE_BYTES:
        raise FileRejected(
            [_file_problem("file", "max_size", f"the file is larger than {MAX_FILE_BYTES} bytes")]
        )
    count = 0
    columns: tuple[str, ...] = ()
    for count, _row in iter_rows(data, file_format):  # noqa: B007 - counting
        if count > MAX_LINES:
            raise FileRejected([_file_problem("file", "max_lines", f"more than {MAX_LINES} lines")])
    if file_format is FileFormat.CSV:
        columns = tuple(_csv_header(_decode(data)))
    if count == 0:
        raise FileRejected([_file_problem("file", "not_empty", "the file has no data lines")])
    return FileSummary(file_format=file_format, lines=count, columns=columns)


def default_provider(
    country: Country,
    operator: Operator,
    routes: Mapping[str, ProviderName],
    enabled: Sequence[ProviderName],
) -> ProviderName | None:
    """The provider for a line that names none: the route configured for
    ``COUNTRY/operator`` (or ``COUNTRY``), else the first enabled provider paying out there."""
    for key in (f"{country.value}/{operator.value}", country.value):
        if key in routes and routes[key] in enabled:
            return routes[key]
    for name in enabled:
        spec = find_spec(name)
        if spec is None or Direction.PAYOUT not in spec.capabilities.directions:
            continue
        if operator in spec.capabilities.operators.get(country, frozenset()):
            return name
    return None


def check_lines(
    data: bytes,
    file_format: FileFormat,
    *,
    routes: Mapping[str, ProviderName],
    enabled: Sequence[ProviderName],
) -> CheckedLines:
    """Check every line against every rule; duplicate references inside the file make
    every line that shares them invalid (paying either one would be a guess)."""
    checked = CheckedLines()
    references: Counter[str] = Counter()
    first_seen: dict[str, int] = {}
    for number, row in iter_rows(data, file_format):
        checked.lines = number
        reference = row.get("reference", "").strip()
        if reference:
            references[reference] += 1
            first_seen.setdefault(reference, number)
        request, problems = check_row(number, row, routes=routes, enabled=enabled)
        checked.problems.extend(problems)
        if request is not None and not problems:
            checked.requests[number] = request
    duplicated = {ref for ref, n in references.items() if n > 1}
    if duplicated:
        for number, row in iter_rows(data, file_format):
            reference = row.get("reference", "").strip()
            if reference in duplicated:
                checked.requests.pop(number, None)
                checked.problems.append(
                    LineProblem(
                        line=number,
                        reference=reference,
                        field="reference",
                        rule="unique_in_file",
                        message=f"reference {reference!r} appears {references[reference]} "
                        f"times in the file (first on line {first_seen[reference]}); "
                        "none of these lines is paid",
                    )
                )
    checked.problems.sort(key=lambda p: (p.line, p.field))
    return checked


def check_row(
    number: int,
    row: Mapping[str, str],
    *,
    routes: Mapping[str, ProviderName],
    enabled: Sequence[ProviderName],
) -> tuple[PayoutRequest | None, list[LineProblem]]:
    """One line: the payout request it asks for, or every problem it has."""
    reference = row.get("reference", "").strip() or None
    problems: list[LineProblem] = []

    def problem(field_name: str, rule: str, message: str) -> None:
        problems.append(
            LineProblem(
                line=number, reference=reference, field=field_name, rule=rule, message=message
            )
        )

    if row.get(EXTRA_VALUES):
        problem(
            "line",
            "column_count",
            f"{row[EXTRA_VALUES]} value(s) more than the header has columns "
            "(an unquoted separator inside a value?)",
        )
    for column in sorted(REQUIRED_COLUMNS):
        if not str(row.get(column, "")).strip():
            problem(column, "required", f"{column} is required")
    country = _enum(Country, row.get("country"), "country", problem)
    operator = _enum(Operator, row.get("operator"), "operator", problem)
    provider: ProviderName | None = None
    raw_provider = str(row.get("provider", "")).strip().lower()
    if raw_provider:
        provider = _enum(ProviderName, raw_provider, "provider", problem)
        if provider is not None and provider not in enabled:
            problem("provider", "provider_enabled", f"{provider.value} is not enabled here")
            provider = None
    elif country is not None and operator is not None:
        provider = default_provider(country, operator, routes, enabled)
        if provider is None:
            problem(
                "provider",
                "route_exists",
                f"no enabled provider pays {operator.value} in {country.value}; "
                "name a provider on the line",
            )
    amount = _amount(row.get("amount"), problem)
    phone = normalize_phone(row.get("phone"), country)
    if problems or provider is None or country is None or operator is None or amount is None:
        return None, problems
    try:
        request = PayoutRequest.model_validate(
            {
                "reference": reference,
                "provider": provider,
                "country": country,
                "operator": operator,
                "recipient": {"phone": phone, "name": row.get("name", "")},
                "amount": amount,
                "currency": str(row.get("currency", "")).strip().upper(),
                "description": str(row.get("description", "") or "").strip(),
            }
        )
    except ValidationError as exc:
        for err in exc.errors():
            loc = ".".join(str(part) for part in err["loc"])
            if loc == "recipient.phone":
                problem(
                    "phone",
                    "phone_number",
                    f"{str(row.get('phone', '')).strip()!r} is not a phone number of "
                    f"{country.value}: write it in international form (+225…) or as the "
                    "national number",
                )
                continue
            problem(_FIELD_FROM_REQUEST.get(loc, loc), str(err["type"]), err["msg"])
        return None, problems
    for rule in check_payout_request(request):
        problem(_FIELD_FROM_REQUEST.get(rule.field, rule.field), rule.rule, rule.message)
    return (request if not problems else None), problems


# ---------------------------------------------------------------------- helpers


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileRejected(
            [
                _file_problem(
                    "file",
                    "utf8",
                    f"the file is not UTF-8 (byte {exc.start}); export it as UTF-8",
                )
            ]
        ) from None


def _csv_header(text: str) -> list[str]:
    first = text.splitlines()[0] if text else ""
    delimiter = ";" if first.count(";") > first.count(",") else ","
    return [c.strip().lower() for c in next(csv.reader([first], delimiter=delimiter), [])]


def _csv_rows(text: str) -> Iterator[tuple[int, dict[str, str]]]:
    header = _csv_header(text)
    _check_columns(header)
    first = text.splitlines()[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    next(reader, None)
    number = 0
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise FileRejected(
                [_file_problem("file", "csv", f"line {reader.line_num} cannot be read ({exc})")]
            ) from None
        if not any(v.strip() for v in values):
            continue
        number += 1
        row = {name: (values[i] if i < len(values) else "") for i, name in enumerate(header)}
        extra = [v for v in values[len(header) :] if v.strip()]
        if extra:
            row[EXTRA_VALUES] = str(len(extra))
        yield number, row


def _jsonl_rows(text: str) -> Iterator[tuple[int, dict[str, str]]]:
    number = 0
    for physical, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        number += 1
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise FileRejected(
                [_file_problem("file", "json", f"line {physical} is not valid JSON ({exc.msg})")]
            ) from None
        except (RecursionError, ValueError):
            # Nested too deep, or a number too long to convert: not a campaign line.
            raise FileRejected(
                [_file_problem("file", "json", f"line {physical} is not a readable JSON object")]
            ) from None
        if not isinstance(value, dict):
            raise FileRejected(
                [_file_problem("file", "json_object", f"line {physical} is not a JSON object")]
            )
        unknown = sorted(set(value) - set(CAMPAIGN_COLUMNS))
        if unknown:
            raise FileRejected(
                [
                    _file_problem(
                        "file",
                        "known_columns",
                        f"line {physical} has unknown keys {unknown}; "
                        f"expected {list(CAMPAIGN_COLUMNS)}",
                    )
                ]
            )
        yield number, {k: "" if v is None else str(v) for k, v in value.items()}


def _check_columns(header: list[str]) -> None:
    problems: list[LineProblem] = []
    missing = sorted(REQUIRED_COLUMNS - set(header))
    if missing:
        problems.append(
            _file_problem(
                "header",
                "required_columns",
                f"the header lacks {missing}; expected columns {list(CAMPAIGN_COLUMNS)}",
            )
        )
    unknown = sorted(set(header) - set(CAMPAIGN_COLUMNS))
    if unknown:
        problems.append(
            _file_problem(
                "header",
                "known_columns",
                f"unknown columns {unknown}; expected {list(CAMPAIGN_COLUMNS)}",
            )
        )
    repeated = sorted(name for name, n in Counter(header).items() if n > 1)
    if repeated:
        problems.append(
            _file_problem("header", "unique_columns", f"columns {repeated} appear twice")
        )
    if problems:
        raise FileRejected(problems)


def _file_problem(field_name: str, rule: str, message: str) -> LineProblem:
    return LineProblem(line=0, field=field_name, rule=rule, message=message)


def _enum(kind: type[E], raw: object, name: str, problem: _Problem) -> E | None:
    value = str(raw or "").strip()
    if not value:
        return None
    candidates = (value, value.upper(), value.lower())
    for candidate in candidates:
        try:
            return kind(candidate)
        except ValueError:
            continue
    allowed = ", ".join(sorted(m.value for m in kind))
    problem(name, f"known_{name}", f"unknown {name} {value!r} (one of {allowed})")
    return None


def amount_digits(raw: object) -> str:
    """The amount as written, without thousands separators (``"50 000"`` → ``"50000"``)."""
    return _THOUSANDS_SEPARATORS.sub("", str(raw or "").strip())


def _amount(raw: object, problem: _Problem) -> int | None:
    text = amount_digits(raw)
    if not text:
        return None
    if not text.isdigit():
        problem(
            "amount",
            "whole_number",
            f"amount {str(raw).strip()!r} must be a whole number of the currency's minor "
            "unit (XOF and XAF have no decimals: 50000, not 50000.00)",
        )
        return None
    amount = int(text)
    if amount <= 0:
        problem("amount", "positive", "amount must be greater than 0")
        return None
    return amount
