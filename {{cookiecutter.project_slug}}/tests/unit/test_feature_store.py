"""Feast for real: point-in-time training sets, materialization, train/serve parity,
on the SQLite online store and on a real Redis server, for the project's contract and
for a string-keyed contract with other column names."""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from {{ cookiecutter.package_name }} import materialization
from {{ cookiecutter.package_name }}.contract import DatasetContract, EntitySpec, NumericSpec
from {{ cookiecutter.package_name }}.contract_rows import contract_frame, entity_ids
from {{ cookiecutter.package_name }}.errors import ConfigError, PipelineError, StageInputError
from {{ cookiecutter.package_name }}.feature_store import (
    feature_view,
    freshness,
    historical_features,
    open_store,
)
from {{ cookiecutter.package_name }}.features import build_features, build_labels
from {{ cookiecutter.package_name }}.materialization import FeatureFiles, materialize
from {{ cookiecutter.package_name }}.online_read import feature_service, online_features, read_online
from {{ cookiecutter.package_name }}.partitions import DayFiles, write_part

from conftest import REDIS_STORE, SQLITE_STORE, make_feast_repo
from other_contracts import with_second_contract
from tools.point_in_time import point_in_time_join

# Offline (DuckDB over parquet) and online stores hold float64 values: equal to 1e-9.
TOLERANCE = 1e-9

# Nothing like the demo: a string key, other names, a nullable categorical, a "yes" label.
STRING_KEYED = DatasetContract.model_validate(
    {
        "entity": {"name": "account", "key": "account_ref", "dtype": "string"},
        "timestamp": "observed_at",
        "label": {"column": "converted", "positive": "yes", "negative": ["no"]},
        "numeric": {"spend": {"nullable": True}, "visits": {}},
        "categorical": {"plan": {"values": ["free", "pro", "team"], "nullable": True}},
        "slices": ["plan"],
    }
)


@dataclass(frozen=True)
class Case:
    """A contract and rows satisfying it."""

    contract: DatasetContract
    raw: pd.DataFrame
    features: pd.DataFrame

    @property
    def key(self) -> str:
        return self.contract.entity.key

    @property
    def stamp(self) -> str:
        return self.contract.timestamp

    @property
    def first_feature(self) -> str:
        return self.contract.feature_columns[0]

    def newest(self, features: pd.DataFrame | None = None) -> pd.DataFrame:
        """Each entity's newest feature row, indexed by the key."""
        frame = self.features if features is None else features
        return (
            frame.sort_values(self.stamp, kind="stable")
            .drop_duplicates(self.key, keep="last")
            .set_index(self.key)
        )


@pytest.fixture(scope="module")
def cases(tiny_window, contract, tiny_raw, tiny_features) -> dict[str, Case]:
    raw = contract_frame(STRING_KEYED, tiny_window.dates(), 150, population=900, seed=3)
    return {
        "project": Case(contract, tiny_raw, tiny_features),
        "string_keyed": Case(STRING_KEYED, raw, build_features(raw, STRING_KEYED)),
    }


@pytest.fixture(scope="module", params=with_second_contract("string_keyed"))
def case(request, cases) -> Case:
    return cases[request.param]


@pytest.fixture(
    scope="module",
    params=[
        ("sqlite", "project"),
        ("redis", "project"),
        pytest.param(("sqlite", "string_keyed"), marks=pytest.mark.other_contract),
    ],
    ids=lambda p: "-".join(p),
)
def feast(request, tmp_path_factory, cases) -> tuple[object, Case]:
    online, name = request.param
    redis = request.getfixturevalue("redis_server") if online == "redis" else None
    found = cases[name]
    root = tmp_path_factory.mktemp(f"feast-{online}-{name}")
    repo = make_feast_repo(root, found.features, online, redis, found.contract)
    store = open_store(repo)
    assert store.config.online_store.type == {"sqlite": SQLITE_STORE, "redis": REDIS_STORE}[online]
    return store, found


def test_feast_objects_are_named_by_the_contract(feast) -> None:
    store, found = feast
    view = feature_view(store, found.contract)
    assert view.name == f"{found.contract.entity.name}_features"
    assert [f.name for f in view.entity_columns] == [found.key]
    assert [f.name for f in view.features] == found.contract.feature_columns
    assert store.get_entity(found.contract.entity.name).join_key == found.key
    service = store.get_feature_service("model_features")
    assert [p.name for p in service.feature_view_projections] == [view.name]


