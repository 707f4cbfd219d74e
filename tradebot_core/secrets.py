"""Secrets never reach the logs.

Every ``SecretStr`` in a plugin's settings is registered here when the settings are validated
(:mod:`tradebot_core.plugins` does it), and a log-record factory replaces any registered value in
every log message, from any library (httpx logs request URLs, and a webhook URL is a secret).
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, SecretStr

REDACTED = "***"
_secrets: set[str] = set()
_installed = False


def register_secret(value: str) -> None:
    """Hide ``value`` from every log message from now on (values under 6 characters are not
    worth hiding and would garble ordinary text)."""
    global _installed
    if len(value) < 6:
        return
    _secrets.add(value)
    if not _installed:
        _install()
        _installed = True


def register_secrets_of(model: BaseModel) -> None:
    """Register every SecretStr field of a settings model (nested models included)."""
    for name in type(model).model_fields:
        value = getattr(model, name, None)
        if isinstance(value, SecretStr):
            register_secret(value.get_secret_value())
        elif isinstance(value, BaseModel):
            register_secrets_of(value)


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _install() -> None:
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is logging's problem, not ours
            return record
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return record

    logging.setLogRecordFactory(factory)
