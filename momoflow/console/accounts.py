"""Console operators, their sessions and the audit trail, in the record store.

Operators are people, separate from merchants' API keys. Each acts for one merchant, with
one :class:`Role`. A session is a random token in a cookie; the store keeps only its
SHA-256, with the session's CSRF token, its expiry and its end (logout), so a stolen
cookie is worthless once its owner logs out. Every action, and every login attempt, is an
``audit_events`` row: who, what, on what, why, with what outcome, and from where.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from momoflow.console.passwords import hash_password, needs_rehash, verify_password
from momoflow.records.schema import audit_events, console_sessions, operators
from momoflow.records.store import RecordStore

__all__ = [
    "NAME_PATTERN",
    "AuditEvent",
    "Operator",
    "OperatorExists",
    "OperatorStore",
    "Permission",
    "Role",
    "Session",
]

#: Operator names: lower-case letters, digits, dots, dashes and underscores.
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{1,63}$"
_NAME_RE = re.compile(NAME_PATTERN)


class Permission(StrEnum):
    """What a role allows."""

    VIEW = "view"
    EXPORT = "export"
    UPLOAD_CAMPAIGN = "upload_campaign"
    CONTROL_CAMPAIGN = "control_campaign"
    APPROVE_CAMPAIGN = "approve_campaign"
    RESOLVE_IN_DOUBT = "resolve_in_doubt"
    READ_AUDIT = "read_audit"


class Role(StrEnum):
    """An operator's role: what the console lets them do."""

    #: Reads every page and downloads exports and reports.
    VIEWER = "viewer"
    #: A viewer who also uploads campaigns, and pauses, resumes or cancels them.
    MAKER = "maker"
    #: A viewer who also approves campaigns (never their own), pauses, resumes or cancels
    #: them, resolves money in doubt and reads the audit trail.
    CHECKER = "checker"
    #: Everything (and still never approves a campaign they uploaded).
    ADMIN = "admin"

    @property
    def permissions(self) -> frozenset[Permission]:
        """The permissions of this role."""
        return _PERMISSIONS[self]

    def allows(self, permission: Permission) -> bool:
        """Whether this role has ``permission``."""
        return permission in _PERMISSIONS[self]


_READ = frozenset({Permission.VIEW, Permission.EXPORT})
_PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    Role.VIEWER: _READ,
    Role.MAKER: _READ | {Permission.UPLOAD_CAMPAIGN, Permission.CONTROL_CAMPAIGN},
    Role.CHECKER: _READ
    | {
        Permission.APPROVE_CAMPAIGN,
        Permission.CONTROL_CAMPAIGN,
        Permission.RESOLVE_IN_DOUBT,
        Permission.READ_AUDIT,
    },
    Role.ADMIN: frozenset(Permission),
}


@dataclass(frozen=True)
class Operator:
    """A console operator."""

    id: int
    name: str
    merchant: str
    role: Role
    time_zone: str
    language: str
    active: bool
    created_at: datetime

    @property
    def actor(self) -> str:
        """How the audit trail and the transaction timelines name this operator."""
        return f"operator:{self.name}"

    def can(self, permission: Permission) -> bool:
        """Whether this operator's role allows ``permission``."""
        return self.role.allows(permission)


@dataclass(frozen=True)
class Session:
    """A logged-in console session."""

    id: int
    operator: Operator
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class AuditEvent:
    """One row of the audit trail."""

    id: int
    at: datetime
    actor: str
    merchant: str | None
    action: str
    target: str
    reason: str
    outcome: str
    detail: dict[str, Any]
    address: str


class OperatorExists(Exception):
    """An operator with this name exists already."""


def token_digest(token: str) -> str:
    """The SHA-256 a session token is stored under."""
    return hashlib.sha256(token.encode()).hexdigest()


def _operator(row: Any) -> Operator:
    return Operator(
        id=row.id,
        name=row.name,
        merchant=row.merchant,
        role=Role(row.role),
        time_zone=row.time_zone,
        language=row.language,
        active=row.active,
        created_at=row.created_at,
    )


