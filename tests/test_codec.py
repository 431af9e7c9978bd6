"""Private data in Temporal history is encrypted, and only operators can read it.

The first half tests the codec alone (AES-GCM, key ids, rotation, refusals). The second
half runs payouts on the real stack, reads their history with a client that has no codec
(what anyone with access to Temporal sees), and asks the gateway's codec endpoints to
decrypt it, as the Temporal UI does.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from pydantic import ValidationError
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.enums.v1 import EventType
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import History
from temporalio.client import Client
from temporalio.converter import DefaultPayloadConverter
from temporalio.exceptions import ApplicationError

from momoflow.codec import (
    ENCODING,
    KEY_ID_METADATA,
    DecryptionError,
    EncryptionCodec,
    UnknownKeyError,
    generate_key,
)
from momoflow.devstack import DevStackConfig, _ui_codec_endpoint
from momoflow.gateway import create_app
from momoflow.ids import payout_workflow_id
from momoflow.processes import ManagedProcess, free_port, http_ready
from momoflow.settings import (
    DEV_CODEC_KEY,
    DEV_CODEC_KEY_ID,
    DEV_OPERATOR_TOKEN,
    CodecSettings,
    OperatorTokenEntry,
    Settings,
    TemporalSettings,
    hash_api_key,
)
from momoflow.temporal import data_converter
from tests.stack import ACME_KEY, Stack
from tests.test_payout_flow import payout_body, post_payout

PHONE = "+221771239876"
#: Every way a phone number is commonly written, down to the national number.
PHONE_FORMS = ("+221771239876", "221771239876", "00221771239876", "771239876", "77 123 98 76")
NAME = "Fatou Sow Ba"
NAME_PARTS = ("Fatou Sow Ba", "Fatou", "FATOU")
UI_ORIGIN = "http://127.0.0.1:8233"
OLD = base64.b64decode(DEV_CODEC_KEY)


def _codec(keys: dict[str, bytes], active: str) -> EncryptionCodec:
    return EncryptionCodec(keys, active_key_id=active)


def _json_payload(value: Any) -> Payload:
    return DefaultPayloadConverter().to_payloads([value])[0]


# --------------------------------------------------------------------------- the codec


async def test_payload_round_trips_and_is_unreadable_in_between() -> None:
    codec = _codec({"k1": OLD}, "k1")
    original = _json_payload({"phone": PHONE, "name": NAME})

    [sealed] = await codec.encode([original])
    [opened] = await codec.decode([sealed])

    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID_METADATA] == b"k1"
    raw = sealed.SerializeToString()
    assert PHONE.encode() not in raw and NAME.encode() not in raw
    assert b"json/plain" not in raw  # the original metadata is encrypted too
    assert opened == original


async def test_each_encryption_uses_a_fresh_nonce() -> None:
    codec = _codec({"k1": OLD}, "k1")
    payload = _json_payload("same input")

    first, second = await codec.encode([payload, payload])

    assert first.data[:12] != second.data[:12]
    assert first.data != second.data


async def test_encrypted_and_foreign_payloads_pass_through_unchanged() -> None:
    codec = _codec({"k1": OLD}, "k1")
    plain = _json_payload({"recorded": "before encryption"})
    [sealed] = await codec.encode([plain])

    assert await codec.encode([sealed]) == [sealed]
    assert await codec.decode([plain]) == [plain]


async def test_old_payloads_decode_after_the_active_key_changes() -> None:
    new = base64.b64decode(generate_key())
    before = _codec({"2026-01": OLD}, "2026-01")
    after = _codec({"2026-01": OLD, "2026-07": new}, "2026-07")
    original = _json_payload({"phone": PHONE})

    [old_sealed] = await before.encode([original])
    [new_sealed] = await after.encode([original])

    assert new_sealed.metadata[KEY_ID_METADATA] == b"2026-07"
    assert await after.decode([old_sealed, new_sealed]) == [original, original]


async def test_unknown_key_id_is_a_clear_error_that_names_the_id_not_the_key() -> None:
    retired = base64.b64decode(generate_key())
    [sealed] = await _codec({"2025-01": retired}, "2025-01").encode([_json_payload(1)])

    with pytest.raises(UnknownKeyError) as info:
        await _codec({"2026-01": OLD}, "2026-01").decode([sealed])

    message = str(info.value)
    assert "'2025-01'" in message and "MOMOFLOW_CODEC__KEYS" in message
    assert base64.b64encode(retired).decode() not in message
    assert base64.b64encode(OLD).decode() not in message


async def test_altered_or_relabelled_payloads_do_not_decrypt() -> None:
    other = base64.b64decode(generate_key())
    codec = _codec({"a": OLD, "b": other}, "a")
    [sealed] = await codec.encode([_json_payload("x")])

    flipped = Payload()
    flipped.CopyFrom(sealed)
    flipped.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    relabelled = Payload()
    relabelled.CopyFrom(sealed)
    relabelled.metadata[KEY_ID_METADATA] = b"b"

    for bad in (flipped, relabelled):
        with pytest.raises(DecryptionError):
            await codec.decode([bad])


def test_codec_repr_and_settings_errors_never_show_keys() -> None:
    codec = _codec({"k1": OLD}, "k1")
    assert DEV_CODEC_KEY not in repr(codec) and "k1" in repr(codec)

    short = base64.b64encode(b"sixteen byte key").decode()
    with pytest.raises(ValidationError) as info:
        CodecSettings(keys={"k1": short}, active_key_id="k1")
    assert short not in str(info.value) and "32 bytes" in str(info.value)
    with pytest.raises(ValidationError, match="not one of the keys"):
        CodecSettings(keys={"k1": DEV_CODEC_KEY}, active_key_id="k2")


def test_production_refuses_the_development_codec_key_and_operator_token() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(env="production")
    assert f"codec.keys.{DEV_CODEC_KEY_ID}" in str(info.value)
    assert "codec.operator_tokens" in str(info.value)
    assert DEV_CODEC_KEY not in str(info.value)


async def test_failure_messages_are_encrypted_and_restored() -> None:
    converter = data_converter(CodecSettings())
    failure = Failure()

    await converter.encode_failure(
        ApplicationError(f"recipient {PHONE} unknown", type="InvalidRecipient"), failure
    )

    assert PHONE.encode() not in failure.SerializeToString()
    assert failure.application_failure_info.type == "InvalidRecipient"
    assert failure.encoded_attributes.metadata["encoding"] == ENCODING
    restored = await converter.decode_failure(failure)
    assert isinstance(restored, ApplicationError)
    assert restored.message == f"recipient {PHONE} unknown"


# --------------------------------------------------------------------------- on the stack


def _decode_request(payloads: list[Payload]) -> dict[str, Any]:
    body: dict[str, Any] = json_format.MessageToDict(Payloads(payloads=payloads))
    return body


def _texts(answer: httpx.Response) -> list[str]:
    """The decoded payloads' data, as text."""
    return [base64.b64decode(p.get("data", "")).decode() for p in answer.json()["payloads"]]


