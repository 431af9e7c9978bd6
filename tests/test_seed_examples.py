"""Every example in the provider documents (`shared/seeds/`), verbatim, through the
adapters' builders and parsers: what momoflow makes of each one.

The documents are the truth, not our sandboxes: where an example does not parse, the
adapter is wrong. One section per provider:

CaurisFlux (seeds 000, 001, 002)
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~

Every example of the CaurisFlux seed documents (seeds 000, 001 and 002: S1, S2, S3),
fed verbatim through the adapter's builders and parsers.

The JSON texts below are pasted from the seed files as they are (issue 13, part 3): the
tests never read ``shared/``. Each says which seed and section it comes from. Tables are
transcribed row by row.

MOBILE-PAY (seed 003)
~~~~~~~~~~~~~~~~~~~~~

Seed 003 (MOBILE-PAY's one API page, in French; providers.md M1): every example request
and answer, pasted verbatim, through the adapter's builders and parsers.

The texts are copied from ``shared/seeds/003_1eee5804edd65310.txt`` rather than read from
it, so that CI does not depend on ``shared/``. Seed 003 documents request bodies, query
parameters, three webhook bodies and the 429 of the rate limit; it shows no answer of any
API call, so the create, list and balance answers are not checked here.

NovaSend (seed 004)
~~~~~~~~~~~~~~~~~~~

Seed 004 (NovaSend's older payin page, in French; providers.md N3): every example request
and answer, pasted verbatim, through the adapter's builders and parsers.

The texts are copied from ``shared/seeds/004_65c4800dc73b1209.txt`` rather than read from
it, so that CI does not depend on ``shared/``. Seed 004 shows no error answer; its reading
rules ("Exemple de Lecture") are checked on its status example instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from momoflow.models import (
    InitiatePayinInput,
    InitiatePayoutInput,
    ListTransactionsInput,
    Operator,
    PayinMode,
    PaymentStatus,
    ProviderName,
    StatusLookup,
)
from momoflow.money import Country, Currency
from momoflow.providers import caurisflux as cf
from momoflow.providers import errors
from momoflow.providers.caurisflux.wire import CaurisFluxPaymentRequest
from momoflow.providers.mobilepay import MobilePayClient, MobilePayCredentials
from momoflow.providers.mobilepay import mapping as mp
from momoflow.providers.mobilepay.attempts import proves_not_executed
from momoflow.providers.mobilepay.wire import MobilePayLoginRequest
from momoflow.providers.novasend import mapping as ns
from momoflow.providers.novasend.wire import dump

# ---------------------------------------------------------------- CaurisFlux (seeds 000, 001, 002)


# Seed 000, "Format des requêtes": the body of the curl example.
S1_PAYMENT_REQUEST = """{
"type": "direct",
"provider": "wave",
"amount": 5000,
"currency": "XOF",
"country": "SN",
"customerPhone": "+221771234567",
"externalReference": "ORDER-001"
}"""

# Seed 000, "Format des réponses", "Réponse réussie".
S1_SUCCESS = """{
"success": true,
"data": {
"transactionId": "TX000007272",
"status": "pending",
"amount": 5000,
"currency": "XOF",
"redirectUrl": "https://pay.wave.com/c/sn/~abc123",
"createdAt": "2024-01-15T10:30:00Z"
}
}"""

# Seed 000, "Réponse d'erreur" (and again, identical, under "Gestion des erreurs").
S1_ERROR = """{
"statusCode": 400,
"message": "Le montant doit être supérieur à 100 XOF",
"error": "Bad Request"
}"""

# Seed 000, "Pagination". ``[...]`` is the document's own elision, not JSON.
S1_PAGINATION = """{
"data": [...],
"meta": {
"total": 150,
"page": 1,
"limit": 20,
"totalPages": 8
}
}"""

# Seed 000, "Rate limiting": "Les en-têtes de réponse incluent :".
S1_RATE_LIMIT_HEADERS = """X-RateLimit-Limit: 100
X-RateLimit-Remaining: 95
X-RateLimit-Reset: 1705312800"""

# Seed 000, "Idempotence": the curl example's key header and its (elided) body.
S1_IDEMPOTENCY_HEADER = "X-Idempotency-Key: ORDER-12345"
S1_IDEMPOTENT_BODY = """{"amount": 5000, "type": "direct", ...}"""

# Seed 000, "Authentification", options 1 and 2.
S1_AUTH_OPTION_1 = "X-API-Key: pk_test_xxx:sk_test_xxx"
S1_AUTH_OPTION_2 = "Authorization: Bearer pk_test_xxx:sk_test_xxx"

# Seed 000, "Codes de statut HTTP" (the error rows).
S1_HTTP_ERRORS = [
    (400, "Requête invalide"),
    (401, "Non authentifié"),
    (403, "Non autorisé"),
    (404, "Ressource non trouvée"),
    (422, "Erreur de validation"),
    (429, "Trop de requêtes"),
    (500, "Erreur serveur"),
]

# Seed 000, "Codes d'erreur courants".
S1_ERROR_CODES = [
    ("insufficient_funds", "Solde insuffisant"),
    ("invalid_phone", "Numéro de téléphone invalide"),
    ("invalid_amount", "Montant invalide"),
    ("provider_error", "Erreur du fournisseur"),
    ("limit_exceeded", "Limite dépassée"),
]

# --------------------------------------------------------------------------- seed 001 (S2)

# Seed 001, "Paiement Direct": the body of the curl example.
S2_DIRECT_REQUEST = """{
    "type": "direct",
    "provider": "wave",
    "country": "SN",
    "amount": 10000,
    "currency": "XOF",
    "externalReference": "COMMANDE-12345",
    "customerPhone": "+221771234567",
    "customerName": "Amadou Diallo",
    "customerEmail": "amadou@example.com",
    "description": "Achat sur MaBoutique.sn",
    "callbackUrl": "https://votresite.com/webhooks/cauris",
    "returnUrl": "https://votresite.com/paiement/succes",
    "cancelUrl": "https://votresite.com/paiement/annule",
    "metadata": {
      "orderId": "12345",
      "customerType": "premium"
    }
  }"""

# Seed 001, "Paiement Checkout": the body of the curl example.
S2_CHECKOUT_REQUEST = """{
    "type": "checkout",
    "amount": 25000,
    "currency": "XOF",
    "externalReference": "PANIER-67890",
    "customerName": "Fatou Sow",
    "customerEmail": "fatou@example.com",
    "description": "Panier #67890 - 3 articles",
    "callbackUrl": "https://votresite.com/webhooks/cauris",
    "returnUrl": "https://votresite.com/commande/67890/merci",
    "cancelUrl": "https://votresite.com/panier"
  }"""

# Seed 001, "Réponse".
S2_RESPONSE = """{
  "success": true,
  "data": {
    "transactionId": "TX000007272",
    "status": "pending",
    "type": "collect",
    "amount": 10000,
    "currency": "XOF",
    "paymentMethod": {
      "code": "wave",
      "name": "Wave",
      "logoUrl": "https://s3.denkmako.com/cauris/logos/wave.png"
    },
    "country": "SN",
    "redirectUrl": "https://pay.wave.com/c/sn/~abc123",
    "externalReference": "COMMANDE-12345",
    "expiresAt": "2024-01-15T12:30:00.000Z",
    "createdAt": "2024-01-15T12:00:00.000Z",
    "metadata": {
      "orderId": "12345",
      "customerType": "premium"
    },
    "qrCode": null,
    "deepLinks": {
      "wave": "wave://pay?token=abc123"
    }
  }
}"""

# Seed 001, "Erreurs".
S2_ERROR = """{
  "statusCode": 400,
  "message": "Le montant doit être supérieur à 100 XOF",
  "error": "Bad Request"
}"""

# Seed 001, "Erreurs": the table "Code / Message / Solution".
S2_ERROR_ROWS = [
    (400, "Montant invalide"),
    (400, "Provider non disponible"),
    (401, "Non authentifié"),
]

# --------------------------------------------------------------------------- seed 002 (S3)

# Seed 002, "Réponse - Payout complété".
S3_COMPLETED = """{
  "transactionId": "POMLWYG1W59FDCEA",
  "externalReference": "PAY-2024-001",
  "type": "payout",
  "status": "completed",
  "amount": 50000,
  "currency": "XOF",
  "method": "mobile_money",
  "mobileProvider": "wave",
  "recipientPhone": "+221771234567",
  "recipientName": "Amadou Diallo",
  "providerReference": "WAVE-PAY-123456",
  "message": "Payout effectué avec succès",
  "errorCode": null,
  "errorMessage": null,
  "completedAt": "2024-01-15T14:02:00.000Z",
  "createdAt": "2024-01-15T14:00:00.000Z",
  "updatedAt": "2024-01-15T14:02:00.000Z",
  "metadata": {
    "supplierId": "SUP-123",
    "invoiceId": "INV-456"
  }
}"""

# Seed 002, "Réponse - Payout en attente".
S3_PENDING = """{
  "transactionId": "POMLWYG1W59FDCEA",
  "externalReference": "PAY-2024-001",
  "type": "payout",
  "status": "pending",
  "amount": 50000,
  "currency": "XOF",
  "method": "mobile_money",
  "mobileProvider": "wave",
  "recipientPhone": "+221771234567",
  "recipientName": "Amadou Diallo",
  "message": "Payout en cours de traitement",
  "errorCode": null,
  "errorMessage": null,
  "completedAt": null,
  "createdAt": "2024-01-15T14:00:00.000Z",
  "updatedAt": "2024-01-15T14:00:00.000Z",
  "metadata": null
}"""

# Seed 002, "Réponse - Payout échoué".
S3_FAILED = """{
  "transactionId": "POMLWYG1W59FDCEA",
  "externalReference": "PAY-2024-003",
  "type": "payout",
  "status": "failed",
  "amount": 100000,
  "currency": "XOF",
  "method": "mobile_money",
  "mobileProvider": "wave",
  "recipientPhone": "+221770000000",
  "recipientName": "Test User",
  "message": "Payout échoué",
  "errorCode": "invalid_recipient",
  "errorMessage": "Le numéro de téléphone n'est pas associé à un compte Wave actif",
  "completedAt": null,
  "createdAt": "2024-01-15T14:00:00.000Z",
  "updatedAt": "2024-01-15T14:05:00.000Z",
  "metadata": null
}"""

# Seed 002, "Statuts possibles".
S3_STATUSES = [
    ("pending", "En attente de traitement"),
    ("processing", "En cours de traitement"),
    ("completed", "Payout réussi"),
    ("failed", "Payout échoué"),
    ("cancelled", "Payout annulé"),
]

#: Final payout statuses [seed 002, "Statuts possibles"; providers.md 1.4].
PAYOUT_FINAL = {"completed", "failed", "cancelled"}

# Seed 002, "Codes d'erreur".
S3_ERROR_CODES = [
    ("invalid_recipient", "Bénéficiaire invalide"),
    ("insufficient_balance", "Solde insuffisant (votre compte)"),
    ("provider_error", "Erreur du provider"),
    ("limit_exceeded", "Limite de payout dépassée"),
    ("account_blocked", "Compte bénéficiaire bloqué"),
]


#: Every field of ``POST /payments/initiate`` [seed 001, "Paramètres"].
S2_FIELDS = {
    "type",
    "amount",
    "externalReference",
    "provider",
    "country",
    "customerPhone",
    "currency",
    "customerName",
    "customerEmail",
    "description",
    "callbackUrl",
    "returnUrl",
    "cancelUrl",
    "metadata",
}

#: Fields of the documents that momoflow's payin input does not carry.
NOT_IN_MOMOFLOW_INPUT = {"customerEmail", "metadata"}


def _dump(model: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = json.loads(model.model_dump_json(by_alias=True, exclude_none=True))
    return dumped


def _payin(mode: PayinMode, **fields: Any) -> InitiatePayinInput:
    base: dict[str, Any] = {
        "provider": ProviderName.CAURISFLUX,
        "mode": mode,
        "idempotency_key": "k",
        "currency": Currency.XOF,
        "country": Country.SN,
    }
    return InitiatePayinInput(**{**base, **fields})


def _classify(status: int, body: str | bytes, op: str = "initiate_payout", **headers: str) -> Any:
    raw = body.encode() if isinstance(body, str) else body
    return cf.classify_error(op, status, raw, headers, now=1_705_312_800.0)


def _nest_body(status: int, message: str, error: str = "Error") -> str:
    """The documented error envelope [seed 000] around a table row's message."""
    return json.dumps({"statusCode": status, "message": message, "error": error})