def test_training_set_from_feast_matches_a_point_in_time_join(feast) -> None:
    store, found = feast
    labels = build_labels(found.raw, found.contract)
    feast_frame = historical_features(store, labels, found.contract)
    reference = point_in_time_join(labels, found.features, found.contract)
    assert len(feast_frame) == len(labels)  # DuckDB store keeps every entity row
    columns = [found.key, found.stamp, found.contract.label.column, *found.contract.feature_columns]
    pd.testing.assert_frame_equal(
        feast_frame[columns].reset_index(drop=True),
        reference[columns].reset_index(drop=True),
        check_dtype=False,
        atol=TOLERANCE,
    )


def test_no_feature_value_from_after_the_label_time_leaks_in(tmp_path: Path, case: Case) -> None:
    labels = build_labels(case.raw, case.contract)
    label = labels.iloc[[len(labels) // 2]].reset_index(drop=True)
    entity, when = label[case.key][0], label[case.stamp][0]
    later = case.features[case.features[case.key] == entity].head(1).copy()
    later[case.stamp] = when + pd.Timedelta(minutes=5)
    later[case.first_feature] = 999_999.0  # written after the label time
    frame = pd.concat([case.features, later], ignore_index=True)
    repo = make_feast_repo(tmp_path, frame, "sqlite", contract=case.contract)
    row = historical_features(open_store(repo), label, case.contract)
    own = case.features[(case.features[case.key] == entity) & (case.features[case.stamp] == when)]
    assert row[case.first_feature][0] == pytest.approx(own[case.first_feature].iloc[0])
    assert row[case.first_feature][0] != 999_999.0


def test_online_features_equal_offline_features_column_by_column(feast) -> None:
    store, found = feast
    summary = materialize(store, found.features, found.contract)
    assert summary["rows_in_window"] == len(found.features)
    assert summary["entity"] == found.contract.entity.name
    rng = np.random.default_rng(1)
    ids = rng.choice(found.features[found.key].unique(), 25, replace=False).tolist()
    at = found.features[found.stamp].max() + pd.Timedelta(seconds=1)
    offline = historical_features(
        store, pd.DataFrame({found.key: ids, found.stamp: at}), found.contract
    )
    online, unknown = online_features(store, ids, found.contract)
    assert unknown == []
    assert list(online.columns) == [found.key, *found.contract.feature_columns]
    assert online[found.key].tolist() == ids  # typed as the contract says, in request order
    offline = offline.set_index(found.key).loc[ids]
    online = online.set_index(found.key).loc[ids]
    for column in found.contract.feature_columns:
        np.testing.assert_allclose(online[column], offline[column], atol=TOLERANCE, err_msg=column)


def test_materialization_is_incremental(feast) -> None:
    store, found = feast
    materialize(store, found.features, found.contract)
    again = materialize(store, found.features, found.contract)
    assert again["rows_in_window"] == 0  # nothing newer than the last run
    assert not again["full_rewrite"]
    assert again["entities_verified"] == 200  # the sample read back matched
    assert again["entities_online"] == found.features[found.key].nunique()


def test_unknown_entities_are_reported_not_invented(feast) -> None:
    store, found = feast
    materialize(store, found.features, found.contract)
    known_id = found.features[found.key].tolist()[0]
    strangers = entity_ids(found.contract, np.array([10_000_001, 10_000_002])).tolist()
    known, unknown = online_features(store, [known_id, *strangers], found.contract)
    assert known[found.key].tolist() == [known_id]
    assert unknown == strangers
    python_type = int if found.contract.entity.dtype == "int" else str
    assert all(type(i) is python_type for i in [*known[found.key], *unknown])


def test_the_service_reads_plain_arrays_as_the_frame_read_does(feast) -> None:
    """read_online (the service's read) gives the known ids in the order asked, their
    values and the unknown ids, as online_features does."""
    store, found = feast
    materialize(store, found.features, found.contract)
    known_ids = found.features[found.key].unique()[:4].tolist()
    strangers = entity_ids(found.contract, np.array([10_000_001, 10_000_002])).tolist()
    asked = [strangers[0], *known_ids, strangers[1]]
    frame, unknown = online_features(store, asked, found.contract)
    columns = found.contract.feature_columns
    service = feature_service(store)
    rows = read_online(store, service, asked, found.contract)
    assert rows.ids == known_ids and rows.unknown == strangers == unknown
    assert rows.columns == columns and rows.values.dtype == np.float64
    np.testing.assert_array_equal(rows.values, frame[columns].to_numpy(dtype="float64"))
    nothing = read_online(store, service, [], found.contract)
    assert nothing.ids == nothing.unknown == [] and nothing.values.shape == (0, len(columns))


def test_small_chunks_write_every_entitys_newest_values(tmp_path: Path, case: Case) -> None:
    store = open_store(make_feast_repo(tmp_path, case.features, "sqlite", contract=case.contract))
    summary = materialize(store, case.features, case.contract, chunk_rows=7)
    newest = case.newest()
    assert summary["entities_written"] == len(newest)
    assert pd.Timestamp(freshness(store, case.contract)) == pd.Timestamp(
        summary["materialized_until"]
    )
    assert_serving_knows_everyone(store, case)


def test_a_newer_value_replaces_the_online_one(tmp_path: Path, case: Case) -> None:
    store = open_store(make_feast_repo(tmp_path, case.features, "sqlite", contract=case.contract))
    materialize(store, case.features, case.contract)
    later = case.features.tail(1).copy()
    entity = later[case.key].iloc[0]
    later[case.stamp] = case.features[case.stamp].max() + pd.Timedelta(hours=1)
    later[case.first_feature] = 123.25
    summary = materialize(
        store, pd.concat([case.features, later], ignore_index=True), case.contract
    )
    assert summary["entities_written"] == 1
    online, _ = online_features(store, [entity], case.contract)
    assert online[case.first_feature][0] == pytest.approx(123.25)


def test_serving_on_definitions_never_applied_says_to_apply_them(
    tmp_path: Path, case: Case
) -> None:
    """The service opens the registry without applying it (it may be read-only)."""
    repo = make_feast_repo(tmp_path, case.features, "sqlite", contract=case.contract)
    store = open_store(repo, apply=False)
    with pytest.raises(ConfigError, match="none is registered: run `make feast-apply`"):
        feature_view(store, case.contract)


def test_a_contract_the_definitions_do_not_declare_is_a_config_error(feast, cases) -> None:
    store, found = feast
    other = cases["project"].contract if found.contract is STRING_KEYED else STRING_KEYED
    with pytest.raises(ConfigError, match=rf"no feature view '{other.feature_view}'.*--params"):
        materialize(store, found.features, other)
    flipped = "string" if found.contract.entity.dtype == "int" else "int"
    retyped = found.contract.model_copy(
        update={"entity": found.contract.entity.model_copy(update={"dtype": flipped})}
    )
    with pytest.raises(ConfigError, match=rf"keyed by \['{found.key}'\].*\({flipped}, dataset"):
        historical_features(store, found.raw[[found.key, found.stamp]], retyped)


def test_a_feature_table_that_does_not_fit_the_contract_is_refused(feast) -> None:
    store, found = feast
    keys = found.features[found.key]
    wrong = keys.astype(str) if found.contract.entity.dtype == "int" else keys.str.len()
    with pytest.raises(StageInputError, match=rf"{found.key} holds .* \(dataset.entity.dtype\)"):
        materialize(store, found.features.assign(**{found.key: wrong}), found.contract)
    with pytest.raises(StageInputError, match=rf"lacks \['{found.first_feature}'\]"):
        materialize(store, found.features.drop(columns=found.first_feature), found.contract)
    with pytest.raises(StageInputError, match="no entity key column"):
        materialize(store, found.features.drop(columns=found.key), found.contract)
    with pytest.raises(StageInputError, match="has no rows"):
        materialize(store, found.features.head(0), found.contract)


@pytest.fixture(params=["sqlite", "redis"])
def scratch(request, tmp_path: Path, cases) -> tuple[Path, str | None, Case]:
    """A Feast repo of its own (the test changes its contract or its online store)."""
    redis = request.getfixturevalue("redis_server") if request.param == "redis" else None
    found = cases["project"]
    return make_feast_repo(tmp_path, found.features, request.param, redis), redis, found


def declare(repo: Path, contract: DatasetContract) -> None:
    """Change the scratch project's contract (params.yaml `dataset`, read by definitions.py)."""
    path = repo.parent / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["dataset"] = contract.model_dump(mode="json")
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def assert_serving_knows_everyone(store, found: Case, features: pd.DataFrame | None = None) -> None:
    newest = found.newest(features)
    online, unknown = online_features(store, newest.index.tolist(), found.contract)
    assert unknown == []
    online = online.set_index(found.key).loc[newest.index]
    for column in found.contract.feature_columns:
        np.testing.assert_allclose(online[column], newest[column], atol=TOLERANCE, err_msg=column)


def drop_online_rows(store, redis: str | None, view: str, share: float) -> None:
    """Delete `share` (at least one) of the entities' online rows behind Feast's back."""
    if redis is None:
        path = Path(store.repo_path) / "state" / "online_store.db"
        with sqlite3.connect(path) as conn:
            (table,) = conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE ?",
                (f"%{view}%",),
            ).fetchone()
            keys = [k for (k,) in conn.execute(f'SELECT DISTINCT entity_key FROM "{table}"')]
            doomed = keys[: max(1, int(len(keys) * share))]
            conn.executemany(f'DELETE FROM "{table}" WHERE entity_key = ?', [(k,) for k in doomed])
    else:
        import redis as redis_client

        host, port = redis.split(":")
        client = redis_client.Redis(host=host, port=int(port))
        keys = sorted(client.scan_iter(count=1000))
        client.delete(*keys[: max(1, int(len(keys) * share))])


def test_a_changed_feature_list_rewrites_the_whole_window(scratch) -> None:
    repo, _, found = scratch
    # Before: the first numeric column had the other nullability (one flag feature more or less).
    column, spec = next(iter(found.contract.numeric.items()))
    before = found.contract.model_copy(
        update={
            "numeric": {**found.contract.numeric, column: NumericSpec(nullable=not spec.nullable)}
        }
    )
    assert before.feature_columns != found.contract.feature_columns
    declare(repo, before)
    old = build_features(found.raw, before)
    first = materialize(open_store(repo), old, before, verify_entities=0)
    declare(repo, found.contract)
    store = open_store(repo)  # Feast keeps the view's materialization intervals
    assert store.get_feature_view(found.contract.feature_view).most_recent_end_time is not None
    summary = materialize(store, found.features, found.contract)
    assert summary["schema_fingerprint"] != first["schema_fingerprint"]
    assert summary["full_rewrite"]
    assert summary["rows_in_window"] == len(found.features)
    assert summary["entities_written"] == found.features[found.key].nunique()
    assert_serving_knows_everyone(store, found)
    again = materialize(open_store(repo), found.features, found.contract)  # fingerprint recorded
    assert not again["full_rewrite"] and again["entities_written"] == 0


def test_a_changed_entity_key_rewrites_the_whole_window(scratch) -> None:
    repo, _, found = scratch
    materialize(open_store(repo), found.features, found.contract)
    entity = EntitySpec(name=found.contract.entity.name, key="account_ref", dtype="string")
    renamed = found.contract.model_copy(update={"entity": entity})
    declare(repo, renamed)
    features = found.features.rename(columns={found.key: "account_ref"})
    features["account_ref"] = "acct-" + features["account_ref"].astype(str)
    store = open_store(repo)
    with pytest.raises(ConfigError, match="keyed by"):  # the old contract no longer fits
        materialize(store, found.features, found.contract)
    summary = materialize(store, features, renamed)
    assert summary["full_rewrite"]
    assert summary["entities_online"] == features["account_ref"].nunique()
    assert_serving_knows_everyone(store, Case(renamed, found.raw, features))


def test_a_stale_online_table_fails_the_stage_and_the_next_run_repairs_it(scratch) -> None:
    repo, redis, found = scratch
    store = open_store(repo)
    materialize(store, found.features, found.contract)
    drop_online_rows(store, redis, found.contract.feature_view, share=0.3)
    with pytest.raises(PipelineError) as failure:  # nothing new to write: still verified
        materialize(open_store(repo), found.features, found.contract)
    message = str(failure.value)
    assert message.startswith("materialize:")
    assert "of 200 sampled entities" in message and "are unknown online" in message
    assert "dvc repro --force materialize" in message
    store = open_store(repo)
    repaired = materialize(store, found.features, found.contract)  # what `dvc repro --force` runs
    assert repaired["full_rewrite"]
    assert_serving_knows_everyone(store, found)


def test_fewer_entities_online_than_in_the_feature_table_fail_the_stage(scratch) -> None:
    """Without any read-back sample, one entity lost online still fails the stage."""
    repo, redis, found = scratch
    store = open_store(repo)
    materialize(store, found.features, found.contract, verify_entities=0)
    drop_online_rows(store, redis, found.contract.feature_view, share=0.0)
    expected = found.features[found.key].nunique()
    with pytest.raises(
        PipelineError,
        match=rf"holds rows of {expected - 1} entities .* fewer than the {expected} distinct "
        rf"{found.key} values",
    ):
        materialize(open_store(repo), found.features, found.contract, verify_entities=0)
    repaired = materialize(open_store(repo), found.features, found.contract, verify_entities=0)
    assert repaired["full_rewrite"] and repaired["entities_online"] == expected


def test_values_changed_behind_feasts_back_fail_the_stage(scratch) -> None:
    repo, _, found = scratch
    store = open_store(repo)
    materialize(store, found.features, found.contract)
    corrupt = found.newest().reset_index()
    corrupt[found.stamp] += pd.Timedelta(minutes=1)
    corrupt[found.first_feature] = -1.0
    store.write_to_online_store(found.contract.feature_view, corrupt, transform_on_write=False)
    with pytest.raises(PipelineError, match=r"0 are unknown online and 200 hold values other"):
        materialize(open_store(repo), found.features, found.contract)


def test_an_online_store_emptied_behind_feasts_back_is_written_again(scratch) -> None:
    repo, redis, found = scratch
    store = open_store(repo)
    materialize(store, found.features, found.contract)
    drop_online_rows(store, redis, found.contract.feature_view, share=1.0)
    if redis is None:  # the table itself gone, not just its rows
        with sqlite3.connect(repo / "state" / "online_store.db") as conn:
            for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
                conn.execute(f'DROP TABLE "{table}"')
    store = open_store(repo)
    summary = materialize(store, found.features, found.contract)
    assert summary["full_rewrite"]
    assert_serving_knows_everyone(store, found)


def online_rows(repo: Path) -> list[tuple]:
    """Every row of the SQLite online store of `repo`, in key order."""
    with sqlite3.connect(repo / "state" / "online_store.db") as conn:
        (table,) = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchone()
        return conn.execute(f'SELECT * FROM "{table}" ORDER BY entity_key').fetchall()


def test_a_daily_run_reads_and_writes_only_the_new_day(
    scratch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The feature table as featurize writes it (a part file a day) gains a day: the run
    reads that day's part for the rows it writes (of the others, keys and timestamps
    for its checks) and writes that day's entities; the online store then holds what a
    materialization of the whole table from scratch writes."""
    repo, redis, found = scratch
    folder = repo.parent / "data" / "features.parquet"
    folder.unlink()  # make_feast_repo's single file, replaced by day parts
    parts, days = DayFiles(folder), found.features[found.stamp].dt.date
    *before, last = sorted(days.unique())
    for day in before:
        write_part(found.features.loc[days == day], parts.path(day))
    first = materialize(open_store(repo), FeatureFiles(folder), found.contract)
    assert first["full_rewrite"] and first["rows_in_window"] == int((days != last).sum())

    write_part(found.features.loc[days == last], parts.path(last))
    chosen: list[list[Path]] = []
    choose = materialization.files_from
    monkeypatch.setattr(
        materialization, "files_from", lambda *args: chosen.append(choose(*args)) or chosen[-1]
    )
    summary = materialize(open_store(repo), FeatureFiles(folder), found.contract)
    new_day = found.features.loc[days == last]
    assert chosen == [[parts.path(last)]]  # the only part read whole
    assert not summary["full_rewrite"]
    assert summary["rows_in_window"] == len(new_day)
    assert summary["entities_written"] == new_day[found.key].nunique()
    assert summary["entities_verified"] == 200
    assert summary["entities_online"] == found.features[found.key].nunique()
    assert_serving_knows_everyone(open_store(repo), found)
    if redis is None:  # byte for byte what a materialization from scratch writes
        fresh = make_feast_repo(tmp_path / "fresh", found.features, "sqlite")
        materialize(open_store(fresh), found.features, found.contract)
        assert online_rows(repo) == online_rows(fresh)


def test_a_workspace_copy_sharing_the_feast_state_materializes_incrementally(
    tmp_path: Path, cases
) -> None:
    """An Airflow task's workspace: the project at another root, features/state linked
    from the checkout. The source path differs, the rows do not: the fingerprint is the
    same and only the new day is written."""
    found = cases["project"]
    days = found.features[found.stamp].dt.date
    before = found.features.loc[days != days.max()]
    repo = make_feast_repo(tmp_path / "checkout", before, "sqlite")
    first = materialize(open_store(repo), before, found.contract)
    workspace = tmp_path / "workspace"
    shutil.copytree(repo.parent, workspace, ignore=shutil.ignore_patterns("state"))
    (workspace / "features" / "state").symlink_to(repo / "state")
    parquet = workspace / "data" / "features.parquet"
    found.features.to_parquet(parquet, index=False, coerce_timestamps="us")
    store = open_store(workspace / "features")
    assert store.get_feature_view(found.contract.feature_view).batch_source.path.startswith(
        str(workspace.resolve())
    )
    summary = materialize(store, found.features, found.contract)
    assert first["full_rewrite"] and not summary["full_rewrite"]
    assert summary["schema_fingerprint"] == first["schema_fingerprint"]
    assert summary["rows_in_window"] == len(found.features) - len(before)
    assert_serving_knows_everyone(store, found)
