"""A high margin day is not traded (and a live run says so and exits 3), the next day is; the
environment variables our users know work with the default config."""

from __future__ import annotations

import asyncio

import pytest
from kernel.scripted import et, make_ticks

from tradebot_core import ConfigError, EventKind, load_config
from tradebot_core.testing import run_pipeline

from .test_execution_session import Detectors


def margins(mes: str) -> dict:
    return {"broker": {"plugin": "paper", "paper": {"day_margins": {"MES": mes}}}}


def test_a_high_margin_day_sends_the_alert_and_no_order():
    result = run_pipeline(
        make_ticks(et(2024, 11, 13, 9, 30), 6_000, seed=2),
        symbol="MES",
        plugins=[Detectors()],
        detectors={"always_long": {}},
        config=margins("45.50"),
    )
    (alert,) = result.of(EventKind.HIGH_MARGIN_DAY)
    assert (alert["margin"], alert["limit"], alert["symbol"]) == ("45.50", "40", "MES")
    assert "45.50" in alert["reason"] and "40" in alert["reason"]
    assert result.summary["orders"] == 0
    assert result.decisions and all(d.intent is None for d in result.decisions)
    assert "high margin day" in result.decisions[-1].reasons[-1]


def test_at_the_limit_the_day_trades():
    result = run_pipeline(
        make_ticks(et(2024, 11, 13, 9, 30), 6_000, seed=2),
        symbol="MES",
        plugins=[Detectors()],
        detectors={"always_long": {}},
        config=margins("40"),
    )
    assert not result.of(EventKind.HIGH_MARGIN_DAY)
    assert result.summary["orders"] > 0


def test_a_live_run_stops_on_a_high_margin_day_and_the_next_day_trades(tmp_path):
    from kernel.scripted import ScriptedFeed, kernel_manager

    from tradebot_core import Pipeline

    def run(day: int, mes_margin: str):
        ScriptedFeed.script = [make_ticks(et(2024, 11, day, 9, 30), 6_000, seed=day)]
        config = tmp_path / "t.yaml"
        config.write_text(
            "symbol: MES\ntimeframe_s: 60\nfeed: {plugin: scripted, scripted: {live: true}}\n"
            "detectors: {bar_direction: {}}\nregime: {plugin: fixed}\n"
            "router: {plugin: approve_all}\naccount: {tiers: []}\n"
            f"broker: {{plugin: paper, paper: {{day_margins: {{MES: {mes_margin}}}}}}}\n"
        )
        pipeline = Pipeline(load_config(config), kernel_manager(), journal_path=tmp_path / "j.db")
        return asyncio.run(pipeline.run())

    first = run(13, "52")
    assert first.exit.startswith("not_trading: ") and "high margin day" in first.exit
    assert first.orders == 0
    second = run(14, "38")  # the next trading day: margins back to normal
    assert second.exit == "completed" and second.orders > 0


def test_the_documented_environment_variables_work_with_the_default_config(monkeypatch):
    monkeypatch.setenv("TRADING_SYMBOL", "ES")
    monkeypatch.setenv("DAILY_PROFIT_TARGET", "750")
    monkeypatch.setenv("DAILY_LOSS_LIMIT", "-250")
    monkeypatch.setenv("MES_MARGIN_LIMIT", "45")
    monkeypatch.setenv("ES_MARGIN_LIMIT", "450")
    monkeypatch.setenv("DISCORD_WEBHOOK_URL", "https://discord.com/api/webhooks/1/secret-part")
    monkeypatch.setenv("TRADING_MODE", "live")
    config = load_config("tradebot.yaml").config
    assert config.symbol == "ES"
    assert (config.risk.daily_profit_target, config.risk.daily_loss_limit) == (750, -250)
    assert config.risk.margin_limits == {"MES": 45, "ES": 450}
    assert config.notifiers["discord"]["webhook_url"].endswith("secret-part")
    assert (config.broker.plugin, config.live.enabled) == ("rithmic", True)
    monkeypatch.setenv("TRADING_MODE", "paper")
    assert load_config("tradebot.yaml").config.broker.plugin == "paper"


def test_a_bad_environment_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("DAILY_LOSS_LIMIT", "50")
    with pytest.raises(ConfigError, match=r"environment DAILY_LOSS_LIMIT=50: risk\.daily_loss"):
        load_config("tradebot.yaml")
    monkeypatch.delenv("DAILY_LOSS_LIMIT")
    monkeypatch.setenv("TRADING_MODE", "yolo")
    with pytest.raises(ConfigError, match=r"TRADING_MODE=yolo: must be paper or live"):
        load_config("tradebot.yaml")
