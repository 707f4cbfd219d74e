"""Config loading: key paths with lines, ${ENV} and .env, --set overrides."""

from __future__ import annotations

import textwrap

import pytest

from tradebot_core.config import ConfigError, load_config


def write(tmp_path, text):
    path = tmp_path / "tradebot.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def problems(path, *overrides):
    with pytest.raises(ConfigError) as error:
        load_config(path, overrides)
    return error.value.problems


def test_errors_name_the_key_path_and_its_line(tmp_path):
    path = write(
        tmp_path,
        """\
        symbol: ES
        timeframe_s: 300
        risk:
          max_position: 0
          daily_loss_limit: 20
        """,
    )
    found = problems(path)
    assert "tradebot.yaml:4: risk.max_position: must be >= 1 (got 0)" in found
    assert "tradebot.yaml:5: risk.daily_loss_limit: must be <= 0 (got 20)" in found


def test_unknown_top_level_key_is_named(tmp_path):
    path = write(tmp_path, "symbol: ES\ntimeframe: 300\n")
    assert problems(path) == [
        "tradebot.yaml:2: timeframe: unknown key (misspelt, or not a setting here)"
    ]


def test_missing_file_and_bad_yaml_are_clear(tmp_path):
    assert problems(tmp_path / "nope.yaml") == [f"config file not found: {tmp_path / 'nope.yaml'}"]
    path = write(tmp_path, "symbol: [ES\n")
    assert problems(path)[0].startswith("tradebot.yaml:")
    assert "not valid YAML" in problems(path)[0]


def test_env_vars_dotenv_and_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("TB_SYMBOL", "NQ")
    monkeypatch.delenv("TB_FROM_DOTENV", raising=False)
    (tmp_path / ".env").write_text("TB_FROM_DOTENV=900\nTB_SYMBOL=CL\n")
    path = write(
        tmp_path,
        """\
        symbol: ${TB_SYMBOL}
        timeframe_s: ${TB_FROM_DOTENV}
        quantity: ${TB_UNSET:-3}
        feed: {plugin: demo, demo: {api_key: "${TB_NOT_SET_ANYWHERE}"}}
        """,
    )
    loaded = load_config(path)
    assert loaded.config.symbol == "NQ"  # the environment wins over .env
    assert loaded.config.timeframe_s == 900
    assert loaded.config.quantity == 3
    # an unset variable is only an error where it is used
    assert loaded.check_env(("feed", "demo")) == [
        "tradebot.yaml:4: feed.demo.api_key: environment variable TB_NOT_SET_ANYWHERE is not "
        "set (nor in .env)"
    ]
    assert loaded.check_env(("broker",)) == []


def test_set_overrides_by_dotted_path(tmp_path):
    path = write(tmp_path, "feed: {plugin: demo, speed: 10}\n")
    loaded = load_config(path, ["feed.speed=max", "broker.paper.slippage_ticks=2", "quantity=2"])
    assert loaded.config.feed.speed == "max"
    assert loaded.config.broker.settings_for("paper") == {"slippage_ticks": 2}
    assert loaded.config.quantity == 2
    assert problems(path, "feed.speed=-5") == [
        "--set feed.speed=-5: feed.speed: must be a number > 0 or 'max'"
    ]
    assert "expected KEY=VALUE" in problems(path, "feed.speed")[0]


def test_secrets_are_not_echoed_in_errors(tmp_path):
    path = write(tmp_path, "quantity: 1\n")
    from pydantic import BaseModel, ValidationError

    from tradebot_core.config import format_validation_error

    class Settings(BaseModel):
        api_key: int

    with pytest.raises(ValidationError) as error:
        Settings(api_key="db-SECRET123")
    lines = format_validation_error(error.value, load_config(path), ("feed", "databento"))
    assert "SECRET123" not in "".join(lines)
    assert lines[0].startswith("tradebot.yaml: feed.databento.api_key:")
