"""What this machine has, for checks that refuse work it cannot hold (one line, not an OOM kill)."""
from __future__ import annotations

import os


def physical_memory() -> int | None:
    """Bytes of physical memory, or None where the platform does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
