"""Put on PYTHONPATH by the stage-deps test: every Python process started with
RECORD_MODULES_FILE set appends, at exit, its command line and the package's
modules it imported (as files), one JSON line per process."""

import atexit
import json
import os
import sys

_OUT = os.environ.get("RECORD_MODULES_FILE")
_PACKAGE = os.environ.get("RECORD_MODULES_PACKAGE", "")


def _record() -> None:
    files = sorted(
        getattr(module, "__file__", None) or ""
        for name, module in list(sys.modules.items())
        if name == _PACKAGE or name.startswith(_PACKAGE + ".")
    )
    with open(_OUT, "a") as handle:  # noqa: PTH123 - no pathlib at interpreter start-up
        handle.write(json.dumps({"argv": sys.argv, "modules": [f for f in files if f]}) + "\n")


if _OUT and _PACKAGE:
    atexit.register(_record)
