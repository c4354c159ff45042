"""The demo city: a Shenzhen-like jurisdiction tree, ~2,000 subjects and demo staff.

Idempotent: running it again on the same data directory adds nothing twice and keeps the
passwords written in ``<data-dir>/demo-credentials.json``. Demo passwords are random per
data directory; outside ``--demo`` there are no default accounts.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from center.identity import create_credential, create_user, new_password, sha256_hex
from center.models import (
    Credential,
    CredentialKind,
    Jurisdiction,
    JurisdictionLevel,
    Role,
    Subject,
    User,
)
from center.visits.demo import (
    PRISON_A,
    PRISON_B,
    TERMINAL_TOKEN_NAME,
    seed_demo_visit,
    seed_visits,
)
from config.demo_city import generate_subjects, load_divisions
from config.settings import Settings

_LOGGER = logging.getLogger(__name__)

CITY_ID = "4403"
CITY_NAME = "深圳市"
CREDENTIALS_FILE = "demo-credentials.json"
DEMO_ACTOR = "system:demo-seed"
_INTEGRATION_KEY_NAME = "demo-simulator"
_WALL_TOKEN_NAME = "demo-wall"


def _demo_staff(
    futian: str, futian_street: str, other_street: str
) -> list[tuple[str, Role, str, str]]:
    """(username, role, jurisdiction, display name)."""
    return [
        ("admin", Role.ADMIN, CITY_ID, "系统管理员"),
        ("duty1", Role.DUTY, CITY_ID, "值班员一"),
        ("duty2", Role.DUTY, CITY_ID, "值班员二"),
        ("futian", Role.DISTRICT, futian, "福田区司法局"),
        ("street1", Role.STREET, futian_street, "福田司法所一"),
        ("street2", Role.STREET, other_street, "福田司法所二"),
        ("visit1", Role.VISIT_STAFF, CITY_ID, "会见工作人员"),
        ("visit2", Role.VISIT_STAFF, CITY_ID, "第二监狱会见工作人员"),
    ]


_DEMO_SUBJECT_LOGINS = 3


async def _demo_subjects(
    session: AsyncSession, street_a: str, street_b: str
) -> list[tuple[str, Subject]]:
    """Subject logins (``subject1``…) that can be called: two in street1's office (so the
    demo street officer can spot-check them), one in street2's (to show the 404 across)."""
    picked: list[Subject] = []
    for street, n in ((street_a, _DEMO_SUBJECT_LOGINS - 1), (street_b, 1)):
        picked += list(
            await session.scalars(
                select(Subject)
                .where(Subject.street_id == street, Subject.active.is_(True))
                .order_by(Subject.id)
                .limit(n)
            )
        )
    return [(f"subject{i}", subj) for i, subj in enumerate(picked, 1)]


async def _seed_tree(session: AsyncSession) -> tuple[str, str, str]:
    districts, streets = load_divisions()
    existing = set((await session.execute(select(Jurisdiction.id))).scalars().all())
    rows: list[dict[str, Any]] = []
    if CITY_ID not in existing:
        rows.append(
            dict(
                id=CITY_ID,
                parent_id=None,
                level=JurisdictionLevel.CITY,
                name=CITY_NAME,
                lat=22.543,
                lon=114.058,
                sort=0,
            )
        )
    for i, d in enumerate(districts):
        if d.code not in existing:
            rows.append(
                dict(
                    id=d.code,
                    parent_id=CITY_ID,
                    level=JurisdictionLevel.DISTRICT,
                    name=d.name,
                    lat=d.center_lat,
                    lon=d.center_lon,
                    sort=i,
                )
            )
    for i, s in enumerate(streets):
        if s.code not in existing:
            rows.append(
                dict(
                    id=s.code,
                    parent_id=s.district_code,
                    level=JurisdictionLevel.STREET,
                    name=s.name,
                    lat=None,
                    lon=None,
                    sort=i,
                )
            )
    if rows:
        await session.execute(insert(Jurisdiction), rows)
    futian = next(d.code for d in districts if d.name.startswith("福田"))
    futian_streets = [
        s.code for s in streets if s.district_code == futian and not s.is_special_zone
    ]
    return futian, futian_streets[0], futian_streets[1]


async def _seed_subjects(session: AsyncSession, now: datetime) -> int:
    if (await session.scalar(select(func.count()).select_from(Subject))) or 0:
        return 0
    _, streets = load_divisions()
    district_of = {s.code: s.district_code for s in streets}
    rows = [
        dict(
            id=s.key,
            name=s.name,
            gender=s.gender,
            id_number=s.id_number,
            phone=s.phone,
            level=s.level,
            street_id=s.street_code,
            district_id=district_of[s.street_code],
            home_lat=s.home_lat,
            home_lon=s.home_lon,
            active=True,
            created_at=now,
        )
        for s in generate_subjects()
    ]
    await session.execute(insert(Subject), rows)
    return len(rows)


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


