"""The `wenzheng` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from bot.clock import Clock
from bot.config import EXAMPLE_POLICY, PolicyError, Settings, SettingsError, load_policy
from bot.domain.policy import Policy, Track

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

TRACK_NAMES = {
    Track.SPECIAL: "特别办 special",
    Track.ROUTINE: "及时办 routine",
    Track.COORDINATED: "协调办 coordinated",
    Track.HIGH_LEVEL: "高位办 high-level",
}


def describe_policy(policy: Policy, clock: Clock) -> str:
    """A short human summary of a policy, with the deadlines a case assigned now would get."""
    calendar = policy.calendar
    now = clock.now().astimezone(calendar.tz)
    lines = [
        f"City:        {policy.city} (case numbers {policy.case_prefix}{now.year}-000001…)",
        f"Time zone:   {calendar.tz.key}; working hours "
        f"{calendar.day_start:%H:%M}–{calendar.day_end:%H:%M} "
        f"({calendar.day_length.total_seconds() / 3600:g} h a day)",
        f"Calendar:    {calendar.kind}; {now.year}: {calendar.schedule_source(now.year)}, "
        f"{now.year + 1}: {calendar.schedule_source(now.year + 1)}",
        f"Categories:  {len(policy.categories)}   Districts: {len(policy.districts)}   "
        f"Units: {len(policy.units)}   Routing rules: {len(policy.routing)}",
        "",
        f"Tracks (assigned now, {now:%Y-%m-%d %a %H:%M}):",
    ]
    for track in Track:
        tp = policy.track(track)
        dues = [getattr(tp, stage).after(now, calendar) for stage in ("sign", "reply", "resolve")]
        review = "review" if tp.review_before_publish else "no review"
        lines.append(
            f"  {TRACK_NAMES[track]:<20} sign {tp.sign!s:>3}  reply {tp.reply!s:>3}  "
            f"resolve {tp.resolve!s:>3}  {review:<9} → resolve due {dues[2]:%Y-%m-%d %H:%M}"
        )
    chasing, callback = policy.chasing, policy.callback
    lines += [
        "",
        f"Chasing:     reminder at {chasing.reminder_at:.0%} of each window; supervision after "
        f"{chasing.supervision_after_days:g}, leaders after {chasing.leaders_after_days:g} "
        f"working days overdue; {chasing.max_returns} returns go to the supervisor",
        f"Callback:    reminder after {callback.reminder_after.days} day(s), closed as not rated "
        f"after {callback.close_after.days}; at most {callback.max_rounds} rounds",
        f"Extensions:  capped at {policy.extension_cap_days:g} working days from assignment",
    ]
    if calendar.next_year_schedule_missing(now.date()):
        lines += [
            "",
            f"WARNING: the official schedule for {now.year + 1} is missing. Add "
            f"[calendar.years.{now.year + 1}] with its holidays and adjusted working days "
            "as soon as the State Council publishes them.",
        ]
    return "\n".join(lines)


def cmd_check_policy(args: argparse.Namespace) -> int:
    """Validate a policy file and print a summary."""
    path = Path(args.file) if args.file else Settings.from_env().policy
    try:
        policy = load_policy(path)
    except PolicyError as error:
        print(f"Policy error: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(f"Policy {path}: OK\n")
    print(describe_policy(policy, Clock()))
    return EXIT_OK


async def _init(settings: Settings) -> int:
    from bot import services
    from storage.db import Database

    policy = load_policy(settings.policy)
    db = Database(settings.database)
    applied = await db.connect()
    try:
        svc = services.Services(db=db, policy=policy, clock=Clock(), admins=settings.admins)
        created = await services.setup_policy_units(svc)
        version = await db.schema_version()
    finally:
        await db.close()
    print(
        f"Database {settings.database}: schema version {version}"
        f" ({'applied ' + ', '.join(map(str, applied)) if applied else 'already current'})"
    )
    print(f"Units from the policy: {created} created, {len(policy.units)} in the policy")
    if settings.admins:
        print(f"Admins: {', '.join(map(str, settings.admins))}")
    else:
        print("No admins yet: set WENZHENG_ADMINS to your Telegram user id.")
    return EXIT_OK


def cmd_init(args: argparse.Namespace) -> int:
    """Create or migrate the database and load the policy's units."""
    try:
        return asyncio.run(_init(Settings.from_env()))
    except (PolicyError, SettingsError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return EXIT_USAGE


async def _migrate_status(settings: Settings) -> int:
    from storage.db import Database, migrations

    if not settings.database.exists():
        print(f"Database {settings.database} does not exist yet; `wenzheng init` creates it.")
        return EXIT_FAILURE
    db = Database(settings.database)
    await db.connect(migrate=False)
    try:
        version = await db.schema_version()
    finally:
        await db.close()
    for number, name, _ in migrations():
        print(f"  {'applied' if number <= version else 'pending'}  {name}")
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace) -> int:
    """Show or apply schema migrations."""
    settings = Settings.from_env()
    if args.status:
        return asyncio.run(_migrate_status(settings))
    return asyncio.run(_init(settings))


