#!/usr/bin/env python3
"""Entry point: parse the command line, build settings, run ``create_app(settings)``.

python run.py [--demo] [--host H] [--port P] [--data-dir D] [--config FILE]
python run.py migrate | create-user ... | create-key ... | revoke-key ... | disable-user ... | verify-audit | settings
python run.py backup --to FILE | restore --from FILE
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def _common(parser: argparse.ArgumentParser, suppress: bool) -> None:
    d: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument("--config", default=d, help="TOML settings file")
    parser.add_argument("--host", default=d, help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", default=d, help="port to listen on (default 8080)")
    parser.add_argument("--data-dir", default=d, help="data directory (default ./data)")
    parser.add_argument(
        "--demo",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="seed and run the demo city",
    )
    parser.add_argument(
        "--no-simulator",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="with --demo: do not simulate check-ins and device events",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run.py", description="Community-corrections command center"
    )
    _common(parser, suppress=False)
    sub = parser.add_subparsers(dest="command")
    for name, help_ in (
        ("serve", "run the server (the default)"),
        ("migrate", "apply database migrations and exit"),
        ("verify-audit", "check the audit log's hash chain (exit 1 if broken)"),
    ):
        _common(sub.add_parser(name, help=help_), suppress=True)
    st = sub.add_parser("settings", help="print every setting with its default and description")
    st.add_argument("--write-readme", action="store_true", help="rewrite README.md's table")
    cu = sub.add_parser("create-user", help="create a staff user, or a subject's login")
    _common(cu, suppress=True)
    cu.add_argument("--username", required=True)
    cu.add_argument(
        "--role",
        required=True,
        choices=["admin", "duty", "district", "street", "visit_staff", "subject"],
    )
    cu.add_argument("--subject-id", help="with --role subject: the supervised person this login is")
    cu.add_argument("--jurisdiction", help="jurisdiction id (default: the city)")
    cu.add_argument("--display-name")
    cu.add_argument("--password", help="default: generate one and print it")
    ck = sub.add_parser("create-key", help="create an integration API key or a wall device token")
    _common(ck, suppress=True)
    ck.add_argument("--name", required=True)
    ck.add_argument("--kind", choices=["api_key", "device_token"], default="api_key")
    ck.add_argument("--jurisdiction", help="jurisdiction id (default: the city)")
    rk = sub.add_parser(
        "revoke-key", help="revoke an API key or device token (running instances drop it at once)"
    )
    _common(rk, suppress=True)
    which = rk.add_mutually_exclusive_group(required=True)
    which.add_argument("--name", help="the name given at create-key")
    which.add_argument("--id", help="the credential id (GET /api/v1/keys)")
    du = sub.add_parser("disable-user", help="disable a user and end every session at once")
    _common(du, suppress=True)
    du.add_argument("--username", required=True)
    bk = sub.add_parser(
        "backup", help="copy the SQLite database and files into one archive (center may run)"
    )
    _common(bk, suppress=True)
    bk.add_argument(
        "--to", required=True, metavar="FILE", help="archive to write (.tar or .tar.gz)"
    )
    rs = sub.add_parser(
        "restore", help="restore an archive from 'backup' (refused while a center runs)"
    )
    _common(rs, suppress=True)
    rs.add_argument("--from", required=True, dest="source", metavar="FILE")
    tail = sub.add_parser("tail", help="print live alarm events from a running center")
    tail.add_argument(
        "--url", required=True, help="e.g. ws://127.0.0.1:8080/ws or http://127.0.0.1:8080"
    )
    tail.add_argument("--token", required=True, help="a device token or session token")
    tail.add_argument("--topic", default="alarms")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = args.command or "serve"
    if command == "tail":
        from web.tail import run_tail

        return run_tail(args.url, args.token, args.topic)

    if command == "settings":
        from center.cli import run_settings

        return run_settings(args.write_readme)
    from config.settings import SettingsError, load_settings

    overrides: dict[str, Any] = {"host": args.host, "port": args.port, "data_dir": args.data_dir}
    if args.demo:
        overrides["demo"] = True
    if args.no_simulator:
        overrides["simulator"] = False
    try:
        settings = load_settings(config_file=args.config, overrides=overrides)
    except SettingsError as err:
        print(f"run.py: configuration error: {err}", file=sys.stderr)
        return 2

    from center.logsetup import setup_logging

    setup_logging(settings.log_level, settings.log_format)
    from center import cli

    if command == "migrate":
        return cli.run_migrate(settings)
    if command == "create-user":
        return cli.run_create_user(settings, args)
    if command == "create-key":
        return cli.run_create_key(settings, args)
    if command == "revoke-key":
        return cli.run_revoke_key(settings, args)
    if command == "disable-user":
        return cli.run_disable_user(settings, args)
    if command == "backup":
        return cli.run_backup(settings, args.to)
    if command == "restore":
        return cli.run_restore(settings, args.source)
    if command == "verify-audit":
        return cli.run_verify_audit(settings)
    from web.serve import serve

    return serve(settings)


if __name__ == "__main__":
    sys.exit(main())
