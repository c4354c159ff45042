"""One place that writes an alarm's timeline event together with its audit entry.

Every officer action, escalation, breach flag and piece of evidence goes on the alarm's
timeline (what the console shows) and into the hash-chained audit log (what an inspector
verifies). Writing both through this function, in the caller's transaction, keeps the two
from drifting apart: either both rows commit or neither does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from alerts.models import AlarmEvent
from center import audit


def dumps(data: Mapping[str, Any]) -> str:
    return json.dumps(dict(data), ensure_ascii=False, separators=(",", ":"), default=str)


async def record_alarm_event(
    session: AsyncSession,
    *,
    alarm_id: int,
    at: datetime,
    type: str,
    actor: str,
    data: Mapping[str, Any],
    audit_action: str,
    audit_details: Mapping[str, Any],
    from_state: str | None = None,
    to_state: str | None = None,
    note: str = "",
) -> None:
    """Add the timeline row and append the audit entry (the caller commits)."""
    session.add(
        AlarmEvent(
            alarm_id=alarm_id,
            at=at,
            type=type,
            actor=actor,
            from_state=from_state,
            to_state=to_state,
            note=note,
            data=dumps(data),
        )
    )
    await audit.record(
        session,
        actor=actor,
        action=audit_action,
        target_type="alarm",
        target_id=str(alarm_id),
        details=dict(audit_details),
        at=at,
    )