# --------------------------------------------------------------------------- seed 000 tests


def test_s1_payment_request_is_what_momoflow_builds() -> None:
    seed = json.loads(S1_PAYMENT_REQUEST)
    assert _dump(CaurisFluxPaymentRequest.model_validate(seed)) == seed
    built = _dump(
        cf.build_payment_request(
            _payin(
                PayinMode.DIRECT,
                operator=Operator.WAVE,
                amount=5000,
                customer_phone="+221771234567",
                external_reference="ORDER-001",
            )
        )
    )
    # momoflow always describes the payment (an optional field): by its reference.
    assert built == {**seed, "description": "ORDER-001"}


def test_s1_success_envelope_is_unwrapped() -> None:
    created = cf.parse_payment_response(201, S1_SUCCESS.encode())
    tx = created.transaction
    assert tx.provider_transaction_id == "TX000007272"
    assert tx.status is PaymentStatus.PENDING and tx.raw_status == "pending"
    assert tx.amount == 5000 and isinstance(tx.amount, int)
    assert tx.currency is Currency.XOF
    assert tx.external_reference is None  # this example does not echo it
    assert created.payment_url == "https://pay.wave.com/c/sn/~abc123"
    assert created.deep_links == {} and created.qr_code is None and created.expires_at is None


@pytest.mark.parametrize("op", ["initiate_payin", "initiate_payout", "quote_payout"])
def test_s1_error_example_is_a_final_invalid_amount(op: str) -> None:
    error = _classify(400, S1_ERROR, op)
    assert type(error) is errors.InvalidAmount
    assert error.http_status == 400 and error.provider_code is None
    assert error.message == "Le montant doit être supérieur à 100 XOF"