def _codec_call(
    stack: Stack,
    operation: str,
    payloads: list[Payload],
    *,
    token: str | None = DEV_OPERATOR_TOKEN,
    origin: str | None = None,
    **headers: str,
) -> httpx.Response:
    sent = {"X-Namespace": "default", **headers}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    if origin is not None:
        sent["Origin"] = origin
    with stack.gateway(key=None) as http:
        return http.post(f"/codec/{operation}", json=_decode_request(payloads), headers=sent)


async def _raw_history(stack: Stack, client: Client, reference: str) -> History:
    """The payout's history as anyone with Temporal access gets it: no codec."""
    await client.get_workflow_handle(payout_workflow_id("acme", reference)).result()
    plain = await Client.connect(stack.temporal_address)
    history = await plain.get_workflow_handle(payout_workflow_id("acme", reference)).fetch_history()
    return History(events=history.events)


def _started(history: History) -> Any:
    return history.events[0].workflow_execution_started_event_attributes


@pytest.fixture(scope="module")
def paid(stack: Stack) -> str:
    """One payout to a recipient whose number and name must not leak."""
    reference = f"CODEC-{uuid.uuid4().hex[:12]}"
    post_payout(stack, payout_body(reference, recipient={"phone": PHONE, "name": NAME}))
    stack.wait_for_payout(reference, {"succeeded"})
    return reference