class OperatorStore:
    """Operators, sessions and the audit trail, on the record store's engine."""

    def __init__(self, records: RecordStore) -> None:
        self.engine = records.engine

    # ------------------------------------------------------------------ operators

    async def add(
        self,
        name: str,
        *,
        merchant: str,
        role: Role,
        password: str,
        time_zone: str,
        language: str,
    ) -> Operator:
        """Create an operator; :class:`OperatorExists` when the name is taken."""
        if not _NAME_RE.fullmatch(name):
            raise ValueError(f"operator name {name!r} must match {NAME_PATTERN}")
        now = datetime.now(UTC)
        try:
            async with self.engine.begin() as conn:
                row = (
                    await conn.execute(
                        insert(operators)
                        .values(
                            name=name,
                            merchant=merchant,
                            role=role.value,
                            password_hash=hash_password(password),
                            time_zone=time_zone,
                            language=language,
                            active=True,
                            created_at=now,
                            password_changed_at=now,
                        )
                        .returning(operators)
                    )
                ).one()
        except IntegrityError:
            raise OperatorExists(name) from None
        return _operator(row)

    async def get(self, name: str) -> Operator | None:
        """The operator named ``name``, active or not."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(operators).where(operators.c.name == name))
            ).one_or_none()
        return _operator(row) if row is not None else None

    async def all(self) -> list[Operator]:
        """Every operator, by name."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(operators).order_by(operators.c.name))).all()
        return [_operator(row) for row in rows]

    async def set_active(self, name: str, active: bool) -> bool:
        """Enable or disable an operator; disabling ends every session. False when unknown."""
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    update(operators)
                    .where(operators.c.name == name)
                    .values(active=active)
                    .returning(operators.c.id)
                )
            ).one_or_none()
            if row is not None and not active:
                await self._end_sessions(conn, row.id)
        return row is not None

    async def set_password(self, name: str, password: str) -> bool:
        """Replace an operator's password and end their sessions. False when unknown."""
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    update(operators)
                    .where(operators.c.name == name)
                    .values(
                        password_hash=hash_password(password),
                        password_changed_at=datetime.now(UTC),
                    )
                    .returning(operators.c.id)
                )
            ).one_or_none()
            if row is not None:
                await self._end_sessions(conn, row.id)
        return row is not None

    async def set_language(self, operator_id: int, language: str) -> None:
        """Remember the operator's page language."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(operators).where(operators.c.id == operator_id).values(language=language)
            )

    async def check_password(self, name: str, password: str) -> Operator | None:
        """The active operator when ``password`` is theirs; None otherwise (unknown names
        take as long as wrong passwords). Rehashes a hash made with older parameters."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(operators).where(operators.c.name == name))
            ).one_or_none()
        stored = row.password_hash if row is not None else None
        if not verify_password(stored, password) or row is None or not row.active:
            return None
        if needs_rehash(row.password_hash):
            async with self.engine.begin() as conn:
                await conn.execute(
                    update(operators)
                    .where(operators.c.id == row.id)
                    .values(password_hash=hash_password(password))
                )
        return _operator(row)

    # ------------------------------------------------------------------ sessions

    async def open_session(
        self, operator: Operator, *, ttl_s: int, address: str
    ) -> tuple[str, Session]:
        """A new session: its token (for the cookie; never stored) and the session."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        expires = now + timedelta(seconds=ttl_s)
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    insert(console_sessions)
                    .values(
                        token_sha256=token_digest(token),
                        operator_id=operator.id,
                        csrf_token=csrf,
                        created_at=now,
                        expires_at=expires,
                        last_seen_at=now,
                        address=address[:64],
                    )
                    .returning(console_sessions.c.id)
                )
            ).one()
        return token, Session(id=row.id, operator=operator, csrf_token=csrf, expires_at=expires)

    async def session(self, token: str, *, idle_timeout_s: int) -> Session | None:
        """The live session of ``token``: not ended, not expired, not idle for longer than
        ``idle_timeout_s``, its operator active. Touches its last use."""
        now = datetime.now(UTC)
        query = (
            select(
                console_sessions.c.id.label("session_id"),
                console_sessions.c.csrf_token,
                console_sessions.c.expires_at,
                *operators.c,
            )
            .join(operators, operators.c.id == console_sessions.c.operator_id)
            .where(
                console_sessions.c.token_sha256 == token_digest(token),
                console_sessions.c.ended_at.is_(None),
                console_sessions.c.expires_at > now,
                console_sessions.c.last_seen_at > now - timedelta(seconds=idle_timeout_s),
                operators.c.active.is_(True),
            )
        )
        async with self.engine.begin() as conn:
            row = (await conn.execute(query)).one_or_none()
            if row is None:
                return None
            await conn.execute(
                update(console_sessions)
                .where(console_sessions.c.id == row.session_id)
                .values(last_seen_at=now)
            )
        return Session(
            id=row.session_id,
            operator=_operator(row),
            csrf_token=row.csrf_token,
            expires_at=row.expires_at,
        )

    async def end_session(self, session_id: int) -> None:
        """End a session (logout): its cookie no longer opens anything."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(console_sessions)
                .where(console_sessions.c.id == session_id, console_sessions.c.ended_at.is_(None))
                .values(ended_at=datetime.now(UTC))
            )

    async def _end_sessions(self, conn: Any, operator_id: int) -> None:
        await conn.execute(
            update(console_sessions)
            .where(
                console_sessions.c.operator_id == operator_id,
                console_sessions.c.ended_at.is_(None),
            )
            .values(ended_at=datetime.now(UTC))
        )

    # ------------------------------------------------------------------ audit trail

    async def audit(
        self,
        actor: str,
        action: str,
        *,
        merchant: str | None,
        target: str = "",
        reason: str = "",
        outcome: str = "ok",
        detail: Mapping[str, Any] | None = None,
        address: str = "",
    ) -> None:
        """Append one event to the audit trail."""
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(audit_events).values(
                    at=datetime.now(UTC),
                    actor=actor[:200],
                    merchant=merchant,
                    action=action,
                    target=target[:300],
                    reason=reason,
                    outcome=outcome,
                    detail=dict(detail or {}),
                    address=address[:64],
                )
            )

    async def recent_login_failures(
        self, *, name: str, address: str, window_s: int
    ) -> tuple[int, int]:
        """Failed logins in the last ``window_s`` seconds: for this name, from this address."""
        since = datetime.now(UTC) - timedelta(seconds=window_s)
        # Refused attempts (over the limit) are not failures: the window ends on time
        # even while someone keeps trying.
        failed = (audit_events.c.action == "login") & (audit_events.c.outcome == "failed")
        async with self.engine.connect() as conn:
            by_name = (
                await conn.execute(
                    select(func.count()).where(
                        failed, audit_events.c.actor == name[:200], audit_events.c.at >= since
                    )
                )
            ).scalar_one()
            by_address = (
                await conn.execute(
                    select(func.count()).where(
                        failed, audit_events.c.address == address[:64], audit_events.c.at >= since
                    )
                )
            ).scalar_one()
        return int(by_name), int(by_address)

    async def audit_page(
        self,
        merchant: str,
        *,
        limit: int,
        before_id: int | None = None,
        target: str | None = None,
        actor: str | None = None,
    ) -> tuple[list[AuditEvent], bool]:
        """The merchant's audit trail, newest first (and its logins), ``limit`` at a time;
        whether older events follow."""
        query = select(audit_events).where(audit_events.c.merchant == merchant)
        if before_id is not None:
            query = query.where(audit_events.c.id < before_id)
        if target:
            query = query.where(audit_events.c.target == target)
        if actor:
            query = query.where(audit_events.c.actor == actor)
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(query.order_by(audit_events.c.id.desc()).limit(limit + 1))
            ).all()
        events = [
            AuditEvent(
                id=r.id,
                at=r.at,
                actor=r.actor,
                merchant=r.merchant,
                action=r.action,
                target=r.target,
                reason=r.reason,
                outcome=r.outcome,
                detail=dict(r.detail),
                address=r.address,
            )
            for r in rows[:limit]
        ]
        return events, len(rows) > limit
