"""Logging set up from the settings: one line per record, JSON or text, each carrying the id of
the request it belongs to (a filter reads the context variable)."""

from __future__ import annotations

import logging
import logging.config
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from app.core.config import Settings
from app.observability.request_id import current_request_id

# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged
# (uvicorn adds a coloured copy of its message, which a log file does not want).
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "color_message",
}


class RequestIdFilter(logging.Filter):
    """Stamps each record with the current request's id (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return True


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and k[0] != "_"}


def _json_entry(
    created: float, level: str, logger: str, message: str, request_id: Any, extras: dict
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "ts": datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds"),
        "level": level,
        "logger": logger,
        "message": message,
    }
    if request_id:
        entry["request_id"] = request_id
    entry.update(extras)
    return entry


def _json_text(entry: dict[str, Any]) -> str:
    return orjson.dumps(entry, default=str).decode()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, request_id, the record's extras
    and, for errors, the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry = _json_entry(
            record.created,
            record.levelname,
            record.name,
            record.getMessage(),
            getattr(record, "request_id", None),
            _extras(record),
        )
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return _json_text(entry)


class DirectLine:
    """The one line of a logger's INFO record, written straight to the service's own handler
    when nothing else would see the record: what `logger.info(message, extra=fields)` writes,
    the same text, without the LogRecord, the filters and the formatter's look-ups around it.

    The access log writes a record for every request, and through `logging` that took about
    20 µs of CPU (a record, the walk to the root's handler, the filter, the JSON formatter
    finding the extras among the record's thirty attributes), against 6-7 µs written straight
    (timeit, 50,000 each to a file): about a twentieth of a get's CPU, and a get counted 6 %
    fewer instructions (872,068 against 819,225, `python -m bench.instructions`). Whenever
    the setup is not the service's own (any other handler or filter on the way, the text
    format, a handler of another class), `line` is False and the caller logs through
    `logging` as before, so whatever an operator configures there sees every record.
    Checked at each line: a handler added while the service runs is seen at once."""

    __slots__ = ("logger",)

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def handler(self) -> logging.StreamHandler | None:
        """The only handler an INFO record of the logger would reach, if it is the service's
        own: a plain StreamHandler with the JSON formatter, at most the request-id filter, at
        INFO or below, and the logger with no filter of its own."""
        logger = self.logger
        if logger.filters or logger.disabled:
            return None
        found = None
        node: logging.Logger | None = logger
        while node is not None:
            for handler in node.handlers:
                if found is not None:
                    return None
                found = handler
            node = node.parent if node.propagate else None
        if (
            found is None  # logging's last resort, which prints messages alone
            or type(found) is not logging.StreamHandler
            or type(found.formatter) is not JsonFormatter
            or found.level > logging.INFO
            or any(type(f) is not RequestIdFilter for f in found.filters)
        ):
            return None
        return found

    def line(self, message: str, request_id: str, fields: dict[str, Any]) -> bool:
        """Writes the line of `logger.info(message, extra={"request_id": request_id,
        **fields})` when the setup is the service's own (True; a failed write is reported by
        the handler, as its emit would); False: log it through `logging`. `fields` must not
        name a LogRecord attribute (makeRecord refuses those)."""
        handler = self.handler()
        if handler is None:
            return False
        level = logging.getLevelName(logging.INFO)  # a renamed level is written renamed
        entry = _json_entry(time.time(), level, self.logger.name, message, request_id, fields)
        text = _json_text(entry) + handler.terminator
        try:
            with handler.lock:  # as the handler's emit and flush hold it
                stream = handler.stream
                stream.write(text)
                if hasattr(stream, "flush"):
                    stream.flush()
        except RecursionError:
            raise
        except Exception:  # as the handler's emit would: reported by logging, not raised
            logger, extra = self.logger, {"request_id": request_id, **fields}
            record = logger.makeRecord(
                logger.name, logging.INFO, "", 0, message, (), None, None, extra
            )
            handler.handleError(record)
        return True


class TextFormatter(logging.Formatter):
    """For people reading a terminal: time, level, logger, [request id], message, extras."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "request_id", None) is None:
            record.request_id = "-"
        line = super().format(record)
        extras = _extras(record)
        if extras:
            head, sep, tail = line.partition("\n")  # keep a traceback below the extras
            line = head + "".join(f" {k}={v}" for k, v in extras.items()) + sep + tail
        return line


def logging_config(settings: Settings) -> dict[str, Any]:
    """A dictConfig for the service (also handed to uvicorn, so each worker process uses it)."""
    level = settings.log_level
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {
            "json": {"()": JsonFormatter},
            "text": {"()": TextFormatter},
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": settings.log_format,
                "filters": ["request_id"],
            }
        },
        "root": {"level": level, "handlers": ["default"]},
        "loggers": {
            # uvicorn's own loggers go through ours (same format); its access log stays off
            # while ours is on.
            **{
                name: {"level": level, "handlers": [], "propagate": True}
                for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
            },
            # SQLAlchemy logs every statement at INFO: never, whatever the service's level.
            "sqlalchemy": {"level": "WARNING"},
        },
    }


def lean_records() -> None:
    """What no formatter of ours shows, the logging module need not look up for every record:
    the calling frame, the thread and the process (the logging HOWTO's "Optimization"). Set in
    the service's processes only (configure_logging; create_app in production, so each worker
    of `serve --workers N` too): the access-log line is the one record of every request, and
    this is a sixth of its cost (53 → 44 µs, measured in process)."""
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def configure_logging(settings: Settings) -> None:
    logging.config.dictConfig(logging_config(settings))
    lean_records()
