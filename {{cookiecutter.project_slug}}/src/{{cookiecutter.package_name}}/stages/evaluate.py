"""Stage `evaluate`: score the held-out test days (through the model's calibration);
metrics (calibration's among them), curves, per-slice metrics and the largest slice gaps
(slices.py), the mean |SHAP value| of each feature, the error-analysis page
reports/evaluation.html (evaluation_report.py), and the predictions the next gate checks."""

from __future__ import annotations

import logging
from pathlib import Path

from .. import tracking
from ..config import EvaluateConfig, MlflowConfig, PathsConfig, SplitConfig
from ..contract import DatasetContract
from ..evaluation_report import REPORT_FILE, write_report
from ..explain import mean_abs_shap
from ..files import read_json, read_parquet, write_parquet
from ..logs import console
from ..metrics import Evaluation, evaluate, write_reports
from ..model import load_model, predict_proba
from ..split import time_split

log = logging.getLogger(__name__)


def run(
    paths: PathsConfig,
    split: SplitConfig,
    cfg: EvaluateConfig,
    mlflow: MlflowConfig,
    contract: DatasetContract,
) -> Evaluation:
    """Write reports/ (metrics, plots, slices) and the test predictions; log them to MLflow."""
    booster, meta = load_model(paths.model_dir, contract)
    splits = time_split(read_parquet(paths.training_set, "training_set"), split, contract)
    raw = predict_proba(booster, splits.test)
    scores = meta.calibration.apply(raw)  # what serving and batch scoring serve
    result = evaluate(
        splits.test,
        scores,
        threshold=meta.threshold,
        train_positive_rate=meta.split_summary["train"]["positive_rate"],
        importance=booster.get_score(importance_type="gain"),
        contract=contract,
        plot_points=cfg.plot_points,
        raw_scores=raw,
        shap=mean_abs_shap(booster, splits.test, cfg.shap_rows),
        calibration_bins=cfg.calibration_bins,
        min_slice_rows=cfg.min_slice_rows,
    )
    if not (contract.slices or contract.slice_bins):
        log.info("no per-slice metrics: dataset.slices and dataset.slice_bins are empty")
    written = write_reports(result, paths.reports)
    days = splits.test[contract.timestamp]
    context = {
        "model": f"{paths.model_dir} (threshold {meta.threshold:.4f}, calibration "
        f"{meta.calibration.method})",
        "test days": f"{days.min().date()} to {days.max().date()}",
    }
    title = f"Evaluation of {mlflow.registered_model}"
    written["report"] = write_report(result, paths.reports / REPORT_FILE, title, context)
    predictions = splits.test.drop(columns=meta.feature_names).assign(
        score=scores, predicted=(scores >= meta.threshold).astype("int64")
    )
    write_parquet(predictions, paths.predictions)
    tracking.setup_mlflow(mlflow)
    run_id = read_json(paths.model_dir / tracking.RUN_FILE, "train")["run_id"]
    tracking.log_evaluation(run_id, result.metrics, list(written.values()), tracking.lineage_tags())
    metrics = result.metrics
    console.print(
        f"test ROC AUC {metrics['roc_auc']:.4f}  PR AUC {metrics['pr_auc']:.4f}  "
        f"F1 {metrics['f1']:.4f} (baseline PR AUC {metrics['baseline']['pr_auc']:.4f})  "
        f"Brier {metrics['brier']:.4f}  ECE {metrics['ece']:.4f} (calibration "
        f"{meta.calibration.method}; uncalibrated Brier {metrics['uncalibrated']['brier']:.4f})"
    )
    _print_gaps(result, written["report"])
    return result


def _print_gaps(result: Evaluation, report: Path) -> None:
    for metric, gap in result.slice_gaps.items():
        if gap:
            console.print(
                f"largest {metric} gap {gap['gap']:.4f} ({gap['dimension']}): "
                f"{gap['lowest']} {gap['low']:.4f} vs {gap['highest']} {gap['high']:.4f}",
                markup=False,  # bin names hold brackets
            )
    console.print(f"error analysis: {report}", markup=False)