async def test_raw_history_holds_no_phone_number_or_name(
    stack: Stack, client: Client, paid: str
) -> None:
    history = await _raw_history(stack, client, paid)
    raw = history.SerializeToString()
    as_json = json_format.MessageToJson(history)

    assert paid.encode() in raw  # the search below does look at the history's bytes
    for form in (*PHONE_FORMS, *NAME_PARTS):
        assert form.encode() not in raw, form
        assert form not in as_json, form
    started = _started(history)
    assert started.input.payloads[0].metadata["encoding"] == ENCODING
    # Memo (the request fingerprint) and the run's summary are payloads too: encrypted.
    assert all(p.metadata["encoding"] == ENCODING for p in started.memo.fields.values())
    assert history.events[0].user_metadata.summary.metadata["encoding"] == ENCODING
    # Search attributes stay readable for finding payments, and hold no personal data.
    indexed = {k: v.data.decode() for k, v in started.search_attributes.indexed_fields.items()}
    assert json.loads(indexed["MerchantReference"]) == paid
    assert not any(form in value for value in indexed.values() for form in PHONE_FORMS)


async def test_codec_endpoint_decodes_history_for_an_operator(
    stack: Stack, client: Client, paid: str
) -> None:
    history = await _raw_history(stack, client, paid)
    summary = history.events[0].user_metadata.summary

    answer = _codec_call(stack, "decode", [*_started(history).input.payloads, summary])

    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    workflow_input, summary = _texts(answer)
    assert PHONE in workflow_input and NAME in workflow_input
    assert "+221*****9876" in summary  # the run's summary carries the masked number only
    assert PHONE not in summary


async def test_codec_endpoints_refuse_callers_without_an_operator_token(
    stack: Stack, client: Client, paid: str
) -> None:
    payloads = list(_started(await _raw_history(stack, client, paid)).input.payloads)

    for token in (None, "mfop_not_a_real_token", ACME_KEY):
        for operation in ("decode", "encode"):
            answer = _codec_call(stack, operation, payloads, token=token)
            assert answer.status_code == 401, (token, operation, answer.text)
            assert PHONE not in answer.text
    with stack.gateway(key=None) as http:
        basic = http.post(
            "/codec/decode",
            json=_decode_request(payloads),
            headers={"Authorization": f"Basic {DEV_OPERATOR_TOKEN}"},
        )
    assert basic.status_code == 401


async def test_encode_then_decode_round_trips_through_the_gateway(stack: Stack) -> None:
    original = _json_payload({"phone": PHONE})

    encoded = _codec_call(stack, "encode", [original])
    assert encoded.status_code == 200, encoded.text
    [sealed] = json_format.ParseDict(encoded.json(), Payloads()).payloads
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID_METADATA] == DEV_CODEC_KEY_ID.encode()

    decoded = _codec_call(stack, "decode", [sealed])
    assert json_format.ParseDict(decoded.json(), Payloads()).payloads == [original]


def test_preflight_is_allowed_for_the_ui_origin_only(stack: Stack) -> None:
    request = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
    }
    with stack.gateway(key=None) as http:
        allowed = http.options("/codec/decode", headers={**request, "Origin": UI_ORIGIN})
        foreign = http.options(
            "/codec/decode", headers={**request, "Origin": "https://attacker.example"}
        )

    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == UI_ORIGIN
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert {h.strip() for h in allowed.headers["access-control-allow-headers"].split(",")} >= {
        "authorization",
        "content-type",
        "x-namespace",
    }
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert foreign.status_code == 403
    assert "access-control-allow-origin" not in foreign.headers


