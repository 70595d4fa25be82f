"""The CLI as a user calls it: bootstrap a suite, bad arguments, helpful errors."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.contract import DatasetContract
from {{ cookiecutter.package_name }}.gates import validate

from conftest import PROJECT_ROOT

runner = CliRunner()


def test_expectations_init_writes_a_suite_and_never_overwrites(
    tiny_raw: pd.DataFrame, contract: DatasetContract, tmp_path: Path
) -> None:
    key, timestamp = contract.entity.key, contract.timestamp
    sample = tmp_path / "sample.parquet"
    tiny_raw.head(1000).to_parquet(sample)
    out = tmp_path / "mine.json"
    args = ["expectations", "init", "--from", str(sample), "--name", "mine", "--out", str(out)]
    done = runner.invoke(app, [*args, "--key", key, "--key", timestamp])
    assert done.exit_code == 0, done.output
    suite = json.loads(out.read_text())
    assert suite["name"] == "mine"
    assert validate(tiny_raw.head(1000), out, "mine", tmp_path / "report").passed

    again = runner.invoke(app, args)
    assert again.exit_code == 1
    assert "exists; pass --force" in again.output
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0
    daily = runner.invoke(
        app, [*args, "--force", "--timestamp", timestamp, "--label", contract.label.column]
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

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("a bug, not a user error")

    monkeypatch.setattr(ingest, "run", broken)
    done = runner.invoke(app, ["ingest", "--params", str(PROJECT_ROOT / "params.yaml")])
    assert done.exit_code != 0
    assert isinstance(done.exception, ValueError)
    assert done.exception.__traceback__ is not None


def test_dataset_init_prints_what_it_inferred_and_refuses_a_bad_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from {{ cookiecutter.package_name }}.contract_rows import contract_frame, source_rows

    from other_contracts import LOAN

    for name in ("params.yaml", "interval.yaml", "dvc.yaml"):
        shutil.copy(PROJECT_ROOT / name, tmp_path / name)
    shutil.copytree(PROJECT_ROOT / "expectations", tmp_path / "expectations")
    monkeypatch.chdir(tmp_path)
    days = [dt.date(2026, 6, 1) + dt.timedelta(days=i) for i in range(15)]
    rows = source_rows(LOAN, contract_frame(LOAN, days, 40, seed=2))
    rows.to_parquet(tmp_path / "loans.parquet")
    args = ["dataset", "init", "--from", "loans.parquet", "--entity", LOAN.entity.key]
    args += ["--timestamp", LOAN.timestamp, "--label", LOAN.label.column, "--force"]
    bad = runner.invoke(app, args)  # the label is text: the positive value must be named
    assert bad.exit_code == 1 and "pass --positive" in bad.output
    done = runner.invoke(app, [*args, "--positive", str(LOAN.label.positive)])
    assert done.exit_code == 0, done.output
    assert f"key {LOAN.entity.key} (string)" in done.output
    assert "15 days ending 2026-06-15" in done.output
    assert "Review them" in done.output


def test_api_key_new_stores_only_the_digest_and_the_key_lets_its_holder_in(
    tmp_path: Path,
) -> None:
    from {{ cookiecutter.package_name }}.api_keys import Gatekeeper, load_keys
    from {{ cookiecutter.package_name }}.config import RateLimitConfig

    stored = tmp_path / "secrets" / "api_keys"
    done = runner.invoke(app, ["api-key", "new", "dashboard", "--append-to", str(stored)])
    assert done.exit_code == 0, done.output
    key = done.output.strip().splitlines()[-1]
    assert len(key) >= 40 and key not in stored.read_text()
    assert stored.stat().st_mode & 0o777 == 0o600
    keys = load_keys(stored, environ={})
    assert Gatekeeper(keys, RateLimitConfig()).identify(key, "10.0.0.1") == "dashboard"
    again = runner.invoke(app, ["api-key", "new", "dashboard", "--append-to", str(stored)])
    assert again.exit_code == 1 and "already has a key named 'dashboard'" in again.output
    bad = runner.invoke(app, ["api-key", "new", "two words"])
    assert bad.exit_code == 1 and "key name 'two words'" in bad.output
