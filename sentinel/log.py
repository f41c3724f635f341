"""The daemon's own logs: structlog, JSON lines on stderr (journald keeps them)."""

from __future__ import annotations

import logging
import socket
import sys
from typing import Any

import structlog


def setup(**context: Any) -> Any:
    """Configure structlog once and return a logger bound to CONTEXT
    (host, policies, mechanism...) so every line carries it."""
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    return structlog.get_logger("sentinel").bind(host=socket.gethostname(), **context)