def test_browser_calls_from_a_foreign_origin_are_refused_even_with_a_token(stack: Stack) -> None:
    payload = _json_payload("x")

    from_ui = _codec_call(stack, "encode", [payload], origin=UI_ORIGIN)
    foreign = _codec_call(stack, "encode", [payload], origin="https://attacker.example")

    assert from_ui.status_code == 200
    assert from_ui.headers["access-control-allow-origin"] == UI_ORIGIN
    assert foreign.status_code == 403
    assert "access-control-allow-origin" not in foreign.headers


async def test_signed_in_operator_decodes_with_the_session_cookie(
    stack: Stack, client: Client, paid: str
) -> None:
    payloads = list(_started(await _raw_history(stack, client, paid)).input.payloads)
    body = _decode_request(payloads)
    headers = {"Origin": UI_ORIGIN, "X-Namespace": "default"}

    with stack.gateway(key=None) as http:
        refused = http.post("/codec/login", data={"token": "mfop_wrong"})
        signed_in = http.post("/codec/login", data={"token": DEV_OPERATOR_TOKEN})
        cookie = signed_in.cookies["momoflow_codec_session"]
        decoded = http.post("/codec/decode", json=body, headers=headers)
        version, session_id, expires, mac, operator = cookie.split(":")
        http.cookies.clear()
        longer = f"{version}:{session_id}:{int(expires) + 86400}:{mac}:{operator}"
        http.cookies.set("momoflow_codec_session", longer)
        forged = http.post("/codec/decode", json=body, headers=headers)

    assert refused.status_code == 401 and "momoflow_codec_session" not in refused.cookies
    assert signed_in.status_code == 200
    set_cookie = signed_in.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=strict" in set_cookie
    assert "path=/codec" in set_cookie
    assert DEV_OPERATOR_TOKEN not in cookie
    assert decoded.status_code == 200, decoded.text
    assert any(PHONE in text for text in _texts(decoded))
    assert forged.status_code == 401


async def test_path_token_endpoint_for_the_dev_ui(stack: Stack, client: Client, paid: str) -> None:
    payloads = list(_started(await _raw_history(stack, client, paid)).input.payloads)
    body = _decode_request(payloads)

    with stack.gateway(key=None) as http:
        good = http.post(f"/codec/token/{DEV_OPERATOR_TOKEN}/decode", json=body)
        bad = http.post("/codec/token/mfop_wrong/decode", json=body)

    assert good.status_code == 200 and any(PHONE in text for text in _texts(good))
    assert bad.status_code == 401


async def test_dev_ui_codec_endpoint_answers_the_requests_the_ui_sends(
    stack: Stack, client: Client, paid: str
) -> None:
    """The exact calls of Temporal UI 2.54 (the dev server's): a preflight, then a POST to
    ``<endpoint>/decode?preserveStorageRefs=true`` with ``X-Namespace`` and no credentials
    (checked in a headless Chromium too: see docs/operations.md)."""
    port = int(stack.gateway_url.rsplit(":", 1)[1])
    endpoint = _ui_codec_endpoint(Settings(env="local"), DevStackConfig(gateway_port=port))
    payloads = list(_started(await _raw_history(stack, client, paid)).input.payloads)

    with httpx.Client(timeout=15) as http:
        preflight = http.options(
            f"{endpoint}/decode",
            headers={
                "Origin": UI_ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-namespace",
            },
        )
        answer = http.post(
            f"{endpoint}/decode?preserveStorageRefs=true",
            json=_decode_request(payloads),
            headers={"Origin": UI_ORIGIN, "X-Namespace": "default"},
        )

    assert endpoint.startswith(f"{stack.gateway_url}/codec/")
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == UI_ORIGIN
    assert answer.status_code == 200, answer.text
    assert answer.headers["access-control-allow-origin"] == UI_ORIGIN
    assert any(PHONE in text for text in _texts(answer))