async def seed_demo(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, now: datetime
) -> dict[str, Any]:
    """Seed the demo city and return what goes into ``demo-credentials.json``."""
    path = Path(settings.data_dir) / CREDENTIALS_FILE
    previous = _read_file(path)
    prev_users: dict[str, Any] = (
        previous.get("users", {}) if isinstance(previous.get("users"), dict) else {}
    )
    out: dict[str, Any] = {"users": {}, "integration_key": "", "wall_token": "", "url": ""}
    unknown: list[str] = []
    async with sessionmaker() as session:
        futian, street_a, street_b = await _seed_tree(session)
        added = await _seed_subjects(session, now)
        for username, role, jurisdiction, display in _demo_staff(futian, street_a, street_b):
            known = prev_users.get(username, {})
            password = known.get("password") if isinstance(known, dict) else None
            user = await session.scalar(select(User).where(User.username == username))
            if user is None:
                password = password or new_password()
                await create_user(
                    session,
                    username=username,
                    password=password,
                    role=role,
                    jurisdiction_id=jurisdiction,
                    display_name=display,
                    actor=DEMO_ACTOR,
                    now=now,
                )
            elif not password:
                # Seeded already by another instance (or from another data directory): its
                # password stands. Resetting it here would log out and lock out whoever uses
                # the first instance; its demo-credentials.json has the password.
                unknown.append(username)
            out["users"][username] = {
                "password": password,
                "role": str(role),
                "jurisdiction": jurisdiction,
                "display_name": display,
            }
        for username, subject in await _demo_subjects(session, street_a, street_b):
            known = prev_users.get(username, {})
            password = known.get("password") if isinstance(known, dict) else None
            user = await session.scalar(select(User).where(User.username == username))
            if user is None:
                password = password or new_password()
                user = await create_user(
                    session,
                    username=username,
                    password=password,
                    role=Role.SUBJECT,
                    jurisdiction_id=subject.street_id,
                    display_name=subject.name,
                    actor=DEMO_ACTOR,
                    now=now,
                )
                user.subject_id = subject.id
            elif not password:
                unknown.append(username)  # seeded elsewhere: left alone (see above)
            out["users"][username] = {
                "password": password,
                "role": str(Role.SUBJECT),
                "jurisdiction": subject.street_id,
                "display_name": subject.name,
                "subject_id": subject.id,
            }
        for field, kind, name in (
            ("integration_key", CredentialKind.API_KEY, _INTEGRATION_KEY_NAME),
            ("wall_token", CredentialKind.DEVICE_TOKEN, _WALL_TOKEN_NAME),
        ):
            secret = previous.get(field)
            cred = await session.scalar(
                select(Credential).where(Credential.name == name, Credential.revoked_at.is_(None))
            )
            known_secret = isinstance(secret, str) and bool(secret)
            if cred is not None and (
                not known_secret or cred.secret_hash != sha256_hex(str(secret))
            ):
                # another instance's key or token: leave it working (see above)
                unknown.append(name)
                secret = ""
            elif cred is None:
                _, secret = await create_credential(
                    session,
                    kind=kind,
                    name=name,
                    jurisdiction_id=CITY_ID,
                    actor=DEMO_ACTOR,
                    now=now,
                )
            out[field] = secret
        demo_visits = await seed_visits(
            session,
            now,
            street_id=street_a,
            staff={"visit1": PRISON_A, "visit2": PRISON_B},
            terminal_token=previous.get("terminal_token")
            if isinstance(previous.get("terminal_token"), str)
            else None,
            actor=DEMO_ACTOR,
        )
        if not demo_visits.terminal_token:
            unknown.append(TERMINAL_TOKEN_NAME)
        out["terminal_token"] = demo_visits.terminal_token
        out["visit"] = await seed_demo_visit(
            session,
            now,
            previous=previous.get("visit"),
            minutes=settings.visit_minutes,
            join_early_minutes=settings.visit_join_early_minutes,
            tz=settings.tz,
        )
        await session.commit()
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    out["url"] = f"http://{host}:{settings.port}/"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, ensure_ascii=False, indent=2), encoding="utf-8")
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    if added:
        _LOGGER.info("demo city seeded: %s subjects", added)
    if unknown:
        _LOGGER.warning(
            "demo: the database was seeded by another instance or data directory; left "
            "unchanged (their secrets are in that instance's %s): %s",
            CREDENTIALS_FILE,
            ", ".join(unknown),
        )
    return out
