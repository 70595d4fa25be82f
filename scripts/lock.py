"""Re-resolve the generated project's requirements.lock.

Bakes the default project into a temporary folder, resolves its pyproject.toml
with uv (universal: one lock for every supported Python) and writes the result
into the template. The lock does not depend on the cookiecutter answers.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[1]
LOCK = TEMPLATE / "{{cookiecutter.project_slug}}" / "requirements.lock"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=tmp))
        uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or "uv"
        subprocess.run(
            [uv, "pip", "compile", "pyproject.toml", "--extra", "dev", "--extra", "airflow",
             "--universal", "--no-annotate", "--no-header", "--output-file", str(LOCK)],
            cwd=project,
            check=True,
        )
    print(f"wrote {LOCK}")


if __name__ == "__main__":
    main()