def test_s1_pagination_example_is_followed_to_its_next_page() -> None:
    items = [{"code": f"item-{n}"} for n in range(20)]
    body = S1_PAGINATION.replace("[...]", json.dumps(items))
    listing = cf.parse_list_page(200, body.encode(), operation="availability", page=1)
    assert listing.data == items
    assert listing.meta is not None
    assert (listing.meta.total, listing.meta.limit, listing.meta.total_pages) == (150, 20, 8)
    assert cf.next_page(listing) == 2
    assert cf.LIST_PAGE_LIMIT == 100  # the documented maximum of ``limit``
    with pytest.raises(errors.ProviderProtocolError):
        cf.parse_list_page(200, body.encode(), operation="availability", page=2)


@pytest.mark.parametrize(
    ("status", "meaning", "op", "expected"),
    [
        (400, "Requête invalide", "initiate_payout", errors.InvalidRequest),
        (401, "Non authentifié", "initiate_payout", errors.ProviderAuthError),
        (403, "Non autorisé", "initiate_payout", errors.ProviderAuthError),
        # A payout we created that the status endpoint cannot find yet: read again.
        (404, "Ressource non trouvée", "payout_status", errors.ProviderUnavailable),
        (422, "Erreur de validation", "initiate_payout", errors.InvalidRequest),
        (429, "Trop de requêtes", "initiate_payout", errors.ProviderRateLimited),
        (500, "Erreur serveur", "initiate_payout", errors.ProviderUnavailable),
    ],
)
def test_s1_http_status_codes(status: int, meaning: str, op: str, expected: type) -> None:
    assert (status, meaning) in S1_HTTP_ERRORS
    assert type(_classify(status, _nest_body(status, meaning), op)) is expected


@pytest.mark.parametrize(
    ("code", "on_payout", "on_payin"),
    [
        ("insufficient_funds", errors.InsufficientBalance, errors.InsufficientFunds),
        ("invalid_phone", errors.InvalidRecipient, errors.InvalidRecipient),
        ("invalid_amount", errors.InvalidAmount, errors.InvalidAmount),
        ("provider_error", errors.UpstreamError, errors.UpstreamError),
        ("limit_exceeded", errors.LimitExceeded, errors.LimitExceeded),
    ],
)
def test_s1_error_codes(code: str, on_payout: type, on_payin: type) -> None:
    description = dict(S1_ERROR_CODES)[code]
    body = json.dumps({"statusCode": 422, "message": description, "error": "x", "code": code})
    assert type(_classify(422, body, "initiate_payout")) is on_payout
    assert type(_classify(422, body, "initiate_payin")) is on_payin
    assert {c for c, _ in S1_ERROR_CODES} <= set(cf.DOCUMENTED_ERROR_CODES)


def test_s1_rate_limit_headers_give_the_wait() -> None:
    headers = dict(line.split(": ", 1) for line in S1_RATE_LIMIT_HEADERS.splitlines())
    assert headers == {
        "X-RateLimit-Limit": "100",
        "X-RateLimit-Remaining": "95",
        "X-RateLimit-Reset": "1705312800",
    }
    limited = cf.classify_error(
        "initiate_payout",
        429,
        _nest_body(429, "Trop de requêtes").encode(),
        headers,
        now=1_705_312_800.0 - 42,
    )
    assert isinstance(limited, errors.ProviderRateLimited)
    assert limited.retry_after == 42


