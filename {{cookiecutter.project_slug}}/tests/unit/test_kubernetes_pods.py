"""The KubernetesExecutor pods of continuous_training, rendered by Airflow itself
(`airflow kubernetes generate-dag-yaml`) from deploy/kubernetes/pod-template.yaml.
No cluster: this checks what the executor would submit, not that it runs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from airflow_helpers import airflow, airflow_env
from conftest import PROJECT_ROOT

pytestmark = pytest.mark.airflow

TEMPLATE = PROJECT_ROOT / "deploy" / "kubernetes" / "pod-template.yaml"
DAG_ID = "continuous_training"
DAY = "2026-04-02"


def kube_env(home: Path, template: Path) -> dict[str, str]:
    return airflow_env(
        home,
        PROJECT_ROOT / "dags",
        AIRFLOW__CORE__EXECUTOR="KubernetesExecutor",
        AIRFLOW__KUBERNETES_EXECUTOR__POD_TEMPLATE_FILE=str(template),
    )


def render(home: Path, template: Path, out: Path) -> subprocess.CompletedProcess[str]:
    args = ["kubernetes", "generate-dag-yaml", DAG_ID, "-l", DAY, "-o", str(out)]
    return airflow(args, kube_env(home, template), PROJECT_ROOT, timeout=180)


def rendered_pods(out: Path) -> dict[str, dict]:
    pods = [yaml.safe_load(p.read_text()) for p in (out / "airflow_yaml_output").glob("*.yml")]
    return {pod["metadata"]["annotations"]["task_id"]: pod for pod in pods}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("airflow-home")
    done = airflow(["db", "migrate"], kube_env(home, TEMPLATE), PROJECT_ROOT, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return home


@pytest.fixture(scope="module")
def template() -> dict:
    return yaml.safe_load(TEMPLATE.read_text())


@pytest.fixture(scope="module")
def pods(home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("pods")
    done = render(home, TEMPLATE, out)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return rendered_pods(out)


def test_one_pod_per_task(pods: dict[str, dict]) -> None:
    stages = set(yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())["stages"])
    expected = {"start_run", "commit_run", *stages}
    if "promote" in stages:
        expected.add("report_promotion")
    assert set(pods) == expected


def test_each_pod_runs_its_task_in_the_template_pod(pods: dict[str, dict], template: dict) -> None:
    (base_template,) = (c for c in template["spec"]["containers"] if c["name"] == "base")
    for task_id, pod in pods.items():
        spec = pod["spec"]
        (base,) = spec["containers"]
        assert base["name"] == "base"
        assert base["image"] == base_template["image"]
        assert pod["metadata"]["annotations"]["dag_id"] == DAG_ID

        assert base["args"][:4] == [
            "python",
            "-m",
            "airflow.sdk.execution_time.execute_workload",
            "--json-string",
        ], task_id
        workload = json.loads(base["args"][4])
        assert workload["type"] == "ExecuteTask"
        assert workload["ti"]["task_id"] == task_id
        assert workload["dag_rel_path"] == f"{DAG_ID}.py"

        assert spec["initContainers"] == template["spec"]["initContainers"], task_id
        (clone,) = spec["initContainers"]
        assert clone["image"] == base["image"]
        assert (
            'git clone --quiet --depth 50 "$PIPELINE_GIT_REPO" /opt/project'
            in (clone["command"][-1])
        )
        assert {"name": "project", "mountPath": "/opt/project"} in clone["volumeMounts"]

        env = {e["name"]: e for e in base["env"]}
        assert env["PIPELINE_PROJECT_DIR"]["value"] == "/opt/project"
        assert env["PROJECT_VENV"]["value"] == "/opt/project-venv"
        assert env["PIPELINE_WORKSPACE_DIR"]["value"] == "/tmp/workspaces"
        assert env["PIPELINE_DVC_CACHE"]["value"] == "private"
        for name in ("PIPELINE_GIT_REPO", "MLFLOW_TRACKING_URI", "FEAST_REDIS_CONNECTION"):
            assert env[name]["valueFrom"]["configMapKeyRef"]["key"] == name
        assert env["GIT_TOKEN"]["valueFrom"]["secretKeyRef"]
        assert any("secretRef" in source for source in base["envFrom"])
        literal = [n for n, e in env.items() if "value" in e]
        assert not [n for n in literal if n.startswith("AWS_") or "TOKEN" in n or "SECRET" in n]

        volumes = {v["name"]: v for v in spec["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in base["volumeMounts"]}
        for path in ("/opt/project", "/tmp/workspaces"):
            assert volumes[mounts[path]]["emptyDir"] == {}, path

        assert base["resources"]["requests"]["cpu"] and base["resources"]["limits"]["memory"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == 50000
        assert spec["restartPolicy"] == "Never"


def test_a_template_that_is_not_yaml_fails_the_rendering(home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "pod-template.yaml"
    bad.write_text("spec:\n  containers: [\n    - name: base\n")
    done = render(home, bad, tmp_path / "out")
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "yaml" in output and "while parsing" in output
    assert str(bad) in output
    assert not (tmp_path / "out" / "airflow_yaml_output").exists()


def test_a_missing_template_only_warns_and_renders_pods_without_the_image(
    home: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-template.yaml"
    done = render(home, missing, tmp_path / "out")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"Model file {missing} does not exist" in done.stdout + done.stderr
    pods = rendered_pods(tmp_path / "out")
    assert pods
    for pod in pods.values():
        (base,) = pod["spec"]["containers"]
        assert "image" not in base and "initContainers" not in pod["spec"]
