"""The data tools' logger, and warnings that should appear once per process, not per video."""
from __future__ import annotations

import logging

log = logging.getLogger("avsep.synth")
_warned: set[str] = set()


def warn_once(key: str, message: str) -> None:
    """Log ``message`` the first time ``key`` is seen (fallbacks would otherwise repeat per file)."""
    if key not in _warned:
        _warned.add(key)
        log.warning(message)
