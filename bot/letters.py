"""The assignment letter (交办函) sent to the supervision group with an escalation, as PDF.

Chinese text uses ReportLab's built-in CID font (STSong-Light), which the library ships:
no font file to install, and the text stays selectable and searchable in the PDF.
"""

from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass
from datetime import datetime

from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))

STAGES = {"sign": "签收", "reply": "首次答复", "resolve": "办结答复"}


@dataclass(frozen=True)
class LetterFacts:
    """What the letter says: the case, the unit, the missed deadline, the requirement."""

    number: str
    city: str
    unit_name: str
    category: str
    district: str
    text: str
    filed_at: datetime
    assigned_at: datetime
    stage: str
    due: datetime
    days_overdue: float
    issued_at: datetime
    answer_within_days: int = 1


def assignment_letter(facts: LetterFacts) -> bytes:
    """The 交办函 as PDF bytes."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, invariant=True)
    pdf.setTitle(f"交办函 {facts.number}")
    pdf.setAuthor(f"{facts.city}市民留言分办中心")
    width, height = A4
    y = height - 90

    def line(text: str, size: int = 12, gap: int = 22, x: float = 72) -> None:
        nonlocal y
        pdf.setFont(FONT, size)
        pdf.drawString(x, y, text)
        y -= gap

    pdf.setFont(FONT, 22)
    pdf.drawCentredString(width / 2, y, "督 办 交 办 函")
    y -= 30
    pdf.setFont(FONT, 11)
    pdf.drawCentredString(width / 2, y, f"（{facts.number}）")
    y -= 40
    line(f"{facts.unit_name}：", 13, 30)
    stage = STAGES.get(facts.stage, facts.stage)
    body = (
        f"网民留言 {facts.number}（{facts.category}，{facts.district}）于 "
        f"{facts.assigned_at:%Y年%m月%d日 %H:%M} 交由你单位办理，{stage}时限为 "
        f"{facts.due:%Y年%m月%d日 %H:%M}，现已超期 {facts.days_overdue:g} 个工作日。"
        f"根据网民留言办理工作规定，现予督办。"
    )
    for chunk in textwrap.wrap(body, 34):
        line("    " + chunk if chunk == textwrap.wrap(body, 34)[0] else chunk)
    y -= 8
    line("留言内容：", 12, 20)
    excerpt = facts.text if len(facts.text) <= 300 else facts.text[:299] + "…"
    for chunk in textwrap.wrap(excerpt, 36)[:10]:
        line(chunk, 11, 18, 90)
    y -= 10
    line("督办要求：", 12, 20)
    requirement = (
        f"请你单位高度重视，于收到本函后 {facts.answer_within_days} 个工作日内办结并答复网民，"
        "同时将办理情况报送分办中心。逾期未办结的，将提请领导督办并纳入季度通报。"
    )
    for chunk in textwrap.wrap(requirement, 34):
        line(chunk, 12, 20, 90)
    y -= 40
    pdf.setFont(FONT, 12)
    pdf.drawRightString(width - 72, y, f"{facts.city}市民留言分办中心（督查督办）")
    y -= 22
    pdf.drawRightString(width - 72, y, f"{facts.issued_at:%Y年%m月%d日}")
    y -= 40
    pdf.setFont(FONT, 9)
    pdf.drawString(72, 60, f"留言受理时间：{facts.filed_at:%Y年%m月%d日 %H:%M}　本函由问政系统生成")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
