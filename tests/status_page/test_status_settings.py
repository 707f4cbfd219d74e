"""The status page's settings: validation errors name the key; an empty token means no token."""

from __future__ import annotations

import pytest
import tradebot_plugins.services.status_page as status_page_plugin
from kernel.scripted import kernel_manager
from status_page.queued import status_config
from tradebot_plugins.services.status_page import StatusPage, StatusPageSettings

from tradebot_core import Pipeline
from tradebot_core.config import ConfigError, load_config


def build(tmp_path, services: str) -> Pipeline:
    manager = kernel_manager()
    manager.register(status_page_plugin, "status_page")
    from status_page.queued import QueuedPlugin

    manager.register(QueuedPlugin(), "queued")
    path = tmp_path / "tradebot.yaml"
    path.write_text(status_config(services))
    return Pipeline(load_config(path), manager, journal_path=tmp_path / "j.db")


@pytest.mark.parametrize(
    ("services", "expected"),
    [
        ("{port: 70000}", "services.status_page.port: must be <= 65535"),
        ("{allowed_origins: [evil.example]}", "is not an origin"),
        ("{allowed_origins: ['http://a.example/path']}", "is not an origin"),
        ("{recent_bars: 0}", "services.status_page.recent_bars: must be >= 1"),
        ("{tokn: abc}", "services.status_page.tokn"),
    ],
)
def test_bad_settings_name_the_key(tmp_path, services, expected):
    with pytest.raises(ConfigError) as error:
        build(tmp_path, services)
    assert expected in str(error.value)


def test_an_empty_token_from_the_environment_is_no_token(tmp_path, monkeypatch):
    monkeypatch.delenv("TRADEBOT_STATUS_TOKEN", raising=False)
    page = build(tmp_path, "{port: 0, token: '${TRADEBOT_STATUS_TOKEN:-}'}").services[0]
    assert isinstance(page, StatusPage) and page.settings.token is None
    monkeypatch.setenv("TRADEBOT_STATUS_TOKEN", "from-the-env")
    page = build(tmp_path, "{port: 0, token: '${TRADEBOT_STATUS_TOKEN:-}'}").services[0]
    assert page.settings.token.get_secret_value() == "from-the-env"
    assert "from-the-env" not in repr(page.settings)


def test_origins_are_normalised_and_the_bound_host_is_own():
    settings = StatusPageSettings(host="192.168.1.5", allowed_origins=["HTTPS://Bot.Example.com/"])
    page = StatusPage(settings, None)
    assert settings.allowed_origins == ["https://bot.example.com"]
    assert {
        "http://127.0.0.1:8000",
        "http://localhost:8000",
        "http://192.168.1.5:8000",
        "https://bot.example.com",
    } <= page.origins()
    assert (
        "http://0.0.0.0:8000" not in StatusPage(StatusPageSettings(host="0.0.0.0"), None).origins()
    )