def test_s1_idempotency_example() -> None:
    name, value = S1_IDEMPOTENCY_HEADER.split(": ", 1)
    assert name == cf.IDEMPOTENCY_HEADER
    assert value == "ORDER-12345"  # a business reference: momoflow's keys derive from one
    known = json.loads(S1_IDEMPOTENT_BODY.replace(", ...", ""))
    built = _dump(
        cf.build_payment_request(
            _payin(
                PayinMode.DIRECT,
                operator=Operator.WAVE,
                amount=5000,
                customer_phone="+221771234567",
                external_reference="ORDER-12345",
            )
        )
    )
    assert {k: built[k] for k in known} == known


def test_s1_authentication_examples() -> None:
    credentials = cf.CaurisFluxCredentials(
        public_key="pk_test_xxx", secret_key="sk_test_xxx", webhook_secret="w"
    )
    name, value = S1_AUTH_OPTION_1.split(": ", 1)
    assert (name, value) == (cf.AUTH_HEADER, credentials.auth_header())
    assert S1_AUTH_OPTION_2 == f"Authorization: Bearer {credentials.auth_header()}"


# --------------------------------------------------------------------------- seed 001 tests


def test_s2_direct_request() -> None:
    seed = json.loads(S2_DIRECT_REQUEST)
    assert _dump(CaurisFluxPaymentRequest.model_validate(seed)) == seed
    built = _dump(
        cf.build_payment_request(
            _payin(
                PayinMode.DIRECT,
                operator=Operator.WAVE,
                amount=10000,
                external_reference="COMMANDE-12345",
                customer_phone="+221771234567",
                customer_name="Amadou Diallo",
                description="Achat sur MaBoutique.sn",
                callback_url="https://votresite.com/webhooks/cauris",
                return_url="https://votresite.com/paiement/succes",
                cancel_url="https://votresite.com/paiement/annule",
            )
        )
    )
    assert built == {k: v for k, v in seed.items() if k not in NOT_IN_MOMOFLOW_INPUT}


def test_s2_checkout_request() -> None:
    seed = json.loads(S2_CHECKOUT_REQUEST)
    assert _dump(CaurisFluxPaymentRequest.model_validate(seed)) == seed
    built = _dump(
        cf.build_payment_request(
            _payin(
                PayinMode.CHECKOUT,
                amount=25000,
                external_reference="PANIER-67890",
                customer_name="Fatou Sow",
                description="Panier #67890 - 3 articles",
                callback_url="https://votresite.com/webhooks/cauris",
                return_url="https://votresite.com/commande/67890/merci",
                cancel_url="https://votresite.com/panier",
            )
        )
    )
    # momoflow also names the country (a field of the same endpoint, required for direct).
    assert built == {
        **{k: v for k, v in seed.items() if k not in NOT_IN_MOMOFLOW_INPUT},
        "country": "SN",
    }
    assert set(built) <= S2_FIELDS


def test_s2_response() -> None:
    created = cf.parse_payment_response(201, S2_RESPONSE.encode())
    tx = created.transaction
    assert tx.provider == ProviderName.CAURISFLUX
    assert tx.provider_transaction_id == "TX000007272"
    assert tx.external_reference == "COMMANDE-12345"
    assert tx.status is PaymentStatus.PENDING and tx.raw_status == "pending"
    assert tx.amount == 10000 and tx.currency is Currency.XOF
    assert tx.fees is None and tx.failure_code is None
    assert created.payment_url == "https://pay.wave.com/c/sn/~abc123"
    assert created.deep_links == {"wave": "wave://pay?token=abc123"}
    assert created.qr_code is None
    assert created.expires_at == datetime(2024, 1, 15, 12, 30, tzinfo=UTC)
    assert created.confirmation_required is True


def test_s2_error_example() -> None:
    error = _classify(400, S2_ERROR, "initiate_payin")
    assert type(error) is errors.InvalidAmount
    assert error.message == "Le montant doit être supérieur à 100 XOF"


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (0, errors.InvalidAmount),
        (1, errors.OperatorUnavailable),
        (2, errors.ProviderAuthError),
    ],
)
def test_s2_error_table(row: int, expected: type) -> None:
    status, message = S2_ERROR_ROWS[row]
    assert type(_classify(status, _nest_body(status, message), "initiate_payin")) is expected


# --------------------------------------------------------------------------- seed 002 tests


def test_s3_completed_payout() -> None:
    tx = cf.parse_transaction_response(200, S3_COMPLETED.encode(), operation="payout_status")
    assert tx.provider_transaction_id == "POMLWYG1W59FDCEA"
    assert tx.external_reference == "PAY-2024-001"
    assert tx.status is PaymentStatus.SUCCEEDED and tx.raw_status == "completed"
    assert tx.amount == 50000 and isinstance(tx.amount, int)
    assert tx.currency is Currency.XOF
    assert tx.provider_reference == "WAVE-PAY-123456"
    assert tx.failure_code is None and tx.failure_message is None
    assert tx.fees is None and tx.net_amount is None  # the status answer has no fees
    assert tx.updated_at == datetime(2024, 1, 15, 14, 2, tzinfo=UTC)


def test_s3_pending_payout() -> None:
    tx = cf.parse_transaction_response(200, S3_PENDING.encode(), operation="payout_status")
    assert tx.status is PaymentStatus.PENDING and tx.raw_status == "pending"
    assert tx.amount == 50000
    assert tx.provider_reference is None and tx.failure_code is None


def test_s3_failed_payout() -> None:
    tx = cf.parse_transaction_response(200, S3_FAILED.encode(), operation="payout_status")
    assert tx.external_reference == "PAY-2024-003"
    assert tx.status is PaymentStatus.FAILED and tx.raw_status == "failed"
    assert tx.amount == 100000
    assert tx.failure_code == "invalid_recipient"
    assert tx.failure_message == "Le numéro de téléphone n'est pas associé à un compte Wave actif"
    assert tx.updated_at == datetime(2024, 1, 15, 14, 5, tzinfo=UTC)


