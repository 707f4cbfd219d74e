"""Secrets never reach the logs.

Every ``SecretStr`` in a plugin's settings is registered here when the settings are validated
(:mod:`tradebot_core.plugins` does it), and any registered value is replaced by ``***`` in every
log record, from any library (httpx logs request URLs, and a webhook URL is a secret): in the
message, its arguments, the exception's traceback (``log.exception``) and the stack info.

Two hooks do it: a log-record factory (every record made by any logger, before any handler sees
it) and :class:`SecretFilter` on the root logger's handlers (records made some other way, e.g.
``logging.makeLogRecord``); the CLI puts the filter on the handlers it configures too
(:func:`protect_handlers`). A secret shorter than 4 characters is only replaced where it stands
as a whole word, so ``abc`` does not garble ``abcdef``.
"""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any

from pydantic import BaseModel, SecretStr

REDACTED = "***"
SHORT = 4
"""Secrets shorter than this are only replaced as whole words."""
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None
_installed = False


def register_secret(value: str) -> None:
    """Hide ``value`` (any string that is not blank) from every log record from now on."""
    global _installed
    if not value or not value.strip() or value in _secrets:
        return
    _secrets.add(value)
    _compile()
    if not _installed:
        _install()
        _installed = True


def _compile() -> None:
    """One pattern for every registered secret, the longest first."""
    global _pattern
    parts = []
    for secret in sorted(_secrets, key=len, reverse=True):
        escaped = re.escape(secret)
        parts.append(escaped if len(secret) >= SHORT else rf"(?<!\w){escaped}(?!\w)")
    _pattern = re.compile("|".join(parts)) if parts else None


def register_secrets_of(model: BaseModel) -> None:
    """Register every SecretStr field of a settings model (nested models included)."""
    for name in type(model).model_fields:
        value = getattr(model, name, None)
        if isinstance(value, SecretStr):
            register_secret(value.get_secret_value())
        elif isinstance(value, BaseModel):
            register_secrets_of(value)


def redact(text: str) -> str:
    if _pattern is None or not text:
        return text
    return _pattern.sub(REDACTED, text)


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Scrub the registered secrets from a record, in place: message and arguments, the
    exception's text (formatted here, then kept in ``exc_text``; ``exc_info`` is dropped when it
    held a secret, so no handler formats the traceback again, RichHandler's included) and the
    stack info."""
    if _pattern is None:
        return record
    try:
        message = record.getMessage()
    except Exception:  # a broken format string is logging's problem, not ours
        message = None
    if message is not None:
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        cleaned = redact(text)
        if cleaned != text:
            record.exc_text, record.exc_info = cleaned, None
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


class SecretFilter(logging.Filter):
    """A handler filter that scrubs the registered secrets from each record it passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


_FILTER = SecretFilter()


def protect_handlers(logger: logging.Logger | None = None) -> None:
    """Put the secret filter on every handler of ``logger`` (default: the root logger)."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, SecretFilter) for f in handler.filters):
            handler.addFilter(_FILTER)


def _install() -> None:
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact_record(previous(*args, **kwargs))

    logging.setLogRecordFactory(factory)
    protect_handlers()
