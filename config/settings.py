"""One validated settings object for the whole center.

Sources, later wins: built-in defaults < TOML file (``--config``) < environment variables
``CENTER_<NAME>`` < command-line flags. Every setting has a default and a description; the
README's configuration table is generated from :data:`FIELDS` (``python run.py settings``).
Unknown keys and bad values raise :class:`SettingsError`, whose message is one paragraph an
operator can act on; ``run.py`` prints it and exits with code 2.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ENV_PREFIX = "CENTER_"
# Variables under this prefix belong to the test suite, not to the server.
_IGNORED_ENV_PREFIXES = ("CENTER_TEST_",)


class SettingsError(ValueError):
    """A setting is unknown or has a bad value; the message says which and how to fix it."""


def _opt(default: Any, description: str, **extra: Any) -> Any:
    return field(default=default, metadata={"description": description, **extra})


@dataclass(frozen=True, slots=True)
class Settings:
    # --- server ---
    host: str = _opt("127.0.0.1", "Address to listen on.")
    port: int = _opt(8080, "TCP port to listen on.", min=0, max=65535)
    data_dir: str = _opt("./data", "Directory for the SQLite database, recordings, snapshots.")
    database_url: str = _opt(
        "",
        "SQLAlchemy async URL, e.g. postgresql+asyncpg://user@host/db. "
        "Empty: SQLite file <data_dir>/center.db.",
    )
    redis_url: str = _opt(
        "", "Redis URL for the event bus between instances. Empty: in-process bus."
    )
    center_name: str = _opt("深圳市社区矫正指挥中心", "Name shown on pages and wall screens.")
    timezone: str = _opt(
        "Asia/Shanghai", "Local time zone of check-in windows, reports and every page's times."
    )
    language: str = _opt("zh-CN", "Default UI language.", choices=("zh-CN", "en"))
    log_level: str = _opt("INFO", "Log level.", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    log_format: str = _opt(
        "text", "Log format: text, or json for log shippers.", choices=("text", "json")
    )
    demo: bool = _opt(False, "Seed the demo city and print demo logins (same as --demo).")
    simulator: bool = _opt(True, "With demo: run the check-in/device simulator.")
    # --- security ---
    session_ttl_hours: float = _opt(
        12.0, "Idle lifetime of a staff login session, hours.", min=0.01
    )
    secure_cookies: bool = _opt(False, "Mark cookies Secure (set when served behind TLS).")
    login_max_failures: int = _opt(
        5,
        "Failed logins for one username from one address before that pair is locked out "
        "(other addresses can still log in as that user).",
        min=1,
    )
    login_window_s: int = _opt(300, "Window in which failed logins are counted, seconds.", min=1)
    login_lockout_s: int = _opt(
        300,
        "First lockout after too many failed logins, seconds; each further lockout of the "
        "same pair within a day doubles it, up to login_lockout_max_s.",
        min=1,
    )
    login_lockout_max_s: int = _opt(
        3600, "Longest lockout of a username from an address, seconds.", min=1
    )
    login_address_max_failures: int = _opt(
        30,
        "Failed logins from one address, whatever the usernames, before the address is locked "
        "out for login_lockout_s (a guesser trying many names).",
        min=1,
    )
    trusted_proxies: str = _opt(
        "",
        "Reverse proxies whose X-Forwarded-For names the client (comma-separated addresses "
        "or CIDR networks, e.g. 127.0.0.1,10.0.0.0/24). Empty: the TCP peer is the client. "
        "Login throttling and the audit log use this address.",
    )
    max_body_bytes: int = _opt(
        1_048_576, "Largest accepted HTTP request body, bytes (413 above).", min=1024
    )
    # --- alarms ---
    checkin_plan_strict: str = _opt(
        "daily 08:00-10:00; daily 18:00-20:00",
        "Check-in windows of strict (严管) subjects, local time: '<daily|mon..sun> HH:MM-HH:MM' "
        "separated by ';'.",
    )
    checkin_plan_normal: str = _opt(
        "daily 08:00-20:00", "Check-in windows of normal (普管) subjects (same syntax)."
    )
    checkin_plan_lenient: str = _opt(
        "mon 08:00-20:00", "Check-in windows of lenient (宽管) subjects (same syntax)."
    )
    checkin_grace_s: int = _opt(
        600, "Grace period after a window ends before it counts as missed, seconds.", min=0
    )
    checkin_lateness_s: int = _opt(
        7200,
        "A check-in this long after the deadline still marks the no-check-in alarm "
        "late_checkin, seconds.",
        min=0,
    )
    demo_window_s: int = _opt(
        90,
        "With demo and simulator: everyone checks in every this many seconds (two thirds "
        "open, then grace), so alarms arrive within two minutes. 0: use the level plans.",
        min=0,
    )
    alarm_catchup_h: float = _opt(
        48.0,
        "On start, evaluate windows that closed while the server was down, up to this many "
        "hours back.",
        min=0,
    )
    alarm_severity: str = _opt(
        "",
        "Severity overrides: 'kind=severity' or 'kind.level=severity', comma-separated "
        "(e.g. 'no_checkin.normal=high,low_battery=medium').",
    )
    oob_consecutive_fixes: int = _opt(
        3, "Consecutive location fixes outside the city before out_of_bounds fires.", min=1
    )
    location_max_accuracy_m: float = _opt(
        1000.0, "Location fixes less accurate than this are stored but not judged, metres.", min=1
    )
    separation_m: float = _opt(
        500.0, "Phone and bracelet fixes farther apart than this raise separation, metres.", min=1
    )
    separation_fresh_s: int = _opt(
        300, "Phone and bracelet fixes count as simultaneous within this many seconds.", min=1
    )
    device_offline_min: float = _opt(
        30.0, "A device silent this many minutes raises device_offline.", min=0.1
    )
    checkin_retention_days: int = _opt(
        14, "Keep check-ins and device events this many days (alarm detail panel).", min=1
    )
    location_retention_h: int = _opt(48, "Keep location fixes this many hours.", min=1)
    ingest_rate_per_s: float = _opt(
        5000.0, "Ingestion rate per API key, items per second (429 above).", min=1
    )
    ingest_burst: int = _opt(
        20000, "Ingestion burst per API key, items (token bucket size).", min=1
    )
    ingest_max_batch: int = _opt(
        1000, "Most items in one ingestion batch (413 above).", min=1, max=10000
    )
    simulator_url: str = _opt(
        "",
        "Base URL the demo simulator posts to. Empty: this server's own listening port.",
    )
    # --- live ---
    redis_key_prefix: str = _opt(
        "center:", "Prefix of every Redis key and channel; instances sharing a Redis share it."
    )
    ws_auth_timeout_s: float = _opt(
        10.0, "Seconds a new websocket has to send its auth message before it is closed.", min=0.05
    )
    ws_heartbeat_s: float = _opt(
        20.0,
        "Websocket ping interval, seconds; a peer that misses a pong is dropped.",
        min=1,
        max=30,
    )
    ws_max_frame_bytes: int = _opt(
        65_536, "Largest accepted websocket frame, bytes; larger frames close with 1009.", min=1024
    )
    ws_send_queue: int = _opt(
        512,
        "Messages queued for one websocket client before it is dropped (1013) to resume later.",
        min=4,
    )
    ws_max_subscriptions: int = _opt(
        32,
        "Most subscriptions one websocket may hold (a duplicate of one it holds is refused).",
        min=1,
    )
    ws_compress: bool = _opt(
        False,
        "Offer permessage-deflate on websockets: less bandwidth on slow links, more CPU per "
        "client (off: the center runs on a LAN).",
    )
    ws_snapshot_alarms: int = _opt(
        500, "Most open alarms sent in an alarms-topic snapshot (newest first).", min=1
    )
    dashboard_updates_per_s: float = _opt(
        2.0, "Most dashboard deltas pushed per second; changes in between are coalesced.", min=0.1
    )
    dashboard_rebuild_s: float = _opt(
        300.0, "Seconds between full rebuilds of the live dashboard from the database.", min=1
    )
    dashboard_min_on_duty: int = _opt(
        2, "Officers that must be on duty; fewer raises the staffing warning.", min=0
    )
    wall_pairing_ttl_s: int = _opt(
        600, "Lifetime of a one-time wall pairing code, seconds.", min=30
    )

    # --- workflow ---
    ack_sla_minutes: str = _opt(
        "critical=5,high=10,medium=15,low=30,default=15",
        "Minutes to acknowledge a new alarm, per severity (severity=minutes, comma-separated; "
        "'default' covers the rest); a miss escalates street -> district -> city.",
    )
    report_sla_hours: str = _opt(
        "critical=2,high=4,medium=8,low=12,default=8",
        "Hours for the street office to report its verification after dispatch, per severity; "
        "a miss escalates street -> district -> city.",
    )
    loop_hours: float = _opt(
        24.0,
        "Hours from raise to disposal (the closed loop); later is flagged as breached.",
        min=0.01,
    )
    shift_grace_minutes: int = _opt(
        30, "Minutes after a rostered shift ends before a forgotten sign-on is closed.", min=0
    )
    timer_poll_s: float = _opt(
        15.0, "Seconds between checks for timers added by other instances.", min=0.05
    )
    evidence_max_bytes: int = _opt(
        10_485_760, "Largest evidence file (JPEG, PNG, PDF) accepted, bytes.", min=1024
    )

    # --- operations ---
    backup_interval_h: float = _opt(
        0.0,
        "Take a backup (as 'run.py backup') every this many hours while the center runs; "
        "SQLite only (PostgreSQL: pg_dump, see README). 0: no scheduled backups.",
        min=0,
    )
    backup_dir: str = _opt(
        "", "Directory for scheduled backups (center-<time>.tar). Empty: <data_dir>/backups."
    )
    backup_keep: int = _opt(
        7, "Scheduled backups kept in backup_dir; older ones are deleted.", min=1
    )

    # --- media ---
    ice_servers: str = _opt(
        "",
        "ICE servers for browsers and the media server: a JSON list of RTCIceServer objects "
        '([{"urls": ["turn:turn.example:3478"]}], username/credential optional) or '
        "comma-separated stun:/turn:/turns: URLs. Empty: host candidates only (LAN/intranet); "
        "no public STUN server is ever used.",
    )
    turn_secret: str = _opt(
        "",
        "Shared secret for time-limited TURN REST credentials (coturn use-auth-secret / "
        "static-auth-secret); used for turn:/turns: servers without a username.",
    )
    turn_ttl_s: int = _opt(21600, "Lifetime of TURN REST credentials, seconds.", min=60)
    recordings_dir: str = _opt(
        "", "Directory for call recordings (WebM/Matroska). Empty: <data_dir>/recordings."
    )
    snapshots_dir: str = _opt(
        "", "Directory for video snapshots (JPEG). Empty: <data_dir>/snapshots."
    )
    record_calls: bool = _opt(True, "Record call rooms unless the request says otherwise.")
    recording_retention_days: int = _opt(
        180, "Delete recordings this many days after they end (audited).", min=1
    )
    retention_sweep_s: int = _opt(
        3600, "Seconds between retention sweeps of expired recordings.", min=1
    )
    media_forwarding: str = _opt(
        "auto",
        "auto: forward encoded frames when the start-up self-test passes (else fall back to "
        "decode/re-encode, logged and in /metrics); relay: always decode/re-encode.",
        choices=("auto", "relay"),
    )
    media_max_parties: int = _opt(8, "Most parties in one call room (monitors not counted).", min=2)
    media_max_video_kbps: int = _opt(
        0,
        "Most video bitrate (kbit/s) the server asks any call publisher for, via REMB "
        "(0: no room cap; the weakest viewer's estimate still applies).",
        min=0,
        max=100_000,
    )
    media_rejoin_grace_s: float = _opt(
        20.0,
        "Seconds a call participant whose connection dropped keeps its slot and recording "
        "for a rejoin (0: removed at once).",
        min=0,
    )
    media_room_lease_s: float = _opt(
        15.0,
        "With Redis: seconds of the owner lease on a room, renewed every third of it; "
        "parties relayed by other instances get bye owner_lost within about this much "
        "after the owner dies.",
        min=1,
        max=3600,
    )

    # --- spot-checks ---
    spotcheck_ring_s: int = _opt(
        60, "Seconds a spot-check call rings before it counts as not answered.", min=5, max=3600
    )
    spotcheck_retry_s: str = _opt(
        "",
        "The retry ladder: seconds to wait before ringing again after no answer or a decline, "
        "comma-separated, one per extra attempt (e.g. '300,900'). Empty: one attempt; then "
        "the spot-check ends unreachable and raises one spotcheck_missed alarm.",
    )
    spotcheck_challenge_s: int = _opt(
        30, "Seconds the subject has to perform a live challenge.", min=5, max=600
    )
    spotcheck_gestures: str = _opt(
        "请举起三根手指,请把头转向左边,请把头转向右边,请眨三次眼睛,请用手摸右耳",
        "Gesture challenges the server draws from, comma-separated (shown to the subject as "
        "written); besides these it draws four random digits to read aloud.",
    )
    spotcheck_webhook_url: str = _opt(
        "",
        "URL that receives spotcheck.ringing (the app vendor's push service wakes the phone). "
        "Empty: no webhook.",
    )
    spotcheck_webhook_secret: str = _opt(
        "",
        "HMAC-SHA256 key for the webhook: the X-Center-Signature header is "
        "'sha256=<hex of HMAC(secret, body)>'.",
    )
    spotcheck_webhook_attempts: int = _opt(
        6,
        "Deliveries tried per webhook before giving up (back-off doubles from 5 s).",
        min=1,
        max=20,
    )
    spotcheck_campaign_share: float = _opt(
        0.0,
        "Random campaign (随机抽查): share of active subjects drawn each day and assigned to "
        "their street office, 0-1 (0: no campaign).",
        min=0.0,
        max=1.0,
    )
    spotcheck_campaign_weights: str = _opt(
        "strict=3,normal=2,lenient=1",
        "Draw weight per supervision level (level=weight, comma-separated).",
    )
    spotcheck_campaign_alarm_weight: float = _opt(
        1.0,
        "Extra draw weight per alarm the subject had in the last spotcheck_campaign_alarm_days.",
        min=0.0,
    )
    spotcheck_campaign_alarm_days: int = _opt(
        7, "Days of alarms that add to a subject's draw weight.", min=0, max=365
    )
    spotcheck_campaign_periods: str = _opt(
        "09:00-11:30,14:30-17:00",
        "Daily local periods the drawn spot-checks fall in, comma-separated; per-office periods "
        "follow after ';' as '<street id>=HH:MM-HH:MM,…' (e.g. '09:00-11:30; 440306005=10:00-12:00').",
    )
    spotcheck_campaign_seed: str = _opt(
        "",
        "Seed of the campaign's random source (the draw of a day is then reproducible). Empty: "
        "the system's random source.",
    )

    # --- prison family visits ---
    visit_minutes: int = _opt(
        25, "Length of a family visit in minutes; it ends itself then.", min=1, max=240
    )
    visit_max_relatives: int = _opt(3, "Most relatives on one visit.", min=1, max=10)
    visit_monthly_quota: int = _opt(
        1, "Visits an inmate may have per calendar month (privileged visits not counted).", min=0
    )
    visit_lead_working_days: int = _opt(
        5,
        "Working days (Monday to Friday) a visit is booked ahead; emergency visits skip it "
        "with a second staff approval.",
        min=0,
        max=60,
    )
    visit_holidays: str = _opt(
        "",
        "Public holidays that are not working days for the lead time, comma-separated "
        "YYYY-MM-DD dates or YYYY-MM-DD..YYYY-MM-DD ranges (e.g. 2026-10-01..2026-10-08).",
    )
    visit_working_weekends: str = _opt(
        "",
        "Make-up working days (调休) on a Saturday or Sunday that count as working days, "
        "comma-separated YYYY-MM-DD dates.",
    )
    visit_join_early_minutes: int = _opt(
        15,
        "Minutes before the slot a join code starts to work (until the slot ends).",
        min=0,
        max=240,
    )
    visit_rejoin_grace_s: float = _opt(
        120.0,
        "Seconds a dropped visit party keeps its place for a rejoin (0: none); time lost is "
        "not added.",
        min=0,
    )
    visit_no_show_minutes: int = _opt(
        10, "Minutes after the slot starts without the relatives before it ends as no_show.", min=1
    )
    visit_require_monitor: bool = _opt(
        True, "A visit goes live only while a staff monitor watches (privileged visits excepted)."
    )
    visit_notify_url: str = _opt(
        "",
        "URL of the SMS or WeChat gateway that receives the visit notices (approved with the "
        "join code, refused, cancelled, the reminder at 18:00 the day before). Empty: no "
        "notices are sent (they are recorded as skipped).",
    )
    visit_notify_secret: str = _opt(
        "",
        "HMAC-SHA256 key of the visit notices (X-Center-Signature: 'sha256=<hex of "
        "HMAC(secret, body)>'); also the key the pending join codes are kept encrypted under.",
    )
    visit_notify_attempts: int = _opt(
        6,
        "Deliveries tried per visit notice before it is marked failed (back-off doubles from "
        "30 s).",
        min=1,
        max=20,
    )
    visit_notify_base_url: str = _opt(
        "",
        "Public address of the center the join links in the notices start with, e.g. "
        "https://visits.example.org. Empty: the links are paths (/join/…).",
    )
    # --- faces ---
    face_match_threshold: float = _opt(
        0.6,
        "Largest face distance (dlib embeddings, Euclidean) that still counts as the same "
        "person; lower is stricter. See docs/faces.md for tuning.",
        min=0.05,
        max=1.5,
    )
    face_workers: int = _opt(
        1, "Worker processes that read faces (each about 0.1-0.2 s per photo on one core).", min=1
    )
    face_queue_max: int = _opt(
        2000,
        "Most photos waiting for the face workers; beyond it a check-in batch with photos "
        "answers 429 with Retry-After (nothing recorded, the client resends).",
        min=1,
    )
    faces_dir: str = _opt(
        "", "Directory for baseline and check-in face photos (JPEG). Empty: <data_dir>/faces."
    )
    liveness_window_s: float = _opt(
        5.0,
        "Seconds of the subject's video (media time) judged after a head-turn or blink "
        "challenge is issued.",
        min=1.0,
        max=30.0,
    )
    liveness_fps: float = _opt(
        4.0,
        "Frames a second of the challenge window given to the liveness judge.",
        min=1.0,
        max=15.0,
    )
    liveness_max_frames: int = _opt(
        24, "Most frames of one challenge window judged (each costs about 0.1 s).", min=4, max=120
    )

    # ---------------------------------------------------------------- derived values
    @property
    def database_url_resolved(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{Path(self.data_dir).resolve() / 'center.db'}"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def proxy_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        """:attr:`trusted_proxies` parsed (``ValueError`` for a bad entry)."""
        return tuple(
            ip_network(part.strip(), strict=False)
            for part in self.trusted_proxies.split(",")
            if part.strip()
        )

    @property
    def visit_holiday_days(self) -> frozenset[date]:
        """:attr:`visit_holidays` parsed (``ValueError`` for a bad entry)."""
        return parse_days(self.visit_holidays, ranges=True)

    @property
    def visit_working_weekend_days(self) -> frozenset[date]:
        """:attr:`visit_working_weekends` parsed (``ValueError`` for a bad entry)."""
        return parse_days(self.visit_working_weekends, ranges=False)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


FIELDS: dict[str, dataclasses.Field[Any]] = {f.name: f for f in dataclasses.fields(Settings)}


def _type_name(f: dataclasses.Field[Any]) -> str:
    return str(f.type)


def _coerce(name: str, raw: Any, source: str) -> Any:
    f = FIELDS[name]
    kind = _type_name(f)
    try:
        if kind == "bool":
            if isinstance(raw, bool):
                value: Any = raw
            elif isinstance(raw, str) and raw.strip().lower() in ("1", "true", "yes", "on"):
                value = True
            elif isinstance(raw, str) and raw.strip().lower() in ("0", "false", "no", "off", ""):
                value = False
            else:
                raise ValueError
        elif kind == "int":
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            value = int(raw)
        elif kind == "float":
            if isinstance(raw, bool):
                raise ValueError
            value = float(raw)
        else:
            if not isinstance(raw, str):
                raise ValueError
            value = raw
    except (TypeError, ValueError):
        raise SettingsError(
            f"Setting '{name}' from {source} has the value {raw!r}, which is not a valid "
            f"{kind}. {f.metadata['description']} Default: {f.default!r}."
        ) from None
    lo, hi = f.metadata.get("min"), f.metadata.get("max")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise SettingsError(
            f"Setting '{name}' from {source} is {value!r}, but it must be {bounds}. "
            f"{f.metadata['description']}"
        )
    choices = f.metadata.get("choices")
    if choices and value not in choices:
        raise SettingsError(
            f"Setting '{name}' from {source} is {value!r}; allowed values are "
            f"{', '.join(map(str, choices))}. {f.metadata['description']}"
        )
    return value


def _unknown(key: str, source: str) -> SettingsError:
    import difflib

    close = difflib.get_close_matches(key, FIELDS, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return SettingsError(
        f"Unknown setting '{key}' in {source}.{hint} Known settings are listed in the README's "
        "configuration table (or run 'python run.py settings')."
    )


def load_settings(
    *,
    config_file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build and validate :class:`Settings` from all sources (see module docstring)."""
    values: dict[str, Any] = {}
    if config_file is not None:
        path = Path(config_file)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SettingsError(
                f"The configuration file {path} does not exist. Pass an existing TOML file to "
                "--config, or leave it out to use defaults and CENTER_* variables."
            ) from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(
                f"The configuration file {path} is not valid TOML: {exc}. Fix the file or "
                "leave out --config."
            ) from None
        for key, raw in data.items():
            if key not in FIELDS:
                raise _unknown(key, f"the configuration file {path}")
            values[key] = _coerce(key, raw, f"the configuration file {path}")
    environ = os.environ if env is None else env
    for var, raw in environ.items():
        if not var.startswith(ENV_PREFIX) or var.startswith(_IGNORED_ENV_PREFIXES):
            continue
        key = var[len(ENV_PREFIX) :].lower()
        if key not in FIELDS:
            raise _unknown(key, f"the environment variable {var}")
        values[key] = _coerce(key, raw, f"the environment variable {var}")
    for key, raw in (overrides or {}).items():
        if raw is None:
            continue
        if key not in FIELDS:
            raise _unknown(key, "the command line")
        values[key] = _coerce(key, raw, "the command line")
    settings = Settings(**values)
    try:
        _ = settings.tz
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(
            f"Setting 'timezone' is {settings.timezone!r}, which is not a known IANA time zone "
            "(for example Asia/Shanghai)."
        ) from None
    url = settings.database_url
    if url and not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise SettingsError(
            f"Setting 'database_url' is {url!r}; it must start with sqlite+aiosqlite:// or "
            "postgresql+asyncpg:// (the center uses async drivers)."
        )
    try:
        _ = settings.proxy_networks
    except ValueError as exc:
        raise SettingsError(
            f"Setting 'trusted_proxies' is {settings.trusted_proxies!r}: {exc}. Give addresses "
            "or networks separated by commas, e.g. 127.0.0.1,10.0.0.0/24."
        ) from None
    if settings.redis_url and not settings.redis_url.startswith(
        ("redis://", "rediss://", "unix://")
    ):
        raise SettingsError(
            f"Setting 'redis_url' is {settings.redis_url!r}; it must start with redis://, "
            "rediss:// or unix://."
        )
    for name in ("visit_holidays", "visit_working_weekends"):
        try:
            parse_days(getattr(settings, name), ranges=name == "visit_holidays")
        except ValueError as exc:
            raise SettingsError(
                f"Setting {name!r} is {getattr(settings, name)!r}: {exc}. Give dates as "
                "YYYY-MM-DD separated by commas"
                + (
                    ", or ranges such as 2026-10-01..2026-10-08."
                    if name == "visit_holidays"
                    else "."
                )
            ) from None
    if settings.visit_notify_url and not settings.visit_notify_url.startswith(
        ("http://", "https://")
    ):
        raise SettingsError(
            f"Setting 'visit_notify_url' is {settings.visit_notify_url!r}; it must start with "
            "http:// or https:// (or be empty: no visit notices)."
        )
    if settings.visit_notify_url and not settings.visit_notify_secret:
        raise SettingsError(
            "Setting 'visit_notify_url' is set but 'visit_notify_secret' is empty: the gateway "
            "could not tell the notices are ours, and the join codes waiting to be sent would "
            "not be encrypted. Set visit_notify_secret to a long random string."
        )
    try:
        parse_ice_servers(settings.ice_servers)
    except ValueError as exc:
        raise SettingsError(
            f"Setting 'ice_servers' is {settings.ice_servers!r}: {exc}. Give a JSON list such "
            'as [{"urls": ["turn:turn.example:3478"]}] or comma-separated stun:/turn:/turns: '
            "URLs, or leave it empty for host candidates only."
        ) from None
    return settings