async def test_failure_message_of_a_refused_payout_is_encrypted_and_decodable(
    stack: Stack, client: Client, reference: str
) -> None:
    stack.configure_sandbox(balance=0)  # the create call is refused: a failed activity
    try:
        post_payout(stack, payout_body(reference, phone=PHONE))
        stack.wait_for_payout(reference, {"failed"})
    finally:
        stack.configure_sandbox(balance=100_000_000)
    history = await _raw_history(stack, client, reference)
    failed = [
        e.activity_task_failed_event_attributes.failure
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
    ]

    assert failed, "a refused create call is a failed activity"
    assert failed[0].message == "Encoded failure"
    assert failed[0].application_failure_info.type == "InsufficientBalance"
    assert failed[0].encoded_attributes.metadata["encoding"] == ENCODING
    assert PHONE.encode() not in history.SerializeToString()
    answer = _codec_call(stack, "decode", [failed[0].encoded_attributes])
    assert answer.status_code == 200, answer.text
    assert "insufficient_balance" in json.loads(_texts(answer)[0])["message"]


# --------------------------------------------------------------------------- rotation


def _gateway_with(codec: CodecSettings) -> httpx.AsyncClient:
    """A gateway app in this process with other codec settings (codec routes only)."""
    app = create_app(Settings(env="test", codec=codec))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


async def test_history_written_before_a_key_rotation_stays_readable(
    stack: Stack, client: Client, paid: str
) -> None:
    payloads = list(_started(await _raw_history(stack, client, paid)).input.payloads)
    operator = OperatorTokenEntry(operator="ops", token_sha256=hash_api_key("mfop_ops"))
    rotated = CodecSettings(
        keys={DEV_CODEC_KEY_ID: DEV_CODEC_KEY, "2026-07": generate_key()},
        active_key_id="2026-07",
        operator_tokens=[operator],
    )
    auth = {"Authorization": "Bearer mfop_ops"}

    async with _gateway_with(rotated) as http:
        decoded = await http.post("/codec/decode", json=_decode_request(payloads), headers=auth)
        encoded = await http.post(
            "/codec/encode", json=_decode_request([_json_payload(1)]), headers=auth
        )

    assert decoded.status_code == 200, decoded.text
    assert any(PHONE in text for text in _texts(decoded))
    [sealed] = json_format.ParseDict(encoded.json(), Payloads()).payloads
    assert sealed.metadata[KEY_ID_METADATA] == b"2026-07"


async def test_gateway_without_the_old_key_names_the_missing_key_id(
    stack: Stack, client: Client, paid: str
) -> None:
    payloads = list(_started(await _raw_history(stack, client, paid)).input.payloads)
    new_key = generate_key()
    only_new = CodecSettings(
        keys={"2026-07": new_key},
        active_key_id="2026-07",
        operator_tokens=[OperatorTokenEntry(operator="ops", token_sha256=hash_api_key("mfop_ops"))],
    )

    async with _gateway_with(only_new) as http:
        answer = await http.post(
            "/codec/decode",
            json=_decode_request(payloads),
            headers={"Authorization": "Bearer mfop_ops"},
        )

    assert answer.status_code == 400
    assert answer.json()["error"] == "unknown_key_id"
    assert f"'{DEV_CODEC_KEY_ID}'" in answer.json()["message"]
    assert new_key not in answer.text and DEV_CODEC_KEY not in answer.text


# --------------------------------------------------------------------------- https sessions


async def test_over_https_the_session_is_a_host_only_cookie_and_sign_in_and_out_are_logged(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    """Cookies ignore ports: a cookie for ``/codec`` on this host would also go to other
    services on it. Over https it is ``__Host-`` (https only, this exact host, ``Path=/``,
    never set by a subdomain), and both ends of a session leave a log line. (Sessions are
    checked against the sign-outs kept in Temporal: this gateway reaches the stack's.)"""
    app = create_app(
        Settings(env="test", temporal=TemporalSettings(address=stack.temporal_address))
    )
    transport = httpx.ASGITransport(app=app)
    caplog.set_level("INFO", logger="momoflow.gateway.codec")
    async with httpx.AsyncClient(transport=transport, base_url="https://gw.example") as http:
        signed_in = await http.post("/codec/login", data={"token": DEV_OPERATOR_TOKEN})
        page = await http.get("/codec/login")
        signed_out = await http.post("/codec/logout")

    assert signed_in.status_code == 200
    set_cookie = signed_in.headers["set-cookie"]
    assert set_cookie.startswith("__Host-momoflow_codec_session=")
    assert all(part in set_cookie.lower() for part in ("path=/;", "secure", "httponly"))
    assert "domain=" not in set_cookie.lower()
    # The host-only cookie is read back over https.
    assert "Signed in as <b>dev</b>" in page.text
    assert signed_out.status_code == 200
    assert "__Host-momoflow_codec_session=" in signed_out.headers["set-cookie"]
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("codec sign-in: operator dev") for m in messages), messages
    assert "codec sign-out: operator dev" in messages, messages


