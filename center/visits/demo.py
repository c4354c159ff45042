"""Demo records for visits: two prisons (one per demo visit-staff login, to show the 404
across), a terminal with a device token, a visit point, inmates and their relatives.

Idempotent like the rest of the demo seed: rows that exist are left as they are.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from center.identity import create_credential, sha256_hex
from center.models import Credential, CredentialKind, Role, User
from center.visits.models import (
    Inmate,
    Prison,
    PrisonStaff,
    PrisonTerminal,
    Relative,
    RelativeStatus,
    Visit,
    VisitParty,
    VisitPoint,
    VisitState,
)
from center.visits.rules import month_of

PRISON_A = "gd-prison-1"
PRISON_B = "gd-prison-2"
TERMINAL_A = "gd-prison-1-t1"
TERMINAL_B = "gd-prison-2-t1"
POINT = "vp-futian-1"
TERMINAL_TOKEN_NAME = "demo-visit-terminal"

_INMATES = (
    ("inmate-1001", PRISON_A, "王建国"),
    ("inmate-1002", PRISON_A, "李志强"),
    ("inmate-1003", PRISON_A, "陈海波"),
    ("inmate-2001", PRISON_B, "赵立新"),
)
# (inmate, name, relationship, fake ID number, status, banned for days)
_RELATIVES = (
    ("inmate-1001", "王秀英", "母亲", "440304195503129024", RelativeStatus.APPROVED, 0),
    ("inmate-1001", "王丽", "妹妹", "440304198807219042", RelativeStatus.APPROVED, 0),
    ("inmate-1001", "张敏", "妻子", "440304199001019068", RelativeStatus.APPROVED, 0),
    ("inmate-1001", "王小明", "儿子", "440304201203059016", RelativeStatus.APPROVED, 0),
    ("inmate-1001", "王建军", "哥哥", "440304198203039010", RelativeStatus.PENDING, 0),
    ("inmate-1002", "李桂兰", "母亲", "440304196001019020", RelativeStatus.BANNED, 45),
    ("inmate-1002", "李强", "弟弟", "440304199205059034", RelativeStatus.APPROVED, 0),
    ("inmate-1003", "陈芳", "妻子", "440304199303039044", RelativeStatus.APPROVED, 0),
    ("inmate-2001", "赵红", "女儿", "440304199808089046", RelativeStatus.APPROVED, 0),
)


def demo_phone(id_number: str) -> str:
    """A demo relative's phone (the public booking page asks for it with the ID number):
    1700900 and the ID number's last four digits (170 numbers are virtual operators')."""
    return "1700900" + id_number[-4:]


@dataclass(frozen=True, slots=True)
class DemoVisits:
    terminal_token: str
    """Empty when the terminal was seeded by another instance (its token stands there)."""


async def seed_visits(
    session: AsyncSession,
    now: datetime,
    *,
    street_id: str,
    staff: dict[str, str],
    terminal_token: str | None,
    actor: str,
) -> DemoVisits:
    """``staff`` maps a visit-staff username to the prison it works for."""
    if await session.get(Prison, PRISON_A) is None:
        session.add_all(
            [Prison(id=PRISON_A, name="广东省第一监狱"), Prison(id=PRISON_B, name="广东省第二监狱")]
        )
        await session.flush()
        session.add_all(
            [
                PrisonTerminal(id=TERMINAL_A, prison_id=PRISON_A, name="会见终端一"),
                PrisonTerminal(id=TERMINAL_B, prison_id=PRISON_B, name="会见终端一"),
                VisitPoint(id=POINT, name="福田司法所会见点", street_id=street_id, capacity=1),
            ]
            + [Inmate(id=i, prison_id=p, name=n) for i, p, n in _INMATES]
        )
        await session.flush()
        for inmate_id, name, relationship, id_number, status, ban_days in _RELATIVES:
            session.add(
                Relative(
                    inmate_id=inmate_id,
                    name=name,
                    relationship=relationship,
                    id_number_hash=sha256_hex(id_number),
                    id_last4=id_number[-4:],
                    phone=demo_phone(id_number),
                    status=status,
                    banned_until=now + timedelta(days=ban_days) if ban_days else None,
                )
            )
        await session.flush()
    for *_, id_number, _status, _days in _RELATIVES:  # seeded before relatives had phones
        await session.execute(
            update(Relative)
            .where(Relative.id_number_hash == sha256_hex(id_number), Relative.phone == "")
            .values(phone=demo_phone(id_number))
        )
    for username, prison_id in staff.items():
        user = await session.scalar(select(User).where(User.username == username))
        if user is not None and await session.get(PrisonStaff, (user.id, prison_id)) is None:
            session.add(PrisonStaff(user_id=user.id, prison_id=prison_id))
    terminal = await session.get(PrisonTerminal, TERMINAL_A)
    assert terminal is not None
    cred = await session.get(Credential, terminal.credential_id) if terminal.credential_id else None
    token = terminal_token or ""
    if cred is not None and cred.revoked_at is None:
        if not token or cred.secret_hash != sha256_hex(token):
            token = ""  # seeded by another instance: its token stands
    else:
        cred, token = await create_credential(
            session,
            kind=CredentialKind.DEVICE_TOKEN,
            name=TERMINAL_TOKEN_NAME,
            jurisdiction_id=street_id,
            actor=actor,
            now=now,
        )
        cred.role = str(Role.VISIT_STAFF)
        await session.flush()
        terminal.credential_id = cred.id
    await session.flush()
    return DemoVisits(terminal_token=token)


_DEMO_INMATE = "inmate-1003"


async def seed_demo_visit(
    session: AsyncSession,
    now: datetime,
    *,
    previous: object,
    minutes: int,
    join_early_minutes: int,
    tz: ZoneInfo,
) -> dict[str, object]:
    """An approved visit that can be joined right after start: its slot begins two minutes
    after the seed, so its codes work at once. A restart inside the slot keeps it (and the
    codes in ``demo-credentials.json``); after the slot a new one is made."""
    if isinstance(previous, dict):
        visit = (
            await session.get(Visit, previous.get("id"))
            if isinstance(previous.get("id"), int)
            else None
        )
        kept = previous.get("join_codes")
        if (
            visit is not None
            and visit.state in (VisitState.APPROVED, VisitState.WAITING, VisitState.LIVE)
            and visit.ends_at > now
            and isinstance(kept, list)
        ):
            return {"id": visit.id, "join_codes": kept}
    starts_at = (now + timedelta(minutes=2)).replace(microsecond=0)
    ends_at = starts_at + timedelta(minutes=minutes)
    relatives = list(
        await session.scalars(
            select(Relative).where(
                Relative.inmate_id == _DEMO_INMATE, Relative.status == RelativeStatus.APPROVED
            )
        )
    )
    visit = Visit(
        prison_id=PRISON_A,
        inmate_id=_DEMO_INMATE,
        visit_point_id=None,
        terminal_id=TERMINAL_A,
        starts_at=starts_at,
        ends_at=ends_at,
        month=month_of(starts_at, tz),
        state=VisitState.APPROVED,
        privileged=False,
        emergency=False,
        version=1,
        booked_by="system:demo-seed",
        approved_by="system:demo-seed",
        created_at=now,
        updated_at=now,
    )
    session.add(visit)
    await session.flush()
    codes: list[str] = []
    for rel in relatives:
        code = f"{secrets.randbelow(10**6):06d}"
        codes.append(code)
        session.add(
            VisitParty(
                visit_id=visit.id,
                relative_id=rel.id,
                code_hash=sha256_hex(code),
                token_hash=sha256_hex(secrets.token_urlsafe(24)),
                valid_from=starts_at - timedelta(minutes=join_early_minutes),
                valid_until=ends_at,
            )
        )
    await session.flush()
    return {"id": visit.id, "join_codes": codes}
