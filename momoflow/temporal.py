"""One way to connect to Temporal, used by the worker, the gateway, the CLI and tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client, Interceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from momoflow import search_attributes, telemetry
from momoflow.codec import EncryptionCodec
from momoflow.settings import CodecSettings, TemporalSettings, get_settings


def data_converter(codec: CodecSettings) -> DataConverter:
    """momoflow's data converter: pydantic payloads, encrypted by :class:`EncryptionCodec`
    with ``codec``'s keys. Failure messages and stack traces move into the failure's
    encoded attributes, so they are encrypted too (a provider's error text may quote a
    phone number)."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(codec.key_bytes(), active_key_id=codec.active_key_id),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


async def connect_client(
    settings: TemporalSettings,
    *,
    interceptors: Sequence[Interceptor] = (),
    codec: CodecSettings | None = None,
) -> Client:
    """A Temporal client with momoflow's encrypting data converter (:func:`data_converter`);
    ``codec`` defaults to the process's ``MOMOFLOW_CODEC__*`` settings."""
    return await Client.connect(
        settings.address,
        namespace=settings.namespace,
        data_converter=data_converter(codec if codec is not None else get_settings().codec),
        tls=TLSConfig() if settings.tls else False,
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
        # The process's tracing interceptor (momoflow.telemetry.setup), if any.
        interceptors=telemetry.with_tracing(interceptors),
    )


async def register_search_attributes(client: Client, namespace: str) -> list[str]:
    """Register momoflow's search attributes that the namespace lacks; returns those added."""
    try:
        existing = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
        known = set(existing.custom_attributes) | set(existing.system_attributes)
    except RPCError as exc:
        # Temporal's time-skipping test server can add attributes but not list them.
        if exc.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        known = set()
    missing = {
        key.name: IndexedValueType.ValueType(int(key.indexed_value_type))
        for key in search_attributes.ALL_KEYS
        if key.name not in known
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
    return sorted(missing)
