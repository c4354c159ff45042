"""Run the server until SIGINT/SIGTERM (aiohttp's run_app shuts down gracefully)."""

from __future__ import annotations

import logging
import sys

from aiohttp import web

from center.datalock import DataDirBusy
from config.settings import Settings
from web import keys
from web.app import create_app

_LOGGER = logging.getLogger(__name__)


def _banner(app: web.Application, settings: Settings) -> str:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    lines = [
        f"{settings.center_name} is running on http://{host}:{settings.port}/  (Ctrl+C to stop)"
    ]
    demo = app.get(keys.DEMO)
    if demo:
        lines.append(f"Demo logins (also in {settings.data_dir}/demo-credentials.json):")
        for name, info in demo["users"].items():
            password = info["password"] or "(unchanged: seeded by another instance)"
            subject = f" (subject {info['subject_id']}, page /s)" if info.get("subject_id") else ""
            lines.append(f"  {name:<10} {password:<18} {info['role']}{subject}")
        if demo["wall_token"]:
            lines.append(
                f"  wall screen: http://{host}:{settings.port}/wall?token={demo['wall_token']}"
            )
    return "\n".join(lines)


def serve(settings: Settings) -> int:
    app = create_app(settings)

    def _print(_msg: str) -> None:
        print(_banner(app, settings), flush=True)

    try:
        web.run_app(
            app,
            host=settings.host,
            port=settings.port,
            print=_print,
            access_log=None,
            shutdown_timeout=10,
        )
    except DataDirBusy as exc:
        print(f"run.py: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(
            f"run.py: cannot listen on {settings.host}:{settings.port}: {exc.strerror}",
            file=sys.stderr,
        )
        return 2
    return 0