@pytest.mark.parametrize("example", [S3_COMPLETED, S3_PENDING, S3_FAILED])
def test_s3_bare_objects_and_the_s1_envelope_mean_the_same(example: str) -> None:
    """S3 shows bare objects; S1 says every answer is ``{success, data}``: both parse."""
    wrapped = json.dumps({"success": True, "data": json.loads(example)}).encode()
    bare = cf.parse_transaction_response(200, example.encode(), operation="payout_status")
    assert cf.parse_transaction_response(200, wrapped, operation="payout_status") == bare


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("pending", PaymentStatus.PENDING),
        ("processing", PaymentStatus.PENDING),
        ("completed", PaymentStatus.SUCCEEDED),
        ("failed", PaymentStatus.FAILED),
        ("cancelled", PaymentStatus.CANCELLED),
    ],
)
def test_s3_statuses(status: str, expected: PaymentStatus) -> None:
    assert status in dict(S3_STATUSES)
    assert cf.map_status(status) is expected
    body = json.loads(S3_PENDING)
    body["status"] = status
    tx = cf.parse_transaction_response(200, json.dumps(body).encode(), operation="payout_status")
    assert tx.status is expected and tx.status.is_final == (status in PAYOUT_FINAL)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("invalid_recipient", errors.InvalidRecipient),
        ("insufficient_balance", errors.InsufficientBalance),
        ("provider_error", errors.UpstreamError),
        ("limit_exceeded", errors.LimitExceeded),
        ("account_blocked", errors.RecipientAccountBlocked),
    ],
)
def test_s3_error_codes(code: str, expected: type) -> None:
    """Each code as the failed payout's ``errorCode`` (a final failure with that code) and
    as the answer to a create (what it means there)."""
    description = dict(S3_ERROR_CODES)[code]
    body = json.loads(S3_FAILED)
    body.update(errorCode=code, errorMessage=description)
    tx = cf.parse_transaction_response(200, json.dumps(body).encode(), operation="payout_status")
    assert tx.status is PaymentStatus.FAILED
    assert (tx.failure_code, tx.failure_message) == (code, description)
    answer = json.dumps({"statusCode": 422, "message": description, "error": "x", "code": code})
    assert type(_classify(422, answer)) is expected


# --------------------------------------------------------------------------- MOBILE-PAY (seed 003)


# Seed 003, "Exemple d'authentification" (the curl command), verbatim.
AUTH_EXAMPLE = """\
curl -X GET https://api.mobile-pay.ci/api/v1/balance \\
  -H "Authorization: Bearer sk_live_abc123def456" \\
  -H "Content-Type: application/json\""""

# Seed 003, POST /api/v1/auth/login, the -d body, verbatim: the e-mail address is the
# page's own scraping artefact, with a no-break space (written \u00a0 here).
LOGIN_REQUEST = '{"email":"[email\u00a0protected]","password":"password123"}'

# Seed 003, POST /api/v1/transfers/local, the -d body, verbatim.
LOCAL_TRANSFER_REQUEST = (
    '{"recipient_phone":"+225XXXXXXXXX","amount":10000,"description":"Payment"}'
)

# Seed 003, POST /api/v1/transfers/international, the -d body, verbatim.
INTERNATIONAL_TRANSFER_REQUEST = (
    '{"recipient_country":"SN","recipient_phone":"+221XXXXXXXXX","amount":50000}'
)

# Seed 003, POST /api/v1/payments/qr, the -d body, verbatim.
QR_PAYMENT_REQUEST = '{"amount":25000,"description":"Purchase","merchant_id":"MERCHANT123"}'

# Seed 003, GET /api/v1/transactions, the URL of the curl command, verbatim.
TRANSACTIONS_URL = "https://api.mobile-pay.ci/api/v1/transactions?limit=10&offset=0"

# Seed 003, GET /api/v1/balance, the URL of the curl command, verbatim.
BALANCE_URL = "https://api.mobile-pay.ci/api/v1/balance"

# Seed 003, Webhooks, "transfer.completed", verbatim.
TRANSFER_COMPLETED = """\
{
  "event": "transfer.completed",
  "timestamp": "2026-02-26T10:30:00Z",
  "data": {
    "transfer_id": "TRF123456",
    "amount": 10000,
    "currency": "FCFA",
    "status": "completed"
  }
}"""

# Seed 003, Webhooks, "payment.received", verbatim.
PAYMENT_RECEIVED = """\
{
  "event": "payment.received",
  "timestamp": "2026-02-26T10:30:00Z",
  "data": {
    "payment_id": "PAY123456",
    "amount": 25000,
    "payer": "+225XXXXXXXXX",
    "status": "received"
  }
}"""

# Seed 003, Webhooks, "transaction.failed", verbatim.
TRANSACTION_FAILED = """\
{
  "event": "transaction.failed",
  "timestamp": "2026-02-26T10:30:00Z",
  "data": {
    "transaction_id": "TXN123456",
    "error_code": "INSUFFICIENT_FUNDS",
    "error_message": "Solde insuffisant"
  }
}"""

# Seed 003, "Limites de taux", verbatim: the only error answer the page describes.
RATE_LIMIT_TEXT = (
    "Si vous dépassez les limites de taux, vous recevrez une réponse HTTP 429 (Too Many "
    "Requests). Attendez avant de réessayer."
)

# --------------------------------------------------------------------------- helpers

HOOK_TOKEN = "mpwh_seed_token"
REF = "payout-acme-SEED-3"
#: A real number stands for the page's ``+225XXXXXXXXX`` placeholder.
CI_PHONE = "+2250701020304"
SN_PHONE = "+221771234567"


def _balance(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"balance": 0, "currency": "XOF"})


