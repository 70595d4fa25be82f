"""`[core] hostname_callable` for the test's Celery workers: both run on one machine, so
each names itself (TEST_WORKER_NAME) in the hostname its task instances record."""

import os
import socket


def hostname() -> str:
    return f"{os.environ['TEST_WORKER_NAME']}.{socket.getfqdn()}"
