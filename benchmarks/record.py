"""The one writer of benchmark results: `write_result(path, record)`.

Every benchmark prints its table and hands its figures here, which adds where and when
they were measured (date, machine, CPU count, Python and package versions) under
"measured_on" and writes the JSON atomically (es.checkpoint.atomic_write_bytes), so a
result file is never half written and always says what produced it.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from pathlib import Path

from es.checkpoint import atomic_write_bytes
from es.run import package_versions


def measured_on() -> dict:
    """Date (UTC), machine and versions of this measurement."""
    return {"date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d"), "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "versions": package_versions()}


def write_result(path: str | Path, record: dict, indent: int = 2) -> Path:
    """Write `record` plus "measured_on" to `path` (JSON, atomically); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps({**record, "measured_on": measured_on()}, indent=indent) + "\n").encode())
    print(f"wrote {path}")
    return path