def _client(
    answer: Callable[[httpx.Request], httpx.Response] = _balance,
) -> tuple[MobilePayClient, list[httpx.Request]]:
    """The adapter over canned answers; the list keeps every request it sent."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request)

    client = MobilePayClient(
        httpx.AsyncClient(transport=httpx.MockTransport(handle)),
        base_url="https://api.mobile-pay.ci/api/v1",
        credentials=MobilePayCredentials(
            api_token="sk_live_abc123def456", webhook_token=HOOK_TOKEN
        ),
        merchant_id="MERCHANT123",
    )
    return client, seen


def _payout(**changes: Any) -> InitiatePayoutInput:
    values: dict[str, Any] = {
        "provider": ProviderName.MOBILEPAY,
        "external_reference": REF,
        "idempotency_key": "unused-by-mobilepay",
        "quote_id": None,
        "currency": Currency.XOF,
        "operator": Operator.ORANGE_MONEY,
        "recipient_name": "Awa Kone",
    }
    return InitiatePayoutInput(**{**values, **changes})


def _sent(body: Any) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(body.model_dump_json(exclude_none=True))
    return parsed


# --------------------------------------------------------------------------- requests


async def test_auth_example_every_call_carries_the_api_token_as_bearer() -> None:
    assert "-X GET https://api.mobile-pay.ci/api/v1/balance" in AUTH_EXAMPLE
    client, seen = _client()
    await client.balances()
    (request,) = seen
    assert str(request.url) == BALANCE_URL
    assert f'-H "Authorization: {request.headers["Authorization"]}"' in AUTH_EXAMPLE


def test_login_example_reads_as_our_login_body() -> None:
    documented = json.loads(LOGIN_REQUEST)
    login = MobilePayLoginRequest.model_validate_json(LOGIN_REQUEST)
    assert json.loads(login.model_dump_json()) == documented
    assert "password123" not in repr(login)


def test_local_transfer_example_has_every_documented_field_and_our_marker() -> None:
    documented = json.loads(LOCAL_TRANSFER_REQUEST)
    body = mp.build_transfer_request(
        _payout(
            amount=documented["amount"],
            country=Country.CI,
            recipient_phone=CI_PHONE,
            description=documented["description"],
        )
    )
    assert mp.transfer_path(body) == "/transfers/local"
    sent = _sent(body)
    assert set(documented) <= set(sent)
    assert sent["amount"] == 10000 and isinstance(sent["amount"], int)
    assert sent["recipient_phone"] == CI_PHONE
    # The documented free text is kept, behind the marker that identifies the transfer.
    assert sent["description"] == f"{mp.marker(REF)} Payment [ref {REF}]"
    # Assumed, not documented (3.4.5): MOBILE-PAY may ignore it, the marker suffices.
    assert set(sent) - set(documented) == {"metadata"}


def test_international_transfer_example_has_every_documented_field() -> None:
    documented = json.loads(INTERNATIONAL_TRANSFER_REQUEST)
    body = mp.build_transfer_request(
        _payout(
            amount=documented["amount"],
            country=Country(documented["recipient_country"]),
            recipient_phone=SN_PHONE,
            description="",
        )
    )
    assert mp.transfer_path(body) == "/transfers/international"
    sent = _sent(body)
    assert set(documented) <= set(sent)
    assert (sent["recipient_country"], sent["amount"]) == ("SN", 50000)
    # M1 lists no description here: sending one is an assumption; if MOBILE-PAY drops it,
    # no marker can be read and a lost answer is reconciled, never re-sent.
    assert set(sent) - set(documented) == {"description", "metadata"}
    assert sent["description"].startswith(mp.marker(REF))


def test_qr_payment_example_has_every_documented_field() -> None:
    documented = json.loads(QR_PAYMENT_REQUEST)
    body = mp.build_qr_payment_request(
        InitiatePayinInput(
            provider=ProviderName.MOBILEPAY,
            mode=PayinMode.QR,
            external_reference="payin-acme-SEED-3",
            idempotency_key="unused",
            amount=documented["amount"],
            currency=Currency.XOF,
            country=Country.CI,
            description=documented["description"],
        ),
        merchant_id=documented["merchant_id"],
    )
    sent = _sent(body)
    assert set(sent) - set(documented) == {"metadata"}
    assert (sent["amount"], sent["merchant_id"]) == (25000, "MERCHANT123")
    assert sent["description"] == (
        f"{mp.marker('payin-acme-SEED-3')} Purchase [ref payin-acme-SEED-3]"
    )


async def test_transactions_example_uses_the_documented_query_parameters() -> None:
    documented = dict(parse_qsl(urlsplit(TRANSACTIONS_URL).query))
    params = mp.build_list_params(
        ListTransactionsInput(
            provider=ProviderName.MOBILEPAY,
            start=date(2026, 2, 26),
            end=date(2026, 2, 26),
            limit=int(documented["limit"]),
            offset=int(documented["offset"]),
        )
    )
    assert {k: str(v) for k, v in params.items() if k in documented} == documented
    # The other two are M1's documented date parameters.
    assert set(params) - set(documented) == {"start_date", "end_date"}

    def answer(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": [], "total": 0, "limit": 10, "offset": 0})

    client, sent = _client(answer)
    await client.list_transactions(
        ListTransactionsInput(
            provider=ProviderName.MOBILEPAY,
            start=date(2026, 2, 26),
            end=date(2026, 2, 26),
            limit=10,
            offset=0,
        )
    )
    (request,) = sent
    assert str(request.url).startswith(TRANSACTIONS_URL)


# --------------------------------------------------------------------------- answers


@pytest.mark.parametrize(
    ("body", "event_type", "transaction_id", "status", "amount", "currency"),
    [
        (
            TRANSFER_COMPLETED,
            "transfer.completed",
            "TRF123456",
            PaymentStatus.SUCCEEDED,
            10000,
            Currency.XOF,
        ),
        (
            PAYMENT_RECEIVED,
            "payment.received",
            "PAY123456",
            PaymentStatus.SUCCEEDED,
            25000,
            None,
        ),
        (TRANSACTION_FAILED, "transaction.failed", "TXN123456", PaymentStatus.FAILED, None, None),
    ],
    ids=["transfer.completed", "payment.received", "transaction.failed"],
)
def test_webhook_examples_are_unverified_hints(
    body: str,
    event_type: str,
    transaction_id: str,
    status: PaymentStatus,
    amount: int | None,
    currency: Currency | None,
) -> None:
    client, _ = _client()
    raw = body.encode()
    event = client.parse_webhook({"X-Momoflow-Webhook-Token": HOOK_TOKEN}, raw)
    assert event.provider is ProviderName.MOBILEPAY
    assert event.event_type == event_type
    # Assumed: the id is the transaction's id in GET /transactions (3.2 shows TXN… for a
    # failure); an id that matches no payout only makes the gateway look in vain.
    assert event.provider_transaction_id == transaction_id
    assert event.status is status
    assert (event.amount, event.currency) == (amount, currency)  # "FCFA" is XOF
    # MOBILE-PAY signs nothing (M1): the event only asks for a status read.
    assert event.verified is False
    assert event.external_reference is None
    assert "+225XXXXXXXXX" not in event.model_dump_json()  # the payer is never kept
    if status is PaymentStatus.FAILED:
        assert (event.failure_code, event.failure_message) == (
            "INSUFFICIENT_FUNDS",
            "Solde insuffisant",
        )
    with pytest.raises(errors.WebhookVerificationError):
        client.parse_webhook({}, raw)


def test_rate_limit_answer_is_retried_later_and_proves_nothing_executed() -> None:
    assert "HTTP 429" in RATE_LIMIT_TEXT and "Attendez avant de réessayer" in RATE_LIMIT_TEXT
    # No body and no header are documented for it.
    error = mp.classify_error("initiate_payout", 429, b"", {}, now=0.0)
    assert type(error) is errors.ProviderRateLimited
    assert error.retry_after is None
    # "Wait before retrying": the refused transfer did not execute, so it may be re-sent.
    assert proves_not_executed(error)


# ----------------------------------------------------------------------------- NovaSend (seed 004)


# Seed 004, "Paramètres de la Requête" (POST /v1/payin/sessions), verbatim.
REQUEST_FIELDS = """\
| Champ | Type | Description | Obligatoire |
|---|---|---|---|
reference | string | Identifiant unique de la transaction côté marchand (UUID recommandé). | ✅ |
accountId | string | Identifiant du compte ou du sous-compte marchand à débiter/créditer. | ✅ |
amount | number | Montant à payer (en unités entières, sans décimales). | ✅ |
msisdn | string | Numéro de téléphone du client payeur (format E.164). | ✅ |
customerName | string | Nom du client initiant le paiement. | ✅ |
country | string | Code ISO du pays (CI, SN, TG, etc.). | ✅ |
"""

# Seed 004, "Exemple de Requête" (POST /v1/payin/sessions), verbatim.
REQUEST_EXAMPLE = """\
{
"reference": "{{$randomUUID}}",
"accountId": "merchant_9923lkdz",
"amount": 300,
"msisdn": "+2250702968786",
"customerName": "John Doe",
"country": "CI"
}"""

# Seed 004, "Exemple de Réponse" of POST /v1/payin/sessions, verbatim.
CREATE_ANSWER = """\
{
"type": "payin",
"fee": 6,
"reference": "tr_fhchi842jyimwiugjgszcxvb8n",
"phoneNumber": "+2250749929598",
"amount": 300,
"chargedAmount": 306,
"status": "processing",
"currency": "XOF",
"customerReference": "ef76fb64-af0b-4c37-8729-bf61d85721fd",
"confirmationRequired": true,
"confirmationStatus": "none",
"paymentUrl": "https://link.novasend.app/link/{shortCode}",
"createdAt": "2025-08-22T01:34:48.189Z"
}"""

# Seed 004, "Statut d'un paiement", "Exemple de Réponse" of GET /v1/payin/{reference},
# verbatim.
STATUS_ANSWER = """\
{
"type": "payin",
"fee": 6,
"reference": "mtr_fhscgaywizujwjyymlge1hncaq",
"phoneNumber": "+2250749929598",
"customerName": "Habib",
"amount": 300,
"chargedAmount": 306,
"status": "processed",
"currency": "XOF",
"customerReference": "55a4e677-5700-4ed0-9a2a-9300db894ddb",
"confirmationRequired": true,
"confirmationStatus": "none",
"createdAt": "2025-08-22T02:00:16.026Z",
"transaction": {
"reference": "tr_dkjd5ljficphlqmt",
"status": "completed",
"customerName": "dd soûl",
"processedAt": "2025-11-05T16:12:42.096Z",
"phoneNumber": "+2250153013761",
"amount": "153.00",
"fees": "0.00",
"chargedAmount": "153.00",
"currency": "XOF"
},
"failure": null
}"""


def _required(table: str) -> list[str]:
    rows = [line.split("|") for line in table.splitlines()[2:]]
    return [cells[0].strip() for cells in rows if cells[-2].strip() == "✅"]


# --------------------------------------------------------------------------- the request


def _session_input(**overrides: Any) -> InitiatePayinInput:
    """momoflow's input for the seed's request example (our reference is the workflow id)."""
    fields: dict[str, Any] = {
        "provider": ProviderName.NOVASEND,
        "mode": PayinMode.CHECKOUT,
        "external_reference": "payin-acme-ORDER-42",
        "idempotency_key": "5b1f2c1e-8f0a-5d7e-9a51-2c3d4e5f6a7b",
        "amount": 300,
        "currency": Currency.XOF,
        "country": Country.CI,
        "customer_phone": "+2250702968786",
        "customer_name": "John Doe",
        "return_url": "https://shop.example/paid",
    }
    fields.update(overrides)
    return InitiatePayinInput(**fields)


def test_the_session_request_has_every_field_seed_004_requires() -> None:
    required = _required(REQUEST_FIELDS)
    assert required == ["reference", "accountId", "amount", "msisdn", "customerName", "country"]
    example = json.loads(REQUEST_EXAMPLE)
    built = dump(ns.build_payin_request(_session_input(), account_id="merchant_9923lkdz"))

    assert set(required) <= set(built)
    assert set(example) <= set(built)
    for name, value in example.items():
        assert type(built[name]) is type(value), name
        if name != "reference":  # a Postman placeholder in the seed; ours is the workflow id
            assert built[name] == value, name
    assert built["reference"] == "payin-acme-ORDER-42"
    # What the newer page requires as well (N4): the two versions' superset (2.11.1).
    assert set(built) - set(example) == {"action"}


def test_without_an_account_id_the_request_lacks_only_that_field() -> None:
    built = dump(ns.build_payin_request(_session_input()))
    assert set(_required(REQUEST_FIELDS)) - set(built) == {"accountId"}


# --------------------------------------------------------------------------- the answers


def test_the_create_answer_is_a_pending_session_with_both_references() -> None:
    wire = ns.parse_transaction_wire(201, CREATE_ANSWER.encode(), operation="initiate_payin")
    created = ns.to_payin_created(wire)
    tx = created.transaction

    assert tx.provider is ProviderName.NOVASEND
    assert tx.provider_transaction_id == "tr_fhchi842jyimwiugjgszcxvb8n"  # NovaSend's
    assert tx.external_reference == "ef76fb64-af0b-4c37-8729-bf61d85721fd"  # ours
    assert tx.provider_reference is None  # no core transaction yet
    assert (tx.status, tx.raw_status) == (PaymentStatus.PENDING, "processing/none/-")
    assert (tx.amount, tx.fees, tx.currency) == (300, 6, Currency.XOF)
    assert (tx.failure_code, tx.failure_message, tx.updated_at) == (None, None, None)
    assert created.payment_url == "https://link.novasend.app/link/{shortCode}"
    assert created.confirmation_required is True
    # Its status is then read by the id the POST generated (seed 004: "identifiant unique
    # du paiement (généré lors du POST)").
    lookup = StatusLookup(
        provider=ProviderName.NOVASEND,
        provider_transaction_id=tx.provider_transaction_id,
        external_reference="ef76fb64-af0b-4c37-8729-bf61d85721fd",
    )
    assert ns.payin_status_keys(lookup)[0] == "tr_fhchi842jyimwiugjgszcxvb8n"


def test_the_status_answer_is_a_success_of_the_amount_processed_not_asked() -> None:
    tx = ns.parse_transaction_response(200, STATUS_ANSWER.encode(), operation="payin_status")

    assert tx.provider_transaction_id == "mtr_fhscgaywizujwjyymlge1hncaq"
    assert tx.external_reference == "55a4e677-5700-4ed0-9a2a-9300db894ddb"
    assert tx.provider_reference == "tr_dkjd5ljficphlqmt"
    # "transaction.status est la source de vérité finale", even with confirmationStatus none.
    assert (tx.status, tx.raw_status) == (PaymentStatus.SUCCEEDED, "processed/none/completed")
    # 300 was asked, "153.00" was "effectivement traité": the processed amount, exactly.
    assert (tx.amount, tx.fees, tx.currency) == (153, 0, Currency.XOF)
    assert tx.amount != json.loads(STATUS_ANSWER)["amount"]
    assert tx.updated_at == datetime(2025, 11, 5, 16, 12, 42, 96000, tzinfo=UTC)
    assert (tx.failure_code, tx.failure_message) == (None, None)


def test_the_status_answer_as_a_webhook_body_reads_the_same() -> None:
    event = ns.parse_webhook_event(STATUS_ANSWER.encode())
    read = ns.parse_transaction_response(200, STATUS_ANSWER.encode(), operation="payin_status")
    assert (event.status, event.raw_status, event.amount) == (
        read.status,
        read.raw_status,
        read.amount,
    )
    assert event.external_reference == "55a4e677-5700-4ed0-9a2a-9300db894ddb"
    assert event.provider_transaction_id == "mtr_fhscgaywizujwjyymlge1hncaq"


# --------------------------------------------------------------------------- reading rules

# Seed 004, "Exemple de Lecture", quoted (line breaks of the seed's code spans removed):
#   - Si status = "processed"ettransaction.status = "completed"→ ✅ Paiement réussi et confirmé.
#   - Si status = "processed"maistransaction.status = "failed"→ ⚠️ Paiement enregistré mais
#     refusé par le client.
#   - Si transactionestnullou{}dans ce cas là, le paiement n’a pas encore été confirmé par
#     le client.
#   - Si failurecontient un objet → des informations d’erreur seront présentes (code,message,
#     etc.).
# and "Bonnes Pratiques": Si confirmationStatus = declined ou expired, le paiement doit être
# considéré comme non valide.


def _status_answer(**changes: Any) -> bytes:
    body: dict[str, Any] = json.loads(STATUS_ANSWER)
    core = changes.pop("transaction_status", None)
    if core is not None:
        body["transaction"]["status"] = core
    body.update(changes)
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, PaymentStatus.SUCCEEDED),
        ({"transaction_status": "failed"}, PaymentStatus.FAILED),
        ({"transaction_status": "pending"}, PaymentStatus.PENDING),
        ({"transaction": None}, PaymentStatus.PENDING),
        ({"transaction": {}}, PaymentStatus.PENDING),
        ({"transaction": None, "confirmationStatus": "declined"}, PaymentStatus.FAILED),
        ({"transaction": None, "confirmationStatus": "expired"}, PaymentStatus.EXPIRED),
        ({"transaction": None, "status": "expired"}, PaymentStatus.EXPIRED),
    ],
)
def test_the_reading_rules_of_seed_004(changes: dict[str, Any], expected: PaymentStatus) -> None:
    tx = ns.parse_transaction_response(200, _status_answer(**changes), operation="payin_status")
    assert tx.status is expected


def test_a_failure_object_carries_its_code_and_message() -> None:
    failure = {"code": "client_not_enough_cash", "message": "Solde insuffisant"}
    raw = _status_answer(transaction_status="failed", failure=failure)
    tx = ns.parse_transaction_response(200, raw, operation="payin_status")
    assert (tx.status, tx.failure_code, tx.failure_message) == (
        PaymentStatus.FAILED,
        "client_not_enough_cash",
        "Solde insuffisant",
    )


def test_a_fraction_of_a_franc_in_the_status_example_is_never_rounded() -> None:
    raw = STATUS_ANSWER.replace('"amount": "153.00"', '"amount": "153.50"').encode()
    assert raw != STATUS_ANSWER.encode()
    with pytest.raises(errors.ProviderProtocolError, match="153.50"):
        ns.parse_transaction_response(200, raw, operation="payin_status")
