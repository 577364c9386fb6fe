"""The `wenzheng` command line, run as a user would."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bot.cli import main
from storage.db import migrations


def test_help_lists_the_commands(capsys):
    try:
        main(["--help"])
    except SystemExit as stop:
        assert stop.code == 0
    out = capsys.readouterr().out
    for command in ("check-policy", "init", "migrate"):
        assert command in out


def test_check_policy_summarises_the_shipped_policy(capsys):
    assert main(["check-policy"]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "滁州市" in out and "及时办" in out and "resolve due" in out


def test_a_broken_policy_exits_2_naming_the_key(tmp_path, capsys):
    bad = tmp_path / "policy.toml"
    bad.write_text('[city]\ncase_prefix = "cz"\n', encoding="utf-8")
    assert main(["check-policy", str(bad)]) == 2
    assert "city.case_prefix" in capsys.readouterr().err


def test_init_creates_the_database_and_migrate_status_lists_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WENZHENG_DATABASE", str(tmp_path / "w.db"))
    monkeypatch.setenv("WENZHENG_ADMINS", "12345")
    assert main(["migrate", "--status"]) == 1
    assert main(["init"]) == 0
    out = capsys.readouterr().out
    latest = len(migrations())
    assert f"schema version {latest}" in out and "22 created" in out and "12345" in out
    assert main(["init"]) == 0
    assert "already current" in capsys.readouterr().out
    assert main(["migrate", "--status"]) == 0
    assert "applied  0001_initial.sql" in capsys.readouterr().out


def test_bad_settings_exit_2(monkeypatch, capsys):
    monkeypatch.setenv("WENZHENG_ADMINS", "alice")
    assert main(["init"]) == 2
    assert "WENZHENG_ADMINS" in capsys.readouterr().err


def test_the_console_script_runs():
    done = subprocess.run([sys.executable, "-m", "bot.cli", "check-policy"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_run_without_a_token_explains_and_exits_2(monkeypatch, capsys):
    monkeypatch.delenv("WENZHENG_TOKEN", raising=False)
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "WENZHENG_TOKEN" in err and "demo" in err


def test_backup_restore_export_doctor_and_admin_from_the_command_line(tmp_path, monkeypatch,
                                                                      capsys):
    database = tmp_path / "w.db"
    monkeypatch.setenv("WENZHENG_DATABASE", str(database))
    assert main(["init"]) == 0
    assert main(["admin", "add", "4242"]) == 0
    assert main(["doctor"]) == 0
    backup = tmp_path / "backup.db"
    assert main(["backup", str(backup)]) == 0 and backup.exists()
    assert main(["backup", str(backup)]) == 1  # refuses to overwrite
    assert main(["restore", str(backup)]) == 0
    out_file = tmp_path / "cases.csv"
    assert main(["export", "cases", "--from", "2026-01-01", "--to", "2026-12-31",
                 "--format", "csv", "--out", str(out_file)]) == 0
    from bot.ops import EXPORT_COLUMNS

    assert out_file.read_text(encoding="utf-8-sig").splitlines()[0] == ",".join(EXPORT_COLUMNS)
    with pytest.raises(SystemExit) as bad_date:
        main(["export", "cases", "--from", "yesterday", "--to", "2026-12-31"])
    assert bad_date.value.code == 2
    not_a_db = tmp_path / "nope.db"
    not_a_db.write_bytes(b"not sqlite")
    assert main(["restore", str(not_a_db)]) == 1
    capsys.readouterr()
