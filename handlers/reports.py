"""/report and /stats for staff, and the renderer of scheduled reports (outbox key 'report')."""

from __future__ import annotations

import asyncio
import html
from datetime import datetime
from typing import Any

from telegram import InputFile, Update
from telegram.constants import ParseMode
from telegram.ext import CommandHandler

from bot import reports
from bot.app import Context
from bot.domain import errors
from bot.domain.case import CaseState
from bot.i18n import Translator
from bot.telemetry import telemetry_of
from handlers.common import error_text, t_for
from handlers.render import RENDERERS, STATE_NAMES, RenderContext, Rendered
from storage import directory

CAPTION_LIMIT = 1024


async def report_files(
    report: reports.Report, t: Translator, policy: Any, names: dict[str, str]
) -> Rendered:
    """A built report as a message: text (HTML-escaped), the chart, the XLSX."""
    stem = reports.file_stem(report)
    # Drawing and zipping take a while: off the event loop, so the bot stays responsive.
    chart = await asyncio.to_thread(reports.chart_png, report, t, policy, names)
    sheet = await asyncio.to_thread(reports.xlsx_bytes, report, policy, names)
    return Rendered(
        html.escape(reports.summary_text(report, t, policy, names), quote=False),
        photos=[(f"{stem}.png", chart)],
        documents=[(f"{stem}.xlsx", sheet)],
    )


async def render_report(ctx: RenderContext, params: dict[str, Any]) -> Rendered:
    """Build a queued report at send time, in the recipient group's language."""
    period = reports.period_of(params)
    report = await reports.build_report(
        ctx.db,
        ctx.policy,
        period,
        datetime.fromisoformat(params["as_of"]),
        unit=params.get("unit"),
        track=params.get("track"),
    )
    return await report_files(report, ctx.t, ctx.policy, ctx.unit_names)


async def _reply_report(update: Update, rendered: Rendered) -> None:
    message = update.effective_message
    if message is None:
        return
    caption = rendered.text if len(rendered.text) <= CAPTION_LIMIT else None
    if caption is None:
        await message.reply_text(rendered.text, parse_mode=ParseMode.HTML)
    name, content = rendered.photos[0]
    await message.reply_photo(
        InputFile(content, filename=name), caption=caption, parse_mode=ParseMode.HTML
    )
    for name, content in rendered.documents:
        await message.reply_document(InputFile(content, filename=name))


async def report_command(update: Update, context: Context) -> None:
    """/report week|month|quarter [UNIT] [PERIOD]."""
    user = update.effective_user
    message = update.effective_message
    if user is None or message is None:
        return
    t = t_for(update, context)
    svc = context.services
    args = list(context.args or [])
    kind = args.pop(0).lower() if args else "week"
    period = next((a for a in args if a[:1].isdigit()), None)
    unit = next((a for a in args if not a[:1].isdigit()), None)
    try:
        report = await reports.request_report(svc, user.id, kind, unit, period)
    except errors.NotAllowed as error:
        await message.reply_text(error_text(t, error))
        return
    except errors.DomainError as error:
        await message.reply_text(
            error_text(t, error)
            + "\n"
            + t.gettext("Usage: /report week|month|quarter [UNIT] [PERIOD]")
        )
        return
    names = await directory.unit_names(svc.db)
    await _reply_report(update, await report_files(report, t, svc.policy, names))
    telemetry_of(context.application).count_report("on_demand")


async def stats_command(update: Update, context: Context) -> None:
    """/stats: open cases by state, overdue cases, today's filings."""
    user = update.effective_user
    message = update.effective_message
    if user is None or message is None:
        return
    t = t_for(update, context)
    g = t.gettext
    try:
        stats = await reports.current_stats(context.services, user.id)
    except errors.DomainError as error:
        await message.reply_text(error_text(t, error))
        return
    lines = [
        "📈 " + g("Current view"),
        g("Open cases: {count}").format(count=sum(stats.open_by_state.values())),
    ]
    for state, count in sorted(stats.open_by_state.items()):
        label = g(STATE_NAMES[CaseState(state)])
        lines.append(f"  · {html.escape(label)}: {count}")
    lines.append(g("Overdue: {count}").format(count=stats.overdue))
    lines.append(g("Filed today: {count}").format(count=stats.filed_today))
    await message.reply_text("\n".join(lines), parse_mode=ParseMode.HTML)


def register(app: Any, group: int = 0) -> None:
    """The staff report commands, and the renderer of queued reports."""
    RENDERERS.setdefault(reports.MESSAGE_KEY, render_report)
    app.add_handler(CommandHandler("report", report_command), group=group)
    app.add_handler(CommandHandler("stats", stats_command), group=group)