def cmd_run(args: argparse.Namespace) -> int:
    """Run the bot (long polling)."""
    settings = Settings.from_env()
    if not settings.token:
        print(
            "WENZHENG_TOKEN is not set: the bot needs a token from @BotFather to talk to "
            "Telegram.\n"
            "  export WENZHENG_TOKEN=123456:ABC...   (or put it in a .env file)\n"
            "To see Wenzheng work without a token or network, run the offline demo:\n"
            "  ./dev demo",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        policy = load_policy(settings.policy)
    except PolicyError as error:
        print(f"Policy error: {error}", file=sys.stderr)
        return EXIT_USAGE
    from bot import ops
    from bot.app import run_polling
    from bot.logs import configure_logging
    from bot.web import listen_address, run_webhook, webhook_settings

    try:
        listen_address(settings.listen)
        if args.webhook:
            webhook_settings(settings)
    except SettingsError as error:
        print(f"Error: {error}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(settings.log_level, settings.log_format)
    run = run_webhook if args.webhook else run_polling
    try:
        with ops.hold_run_lock(settings.database):
            asyncio.run(run(settings, policy, Clock()))
    except ops.AlreadyRunning as error:
        print(f"Error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the offline demo."""
    from bot.demo import main as demo_main

    return demo_main()


async def _report(settings: Settings, args: argparse.Namespace) -> int:
    from bot import reports
    from bot.i18n import translator
    from storage import directory
    from storage.db import Database

    policy = load_policy(settings.policy)
    if not settings.database.exists():
        print(f"Database {settings.database} does not exist.", file=sys.stderr)
        return EXIT_FAILURE
    db = Database(settings.database)
    await db.connect(migrate=False)
    try:
        now = Clock().now()
        period = reports.parse_period(args.kind, args.period, now, policy)
        track = "high_level" if args.kind == "daily" else None
        report = await reports.build_report(db, policy, period, now, unit=args.unit, track=track)
        names = await directory.unit_names(db)
    finally:
        await db.close()
    paths = reports.write_files(report, translator(args.lang), policy, Path(args.out), names)
    for path in paths:
        print(path)
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    """Write a report's text, chart and spreadsheet from the database."""
    from bot.domain import errors

    args.period = args.week or args.month or args.quarter or args.day
    try:
        return asyncio.run(_report(Settings.from_env(), args))
    except PolicyError as error:
        print(f"Policy error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except errors.InvalidInput:
        print(
            "Invalid period (e.g. --week 2026-W48, --month 2026-11, --quarter 2026-Q4).",
            file=sys.stderr,
        )
        return EXIT_USAGE


def _date_arg(text: str) -> date:
    """An argparse type: a date like 2026-11-30."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-30") from None


def cmd_backup(args: argparse.Namespace) -> int:
    """Copy the database to PATH: an online backup, consistent while the bot runs."""
    from bot import ops

    settings = Settings.from_env()
    try:
        result = asyncio.run(ops.backup(settings.database, Path(args.path), force=args.force))
    except ops.OpsError as error:
        print(f"Backup failed: {error}", file=sys.stderr)
        return EXIT_FAILURE
    print(
        f"Backup {result.path}: {result.size:,} bytes, schema version {result.schema_version}, "
        f"{result.cases} case(s); integrity check ok"
    )
    return EXIT_OK


def cmd_restore(args: argparse.Namespace) -> int:
    """Replace the database with a backup (the bot must be stopped)."""
    from bot import ops

    settings = Settings.from_env()
    try:
        result = asyncio.run(ops.restore(Path(args.path), settings.database))
    except ops.OpsError as error:
        print(f"Restore refused: {error}", file=sys.stderr)
        return EXIT_FAILURE
    if result.previous is not None:
        print(f"The database it replaced is kept as {result.previous}")
    print(
        f"Restored {args.path} into {result.path}: schema version {result.schema_version}, "
        f"{result.cases} case(s). Start the bot again."
    )
    return EXIT_OK


async def _export(settings: Settings, args: argparse.Namespace) -> int:
    from bot import ops
    from storage.db import Database

    policy = load_policy(settings.policy)
    if not settings.database.is_file():
        print(f"Database {settings.database} does not exist.", file=sys.stderr)
        return EXIT_FAILURE
    out = Path(args.out or f"cases-{args.date_from}-{args.date_to}.{args.format}")
    db = Database(settings.database)
    await db.connect(migrate=False)
    try:
        count = await ops.export_cases(
            db,
            args.date_from,
            args.date_to,
            args.format,
            out,
            policy=policy,
            include_identity=args.with_identity,
        )
    finally:
        await db.close()
    print(f"{out}: {count} case(s)")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """Export cases filed in a date range as CSV or XLSX."""
    from bot import ops

    try:
        return asyncio.run(_export(Settings.from_env(), args))
    except PolicyError as error:
        print(f"Policy error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ops.OpsError as error:
        print(f"Export error: {error}", file=sys.stderr)
        return EXIT_USAGE


def cmd_admin_add(args: argparse.Namespace) -> int:
    """Make a Telegram user an admin."""
    from bot import ops

    try:
        added = asyncio.run(ops.add_admin(Settings.from_env(), args.user_id))
    except PolicyError as error:
        print(f"Policy error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ops.OpsError as error:
        print(f"Error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"User {args.user_id} is {'now' if added else 'already'} an admin.")
    return EXIT_OK


async def _doctor(settings: Settings) -> int:
    from bot import ops
    from storage.db import Database

    policy = load_policy(settings.policy)
    if not settings.database.is_file():
        print(f"Database {settings.database} does not exist.", file=sys.stderr)
        return EXIT_FAILURE
    db = Database(settings.database)
    await db.connect(migrate=False)
    try:
        problems = await ops.doctor(db, policy, Clock())
    finally:
        await db.close()
    if not problems:
        print(f"Database {settings.database}: no problems found.")
        return EXIT_OK
    for problem in problems:
        print(f"{problem}\n")
    print(f"{len(problems)} problem(s) found.")
    return EXIT_FAILURE


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check the database and print each problem with its fix."""
    import sqlite3

    try:
        return asyncio.run(_doctor(Settings.from_env()))
    except PolicyError as error:
        print(f"Policy error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except sqlite3.DatabaseError as error:
        print(
            f"Cannot read the database: {error}. Restore the latest backup "
            "(`wenzheng restore PATH`).",
            file=sys.stderr,
        )
        return EXIT_FAILURE


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="wenzheng",
        description="问政 Wenzheng — citizen message handling (网民留言办理) in Telegram.",
        epilog="Settings come from WENZHENG_* environment variables (see the README).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    check = commands.add_parser("check-policy", help="validate a policy file and summarise it")
    check.add_argument(
        "file", nargs="?", help=f"policy TOML (default: WENZHENG_POLICY or {EXAMPLE_POLICY.name})"
    )
    check.set_defaults(handler=cmd_check_policy)
    demo = commands.add_parser(
        "demo", help="play a scripted story offline: simulator + real bot, no token needed"
    )
    demo.set_defaults(handler=cmd_demo)
    run = commands.add_parser("run", help="run the bot (long polling)")
    run.add_argument(
        "--webhook",
        action="store_true",
        help="receive updates from Telegram's webhook on WENZHENG_LISTEN instead of polling",
    )
    run.set_defaults(handler=cmd_run)
    init = commands.add_parser("init", help="create or migrate the database, load policy units")
    init.set_defaults(handler=cmd_init)
    migrate = commands.add_parser("migrate", help="apply pending schema migrations")
    migrate.add_argument("--status", action="store_true", help="only list migrations")
    migrate.set_defaults(handler=cmd_migrate)
    report = commands.add_parser(
        "report", help="write a report (text, PNG chart, XLSX) from the database, offline"
    )
    report.add_argument("kind", choices=("weekly", "monthly", "quarterly", "daily"))
    report.add_argument("--week", help="ISO week, e.g. 2026-W48 (default: this week)")
    report.add_argument("--month", help="e.g. 2026-11")
    report.add_argument("--quarter", help="e.g. 2026-Q4")
    report.add_argument("--day", help="e.g. 2026-11-30 (daily high-level report)")
    report.add_argument("--unit", help="one unit's report (unit code)")
    report.add_argument("--lang", default="zh_Hans", help="zh_Hans, zh_Hant or en")
    report.add_argument("--out", default=".", help="folder to write into (default: here)")
    report.set_defaults(handler=cmd_report)
    backup = commands.add_parser(
        "backup", help="copy the database to PATH (online: consistent while the bot runs)"
    )
    backup.add_argument("path", help="the backup file to write")
    backup.add_argument("--force", action="store_true", help="overwrite PATH if it exists")
    backup.set_defaults(handler=cmd_backup)
    restore = commands.add_parser(
        "restore", help="replace the database with a backup (stop the bot first)"
    )
    restore.add_argument("path", help="a backup written by `wenzheng backup`")
    restore.set_defaults(handler=cmd_restore)
    export = commands.add_parser("export", help="export data as CSV or XLSX")
    export_what = export.add_subparsers(dest="what", metavar="WHAT", required=True)
    export_cases = export_what.add_parser(
        "cases", help="one row per case filed in a date range (no citizen identity by default)"
    )
    export_cases.add_argument(
        "--from",
        dest="date_from",
        type=_date_arg,
        required=True,
        metavar="DATE",
        help="first filing date, local time, e.g. 2026-11-01",
    )
    export_cases.add_argument(
        "--to",
        dest="date_to",
        type=_date_arg,
        required=True,
        metavar="DATE",
        help="last filing date (inclusive), e.g. 2026-11-30",
    )
    export_cases.add_argument("--format", choices=("csv", "xlsx"), default="csv")
    export_cases.add_argument("--out", help="file to write (default: cases-FROM-TO.FORMAT)")
    export_cases.add_argument(
        "--with-identity",
        action="store_true",
        help="add citizen id, name, username and phone (staff use only: personal data)",
    )
    export_cases.set_defaults(handler=cmd_export)
    admin = commands.add_parser("admin", help="manage administrators")
    admin_actions = admin.add_subparsers(dest="action", metavar="ACTION", required=True)
    admin_add = admin_actions.add_parser("add", help="make a Telegram user an admin")
    admin_add.add_argument("user_id", type=int, help="numeric Telegram user id")
    admin_add.set_defaults(handler=cmd_admin_add)
    doctor = commands.add_parser(
        "doctor", help="check the database; print each problem with its fix (exit 1 if any)"
    )
    doctor.set_defaults(handler=cmd_doctor)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `wenzheng` console script."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except SettingsError as error:
        print(f"Settings error: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