@pytest.mark.parametrize(("trusted", "expected"), [("10.9.9.9", 403), ("127.0.0.1", 200)])
def test_sign_in_behind_a_tls_proxy_needs_the_proxy_trusted(
    stack: Stack, tmp_path: Path, trusted: str, expected: int
) -> None:
    """Behind a proxy that ends TLS, the gateway sees http unless uvicorn trusts the proxy's
    ``X-Forwarded-Proto`` (``FORWARDED_ALLOW_IPS``): the form's https origin then looks
    foreign and sign-in is a 403 ``origin_not_allowed``. Trusted, it signs in, with the
    https (``__Host-``) cookie."""
    port = free_port()
    gateway = ManagedProcess(
        "gateway-proxied",
        [sys.executable, "-m", "momoflow.cli", "gateway", "--port", str(port)],
        log_path=tmp_path / "gateway.log",
        env={**stack.env, "FORWARDED_ALLOW_IPS": trusted},
        ready=http_ready(f"http://127.0.0.1:{port}/healthz"),
    )
    gateway.start(timeout=60)
    try:
        proxy_headers = {
            "Host": "gw.example",
            "X-Forwarded-Proto": "https",
            "Origin": "https://gw.example",
        }
        answer = httpx.post(
            f"http://127.0.0.1:{port}/codec/login",
            data={"token": DEV_OPERATOR_TOKEN},
            headers=proxy_headers,
            timeout=10,
        )
    finally:
        gateway.stop()

    assert answer.status_code == expected, answer.text
    if expected == 403:
        assert answer.json()["error"] == "origin_not_allowed"
    else:
        assert answer.headers["set-cookie"].startswith("__Host-momoflow_codec_session=")


async def test_a_session_signed_out_on_one_gateway_is_refused_by_every_gateway(
    stack: Stack, client: Client, paid: str
) -> None:
    """Logout revokes the session on the server: a cookie captured before it (a shared
    machine, another service on this host) no longer decodes, at this gateway or at any
    other replica, which learns it from Temporal."""
    payloads = list(_started(await _raw_history(stack, client, paid)).input.payloads)
    body = _decode_request(payloads)
    headers = {"Origin": UI_ORIGIN, "X-Namespace": "default"}
    replica_settings = Settings(
        env="test",
        temporal=TemporalSettings(address=stack.temporal_address),
        task_queue_prefix="momoflow-test",
    )
    replica = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(replica_settings)),
        base_url="http://127.0.0.1",
    )

    with stack.gateway(key=None) as http:
        http.post("/codec/login", data={"token": DEV_OPERATOR_TOKEN}).raise_for_status()
        captured = http.cookies["momoflow_codec_session"]
        before = http.post("/codec/decode", json=body, headers=headers)
        async with replica:
            replica.cookies.set("momoflow_codec_session", captured, path="/codec")
            at_replica = await replica.post("/codec/decode", json=body, headers=headers)
            signed_out = http.post("/codec/logout")
            http.cookies.set("momoflow_codec_session", captured, path="/codec")
            after = http.post("/codec/decode", json=body, headers=headers)

            async def replica_refuses() -> bool:
                answer = await replica.post("/codec/decode", json=body, headers=headers)
                return answer.status_code == 401

            deadline = asyncio.get_running_loop().time() + 15
            while not await replica_refuses():
                assert asyncio.get_running_loop().time() < deadline, "the replica still decodes"
                await asyncio.sleep(0.5)

    assert before.status_code == 200 and at_replica.status_code == 200, at_replica.text
    assert signed_out.status_code == 200, signed_out.text
    assert after.status_code == 401
