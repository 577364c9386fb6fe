"""`python -m bench` merges each module's JSON figures into one table."""

from __future__ import annotations

from bench.__main__ import command, merge, table


def row(section: str, name: str, left: float | None, right: float | None, **extra: object):
    return {"section": section, "name": name, "left": left, "right": right,
            "left_label": "10k", "right_label": "1M", **extra}


def test_rows_of_every_module_are_merged_in_order_with_their_ratio():
    outputs = {
        "delivery": {"figures": [row("delivery", "drain (s)", 90.0, 99.0, target="<= 1.15x",
                                     ok=True, ratio=1.1)], "data": {"runs": 2}},
        "core": {"figures": [row("growth: core", "due query (ms)", 2.0, 3.0, digits=2),
                             {"name": "file size (MB)", "left": 4.0, "right": None,
                              "target": "-"}]},
    }
    rows = merge(outputs)
    assert [(r["section"], r["name"]) for r in rows] == [
        ("delivery", "drain (s)"), ("growth: core", "due query (ms)"),
        ("core", "file size (MB)")]
    assert [r["ratio"] for r in rows] == [1.1, 1.5, None]
    assert rows[2]["ok"] is None and rows[2]["digits"] == 1 and rows[2]["target"] == ""


def test_the_table_shows_both_sides_with_labels_ratio_target_and_verdict():
    rows = merge({"core": {"figures": [
        row("growth: core", "sweep (ms)", 12.0, 18.5, target="ratio < 2", ok=True, digits=1),
        row("growth: core", "memory (MB)", 80.0, 400.0, target="< 200", ok=False, digits=0),
    ]}})
    text = table(rows, ["intake: skipped — bench/intake.py is not there (yet)"])
    lines = text.splitlines()
    assert [c.strip() for c in lines[0].split(" | ")] == [
        "section", "figure", "left", "right", "ratio", "target", "✔/✘"]
    assert len({len(line) for line in lines[2:4]}) == 1  # the columns line up
    assert "12.0 10k" in lines[2] and "18.5 1M" in lines[2] and "1.54×" in lines[2]
    assert lines[2].rstrip().endswith("✔") and lines[3].rstrip().endswith("✘")
    assert "400 1M" in lines[3] and "5.00×" in lines[3]
    assert lines[-1].startswith("intake: skipped")


def test_quick_runs_pass_small_sizes_and_growth_shares_one_kept_directory(tmp_path):
    core = command("core", quick=True, json_path=tmp_path / "c.json", data_dir=tmp_path)
    delivery = command("delivery", quick=True, json_path=tmp_path / "d.json", data_dir=tmp_path)
    scheduler = command("scheduler", quick=False, json_path=tmp_path / "s.json",
                        data_dir=tmp_path)
    assert core[1:3] == ["-m", "bench.core"] and "100000" in core and str(tmp_path) in core
    assert "--quick" in delivery and "--keep" not in delivery
    assert "1000000" in scheduler and str(tmp_path) in scheduler
