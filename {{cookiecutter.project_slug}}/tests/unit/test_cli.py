"""The CLI as a user calls it: bootstrap a suite, bad arguments, helpful errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.gates import validate

from conftest import PROJECT_ROOT

runner = CliRunner()


def test_expectations_init_writes_a_suite_and_never_overwrites(
    tiny_raw: pd.DataFrame, tmp_path: Path
) -> None:
    sample = tmp_path / "sample.parquet"
    tiny_raw.head(1000).to_parquet(sample)
    out = tmp_path / "mine.json"
    args = ["expectations", "init", "--from", str(sample), "--name", "mine", "--out", str(out)]
    done = runner.invoke(app, [*args, "--key", "customer_id", "--key", "event_timestamp"])
    assert done.exit_code == 0, done.output
    suite = json.loads(out.read_text())
    assert suite["name"] == "mine"
    assert validate(tiny_raw.head(1000), out, "mine", tmp_path / "report").passed

    again = runner.invoke(app, args)
    assert again.exit_code == 1
    assert "exists; pass --force" in again.output
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0
    daily = runner.invoke(
        app, [*args, "--force", "--timestamp", "event_timestamp", "--label", "churned"]
    )
    assert daily.exit_code == 0, daily.output
    params = [
        e["kwargs"].get("min_value")
        for e in json.loads(out.read_text())["expectations"]
        if isinstance(e["kwargs"].get("min_value"), dict)
    ]
    assert {p["$PARAMETER"] for p in params} == {"min_rows", "day_start", "min_label_share"}


def test_expectations_init_with_a_missing_sample_is_explained(tmp_path: Path) -> None:
    done = runner.invoke(
        app, ["expectations", "init", "--from", str(tmp_path / "nope.parquet"), "--name", "x"]
    )
    assert done.exit_code == 1
    assert "not found" in done.output


def test_unknown_gate_is_refused() -> None:
    done = runner.invoke(app, ["validate", "bogus"])
    assert done.exit_code == 2
    assert "unknown gate 'bogus'" in done.output


def test_bad_params_file_fails_with_the_key_name(tmp_path: Path) -> None:
    bad = tmp_path / "params.yaml"
    bad.write_text("data: {}\n")
    (tmp_path / "interval.yaml").write_text('end_date: "2026-03-31"\n')
    done = runner.invoke(app, ["ingest", "--params", str(bad)])
    assert done.exit_code == 1
    assert "params.yaml is invalid" in done.output
    assert "Traceback" not in done.output


def test_a_bug_keeps_its_traceback(monkeypatch) -> None:
    """Only the project's own errors become one paragraph; anything else is a bug to see."""
    from {{ cookiecutter.package_name }}.stages import ingest

    def broken(*args: object) -> None:
        raise ValueError("a bug, not a user error")

    monkeypatch.setattr(ingest, "run", broken)
    done = runner.invoke(app, ["ingest", "--params", str(PROJECT_ROOT / "params.yaml")])
    assert done.exit_code != 0
    assert isinstance(done.exception, ValueError)
    assert done.exception.__traceback__ is not None