_MAX_RANGE_DAYS: Final = 366


def parse_days(text: str, *, ranges: bool) -> frozenset[date]:
    """Dates separated by commas (and, with ``ranges``, ``first..last`` inclusive).

    A range longer than a year is refused: it is a typo, not a holiday."""
    out: set[date] = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        first_text, sep, last_text = part.partition("..")
        if sep and not ranges:
            raise ValueError(f"{part!r} is a range; give single dates")
        try:
            first = date.fromisoformat(first_text.strip())
            last = date.fromisoformat(last_text.strip()) if sep else first
        except ValueError:
            raise ValueError(f"{part!r} is not a YYYY-MM-DD date") from None
        if last < first or (last - first).days >= _MAX_RANGE_DAYS:
            raise ValueError(f"{part!r} must run forwards and span less than a year")
        out.update(first + timedelta(days=i) for i in range((last - first).days + 1))
    return frozenset(out)


_ICE_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")


def parse_ice_servers(value: str) -> list[dict[str, Any]]:
    """``ice_servers`` as a list of ``{"urls": [...], "username"?, "credential"?}``.

    Parsed here (not in the media package) so a typo stops the server at start with a
    clear message instead of failing the first call after an ICE timeout.
    """
    text = value.strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"not valid JSON ({exc})") from None
        if not isinstance(raw, list):
            raise ValueError("the JSON must be a list")
    else:
        raw = [{"urls": [u.strip()]} for u in text.split(",") if u.strip()]
    servers: list[dict[str, Any]] = []
    for entry in raw:
        if isinstance(entry, str):
            entry = {"urls": [entry]}
        if not isinstance(entry, dict) or set(entry) - {"urls", "username", "credential"}:
            raise ValueError("each server is an object with urls, username, credential")
        urls = entry.get("urls")
        urls = [urls] if isinstance(urls, str) else urls
        if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
            raise ValueError("each server needs urls: a URL or a list of URLs")
        bad = [u for u in urls if not u.startswith(_ICE_SCHEMES)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a stun:, turn: or turns: URL")
        server: dict[str, Any] = {"urls": urls}
        for key in ("username", "credential"):
            if key in entry:
                if not isinstance(entry[key], str):
                    raise ValueError(f"{key} must be a string")
                server[key] = entry[key]
        if ("username" in server) != ("credential" in server):
            raise ValueError("give both username and credential, or neither")
        servers.append(server)
    return servers


LIVE_SETTINGS: Final = {
    "checkin_plan_strict": "the check-in plans tab, per level",
    "checkin_plan_normal": "the check-in plans tab, per level",
    "checkin_plan_lenient": "the check-in plans tab, per level",
    "alarm_severity": "the check-in plans tab",
    "ack_sla_minutes": "the check-in plans tab",
    "report_sla_hours": "the check-in plans tab",
    "loop_hours": "the check-in plans tab",
}
"""Settings an administrator changes on ``/admin`` without a restart (on every instance; the
stored value then replaces the setting). Every other setting is read at start-up only."""


def settings_table_markdown() -> str:
    """The README's configuration table, generated so it never drifts from the code; the
    settings that change live are marked, every other one is start-up only."""
    rows = ["| setting | env var | default | description |", "|---|---|---|---|"]
    for name, f in FIELDS.items():
        default = f.default
        shown = (
            "(empty)"
            if default == ""
            else str(default).lower()
            if isinstance(default, bool)
            else str(default)
        )
        text = f.metadata["description"]
        if name in LIVE_SETTINGS:
            text += f" **Live:** changed on `/admin` ({LIVE_SETTINGS[name]}) without a restart."
        rows.append(f"| `{name}` | `{ENV_PREFIX}{name.upper()}` | `{shown}` | {text} |")
    return "\n".join(rows)
