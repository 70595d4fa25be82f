"""The MLflow users of the local stack (docker-compose.yml runs this as `mlflow-users`).

The tracking server runs MLflow's basic-auth app, which creates only its admin on first
start (MLFLOW_ADMIN_USERNAME / MLFLOW_ADMIN_PASSWORD in .env). This creates the two
users the stack's clients log in as, or sets their password to the one in .env when they
exist already, so .env stays the one place the passwords are chosen:

- the pipeline (.env MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD): the Airflow
  tasks and `make` on your machine. It creates the experiment and the registered model,
  so it may manage them;
- the prediction service (.env SERVING_MLFLOW_USERNAME / SERVING_MLFLOW_PASSWORD): it
  reads the registry and the champion's model file with the server's default permission
  (READ) and nothing more: it cannot move an alias or register a version.

It runs with the admin's credentials as MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD
and reads the users from PIPELINE_MLFLOW_* and SERVING_MLFLOW_*.
"""

from __future__ import annotations

import os

from mlflow.exceptions import RestException
from mlflow.server.auth.client import AuthServiceClient

USERS = ("PIPELINE_MLFLOW", "SERVING_MLFLOW")


def ensure_user(client: AuthServiceClient, username: str, password: str) -> str:
    """Create `username`, or set its password when it exists; says which."""
    try:
        client.create_user(username, password)
        return "created"
    except RestException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    client.update_user_password(username, password)
    return "exists, password set from .env"


def main() -> None:
    client = AuthServiceClient(os.environ["MLFLOW_TRACKING_URI"])
    for prefix in USERS:
        username = os.environ[f"{prefix}_USERNAME"]
        print(
            f"MLflow user {username}: {ensure_user(client, username, os.environ[f'{prefix}_PASSWORD'])}"
        )


if __name__ == "__main__":
    main()
