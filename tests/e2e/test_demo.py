"""The offline demo plays green inside the test suite."""

from __future__ import annotations

import io

from bot.demo import run_demo


async def test_the_demo_plays_every_step_and_prints_the_transcripts():
    out = io.StringIO()
    assert await run_demo(out)
    text = out.getvalue()
    assert "── 市民留言分办中心" in text and "── 自来水公司办件群" in text
    [third] = [line for line in text.splitlines() if line.startswith("CZ2026-000003 ")]
    assert third.split() == ["CZ2026-000003", "及时办", "市生态环境局", "已办结", "2", "满意"]
    assert "全部步骤完成" in text
