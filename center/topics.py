"""The bus vocabulary: topic names and event types, in one leaf module.

A bus message has a *topic* (the channel a consumer subscribes to, and the websocket topic
of the same name) and a *type* (what happened). Both were string literals spread over the
publishers and the consumers, so a typo published to a channel nobody reads. They are
``StrEnum``s: a member is its string, so the wire format, the Redis stream keys and
subscription patterns (``bus.subscribe("*", …)``) are unchanged.
"""

from __future__ import annotations

from enum import StrEnum


class Topic(StrEnum):
    """Bus channels (also the websocket topics that relay them)."""

    ALARMS = "alarms"
    CHECKINS = "checkins"
    DUTY = "duty"
    DASHBOARD = "dashboard"
    VISITS = "visits"
    SPOTCHECKS = "spotchecks"
    REVOCATIONS = "revocations"  # between instances only; never a websocket topic
    SETTINGS = "settings"  # between instances only: live settings changed, re-read them


class Event(StrEnum):
    """Message types carried on those channels."""

    ALARM_RAISED = "alarm.raised"  # on Topic.ALARMS
    ALARM_UPDATED = "alarm.updated"  # on Topic.ALARMS
    CHECKIN_RECORDED = "checkin.recorded"  # on Topic.CHECKINS
    DUTY_STAFFING = "duty.staffing"  # on Topic.DUTY
    DUTY_SHIFT = "duty.shift"  # on Topic.DUTY (read by the dashboard; no publisher yet)
    DASHBOARD_DELTA = "dashboard.delta"  # on Topic.DASHBOARD (websocket only)
    REVOKED = "revoked"  # on Topic.REVOCATIONS: {"kind", "target"} (center.revocation)
    PLANS_CHANGED = "plans.changed"  # on Topic.SETTINGS: {"plans": [ids]} (web.admin_plans)
    # on Topic.SETTINGS: {"subjects": [ids]} (web.admin_subjects)
    SUBJECTS_CHANGED = "subjects.changed"
    # on Topic.SETTINGS: {"names": [setting names]} (web.admin_alarm_settings)
    ALARM_SETTINGS_CHANGED = "alarm_settings.changed"
