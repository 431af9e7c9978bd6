"""Reading campaign files: pure functions, no stack."""

from __future__ import annotations

import pytest

from momoflow.campaigns.models import FileFormat
from momoflow.campaigns.parsing import (
    FileRejected,
    check_lines,
    default_provider,
    detect_format,
    inspect_file,
)
from momoflow.models import Operator, ProviderName
from momoflow.money import Country

ALL = [ProviderName.CAURISFLUX, ProviderName.NOVASEND, ProviderName.MOBILEPAY]
HEADER = "reference,provider,country,operator,phone,name,amount,currency,description"


def check(text: str, fmt: FileFormat = FileFormat.CSV, **kwargs: object):  # type: ignore[no-untyped-def]
    return check_lines(
        text.encode("utf-8"),
        fmt,
        routes=kwargs.get("routes", {}),  # type: ignore[arg-type]
        enabled=kwargs.get("enabled", ALL),  # type: ignore[arg-type]
    )


def test_excel_french_export_with_bom_semicolons_and_national_numbers_is_read() -> None:
    text = (
        "\ufeffreference;provider;country;operator;phone;name;amount;currency;description\n"
        "F-1;caurisflux;sn;Wave;77 123 45 67;Awa Diallo;50 000;xof;Facture 1\n"
    )
    checked = check(text)
    assert checked.problems == []
    request = checked.requests[1]
    assert request.recipient.phone == "+221771234567"
    assert (request.amount, request.currency.value, request.country.value) == (50000, "XOF", "SN")


def test_every_problem_of_a_line_is_reported_with_its_column() -> None:
    checked = check(f"{HEADER}\nR-1,caurisflux,SN,airtel,12,,10.5,XOF,\n")
    fields = {(p.field, p.rule) for p in checked.problems}
    assert {
        ("operator", "known_operator"),
        ("name", "required"),
        ("amount", "whole_number"),
    } <= fields
    assert checked.invalid_lines == 1 and checked.requests == {}


def test_campaign_lines_refuse_the_characters_the_api_refuses() -> None:
    # The same rule as POST /v1/payouts (``clean_text``), under the file's column names; a
    # spaced national number is read the same way as there.
    text = (
        f"{HEADER}\n"
        "T-1,caurisflux,SN,wave,77 123 45 67,Awa \u202eDiallo,5000,XOF,ok\n"
        'T-2,caurisflux,SN,wave,+221 77 123 45 68,Moussa Ba,5000,XOF,"ligne 1\nligne 2"\n'
        "T-3,caurisflux,SN,wave,77 123 45 69,Fatou Sy,5000,XOF,Facture 3\n"
    )
    checked = check(text)
    problems = {(p.line, p.field, p.rule) for p in checked.problems}
    assert problems == {(1, "name", "clean_text"), (2, "description", "clean_text")}
    assert [r.recipient.phone for r in checked.requests.values()] == ["+221771234569"]


def test_duplicate_references_invalidate_every_line_that_shares_them() -> None:
    rows = ["D-1,novasend,CI,wave,+2250701231101,A,1000,XOF,"] * 2
    checked = check("\n".join([HEADER, *rows, "D-2,novasend,CI,wave,+2250701231102,B,1000,XOF,"]))
    assert sorted(checked.requests) == [3]
    assert {(p.line, p.rule) for p in checked.problems} == {
        (1, "unique_in_file"),
        (2, "unique_in_file"),
    }


def test_a_row_with_more_values_than_columns_is_refused() -> None:
    checked = check(f"{HEADER}\nX-1,novasend,CI,wave,+2250701231101,Kone, Awa,1000,XOF,June\n")
    assert ("line", "column_count") in {(p.field, p.rule) for p in checked.problems}


def test_lines_without_provider_follow_routes_then_the_first_provider_serving_them() -> None:
    assert default_provider(Country.CI, Operator.WAVE, {}, ALL) is ProviderName.CAURISFLUX
    routes = {"CI/wave": ProviderName.NOVASEND, "SN": ProviderName.MOBILEPAY}
    assert default_provider(Country.CI, Operator.WAVE, routes, ALL) is ProviderName.NOVASEND
    assert default_provider(Country.SN, Operator.WAVE, routes, ALL) is ProviderName.MOBILEPAY
    assert default_provider(Country.CM, Operator.MTN_MOMO, {}, ALL) is ProviderName.NOVASEND
    assert default_provider(Country.CM, Operator.MTN_MOMO, {}, [ProviderName.CAURISFLUX]) is None


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        (b"", "not_empty"),
        (HEADER.encode(), "not_empty"),
        (b"reference,amount\nA,1\n", "required_columns"),
        (f"{HEADER},iban\n".encode(), "known_columns"),
        ("reference;name\n\xe9".encode("latin-1"), "utf8"),
    ],
)
def test_unreadable_csv_files_are_refused_naming_the_rule(data: bytes, rule: str) -> None:
    with pytest.raises(FileRejected) as refused:
        inspect_file(data, FileFormat.CSV)
    assert rule in {p.rule for p in refused.value.problems}


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        ("not json", "json"),
        ("[1, 2]", "json_object"),
        ('{"reference": "A", "iban": "x"}', "known_columns"),
    ],
)
def test_unreadable_json_lines_are_refused_naming_the_rule(line: str, rule: str) -> None:
    with pytest.raises(FileRejected) as refused:
        inspect_file(line.encode(), FileFormat.JSONL)
    assert refused.value.problems[0].rule == rule


def test_formats_are_recognised_by_content_type_or_file_name() -> None:
    assert detect_format("text/csv; charset=utf-8") is FileFormat.CSV
    assert detect_format("application/x-ndjson") is FileFormat.JSONL
    assert detect_format(None, "june.jsonl") is FileFormat.JSONL
    assert detect_format("application/pdf") is None


@pytest.mark.parametrize(
    ("fmt", "data"),
    [
        (
            FileFormat.CSV,
            (HEADER + "\nL1,caurisflux,SN,wave,+2217,N," + "9" * 200_000 + ",XOF,x\n"),
        ),
        (FileFormat.JSONL, '{"reference": ' + "[" * 50_000 + "]" * 50_000 + "}\n"),
        (FileFormat.JSONL, '{"amount": ' + "9" * 5_000 + "}\n"),
    ],
    ids=["csv-field-too-large", "json-nested-too-deep", "json-number-too-long"],
)
def test_hostile_files_are_refused_not_crashed_on(fmt: FileFormat, data: str) -> None:
    with pytest.raises(FileRejected) as refused:
        inspect_file(data.encode(), fmt)
    assert refused.value.problems[0].rule in ("csv", "json")
