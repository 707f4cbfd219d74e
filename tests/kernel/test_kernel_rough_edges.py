"""Rough edges a new user hit: an unknown symbol, misspelt keys beside ``plugin:``, errors of
``--set`` values, the shipped config's feed sections, short secrets and tracebacks in the logs,
and the router step of writing a detector."""

from __future__ import annotations

import io
import json
import logging
import re
import textwrap

import pytest
import yaml
from click.testing import CliRunner
from pydantic import BaseModel, ValidationError

from tradebot_core import secrets
from tradebot_core.cli import _setup_logging, cli
from tradebot_core.config import ConfigError, format_validation_error, load_config
from tradebot_core.secrets import SecretFilter, register_secret


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def write(tmp_path, text):
    path = tmp_path / "tradebot.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def errors(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error: ")]


# -- 1. an unknown symbol -----------------------------------------------------------------------


def test_an_unknown_symbol_from_set_is_a_clean_error(repo_root):
    result = invoke("validate", str(repo_root / "tradebot.yaml"), "--set", "symbol=XYZ")
    assert result.exit_code == 2
    assert "Traceback" not in result.output and "KeyError" not in result.output
    (line,) = errors(result)
    assert line.startswith("error: --set symbol=XYZ: symbol: unknown instrument 'XYZ'")
    assert "ES, GC, MES, MNQ, NQ" in line and "instruments:" in line


def test_an_unknown_symbol_in_the_file_names_its_line_and_a_declared_one_is_known(tmp_path):
    path = write(tmp_path, "timeframe_s: 60\nsymbol: XYZ\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert error.value.problems[0].startswith("tradebot.yaml:2: symbol: unknown instrument 'XYZ'")
    path = write(
        tmp_path,
        """\
        symbol: XYZ
        instruments:
          XYZ: {tick_size: 0.5, tick_value: 5}
        """,
    )
    assert load_config(path).config.symbol == "XYZ"
    assert load_config(path, ["symbol=XYZH5"]).config.symbol == "XYZH5"  # a contract of it


# -- 2. keys beside plugin: -----------------------------------------------------------------------


def test_a_misspelt_key_under_feed_is_an_error_naming_it(tmp_path):
    path = write(
        tmp_path,
        """\
        feed:
          plugin: demo
          sped: max
          file: {path: data/ticks.dbn.zst}
        """,
    )
    result = invoke("validate", str(path), "--set", f"journal.path={tmp_path / 'j.db'}")
    assert result.exit_code == 2
    from tradebot_core import PluginManager

    feeds = ", ".join(sorted(PluginManager().components["feed"]))
    assert errors(result) == [
        "error: tradebot.yaml:3: feed.sped: unknown key "
        f"(not a setting, nor a feed plugin: {feeds})"
    ]


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("regime.adxx={period: 3}", "--set regime.adxx={...}: regime.adxx: unknown key"),
        ("router.regim=on", "--set router.regim=on: router.regim: unknown key"),
        (
            "broker.slipage_ticks=2",
            "--set broker.slipage_ticks=2: broker.slipage_ticks: unknown key",
        ),
    ],
)
def test_a_misspelt_key_beside_plugin_is_an_error_in_every_choice(repo_root, override, expected):
    result = invoke("validate", str(repo_root / "tradebot.yaml"), "--set", override)
    assert result.exit_code == 2
    kind = override.partition(".")[0]
    (line,) = errors(result)
    assert line.startswith(f"error: {expected} (not a setting, nor a {kind} plugin: ")


def test_settings_of_plugins_not_chosen_may_stay_and_switching_is_one_line(tmp_path):
    path = write(
        tmp_path,
        """\
        feed:
          plugin: demo
          speed: max
          demo: {seed: 3}
          file: {path: data/somewhere.csv}
        """,
    )
    assert invoke("validate", str(path)).exit_code == 0
    switched = invoke("validate", str(path), "--set", "feed.plugin=file")
    assert "unknown key" not in switched.stderr
    assert "feed.file: feed 'file' could not start: file not found" in switched.stderr


# -- 3. errors of --set values --------------------------------------------------------------------


def test_a_bad_set_value_blames_the_set_without_union_members(repo_root):
    result = invoke("validate", str(repo_root / "tradebot.yaml"), "--set", "feed.speed=fast")
    assert result.exit_code == 2
    assert errors(result) == [
        "error: --set feed.speed=fast: feed.speed: must be a number > 0 or 'max'"
    ]
    assert "tradebot.yaml:" not in result.stderr


@pytest.mark.parametrize("speed", ["fast", "0", "-3", "true", "[1]"])
def test_a_bad_speed_in_the_file_names_its_line_once(tmp_path, speed):
    path = write(tmp_path, f"symbol: ES\nfeed:\n  speed: {speed}\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    (problem,) = error.value.problems
    assert problem.startswith("tradebot.yaml:3: feed.speed: must be a number > 0 or 'max'")


def test_a_set_value_of_a_plugin_setting_blames_the_set(repo_root):
    result = invoke(
        "validate", str(repo_root / "tradebot.yaml"), "--set", "broker.paper.slippage_ticks=-2"
    )
    assert errors(result) == [
        "error: --set broker.paper.slippage_ticks=-2: broker.paper.slippage_ticks: must be >= 0"
    ]


def test_a_set_section_blames_the_set_for_the_keys_it_changed(tmp_path):
    path = write(tmp_path, "risk:\n  max_position: 2\n")
    with pytest.raises(ConfigError) as error:
        load_config(path, ["risk={max_position: 0}"])
    assert error.value.problems == ["--set risk={...}: risk.max_position: must be >= 1 (got 0)"]
    # an override of another key leaves the file's lines to blame
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, "quantity: 1\nrisk:\n  max_position: 0\n"), ["quantity=2"])
    assert error.value.problems == ["tradebot.yaml:3: risk.max_position: must be >= 1 (got 0)"]


def test_a_section_set_to_what_the_file_has_leaves_its_keys_to_the_file(tmp_path):
    """``tradebot replay`` sets ``feed.<plugin>`` to the file's settings plus the day."""
    path = write(
        tmp_path,
        """\
        feed:
          plugin: databento
          databento:
            symbol: ES.c.0
            budget_usd: -1
        """,
    )
    day = json.dumps({"symbol": "ES.c.0", "budget_usd": -1, "start": "2024-11-13"})
    loaded = load_config(path, [f"feed.databento={day}"])
    assert loaded.where(("feed", "databento", "budget_usd")) == (
        "tradebot.yaml:5: feed.databento.budget_usd"
    )
    assert loaded.where(("feed", "databento", "start")) == (
        "--set feed.databento={...}: feed.databento.start"
    )


def test_a_secret_in_a_set_is_not_echoed(repo_root):
    result = invoke(
        "validate",
        str(repo_root / "tradebot.yaml"),
        "--set",
        "feed.plugin=databento",
        "--set",
        "feed.databento={api_key: sk-LEAK-123, budget_usd: -1}",
    )
    assert "sk-LEAK" not in result.output
    assert (
        "error: --set feed.databento={...}: feed.databento.budget_usd: must be >= 0 (got -1)"
        in (errors(result))
    )
    switched = invoke(
        "validate",
        str(repo_root / "tradebot.yaml"),
        "--set",
        "feed.plugin=polygon",
        "--set",
        "feed.polygon.api_key=[sk-LEAK-456]",
    )
    assert "sk-LEAK" not in switched.output
    assert errors(switched)[0].startswith(
        "error: --set feed.polygon.api_key=***: feed.polygon.api_key: "
    )


def test_union_member_tags_never_reach_the_key_path(tmp_path):
    class Settings(BaseModel):
        mode: int | bool | None = None
        levels: list[int | float] = []

    loaded = load_config(write(tmp_path, "quantity: 1\n"))
    raw = {"mode": "sometimes", "levels": [1, "x"]}
    loaded.raw = {"feed": {"demo": raw}}
    with pytest.raises(ValidationError) as error:
        Settings.model_validate(raw)
    lines = format_validation_error(error.value, loaded, ("feed", "demo"))
    assert len(lines) == 2, lines
    assert lines[0].startswith("tradebot.yaml: feed.demo.mode: ")
    assert lines[1].startswith("tradebot.yaml: feed.demo.levels.1: ")
    assert not re.search(r"\.(int|bool|float|none)\b", "\n".join(lines)), lines


# -- 4. the shipped config's feed sections --------------------------------------------------------


def feed_sections(path) -> list[str]:
    feed = yaml.safe_load(path.read_text())["feed"]
    return [name for name, value in feed.items() if isinstance(value, dict)]


@pytest.mark.parametrize("where", ["tradebot.yaml", "tradebot_core/templates/tradebot.yaml"])
def test_every_feed_section_of_the_shipped_config_is_valid_for_its_feed(
    repo_root, tmp_path, monkeypatch, where
):
    monkeypatch.setenv("DATABENTO_API_KEY", "db-dummy-key-for-tests")
    monkeypatch.setenv("POLYGON_API_KEY", "pg-dummy-key-for-tests")
    path = repo_root / where
    names = feed_sections(path)
    assert {"demo", "file", "databento", "polygon"} <= set(names)
    for name in names:
        result = invoke(
            "validate",
            str(path),
            "--set",
            f"feed.plugin={name}",
            "--set",
            f"journal.path={tmp_path / 'j.db'}",
        )
        assert "unknown key" not in result.stderr, (name, result.stderr)
        # the settings validate; a feed may still need what a starter cannot give (a file, a day)
        for line in errors(result):
            assert f"feed.{name}: feed {name!r} could not start: " in line, (name, line)


# -- 5. secrets in the logs -----------------------------------------------------------------------


@pytest.fixture
def scrubbed():
    """A logger writing to a StringIO through a real handler; the secrets registered during the
    test are forgotten after it (they are process-wide)."""
    saved = set(secrets._secrets)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("tradebot.test_rough_edges")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)
        secrets._secrets.clear()
        secrets._secrets.update(saved)
        secrets._compile()


def test_secrets_of_any_length_are_scrubbed_from_messages_and_args(scrubbed):
    logger, stream = scrubbed
    register_secret("q")
    register_secret("Zx9")
    register_secret("k3y5")
    logger.info("one q two %s three", "Zx9")
    logger.info("url https://h/?token=%s&x=1", "k3y5")
    logger.info("inside words k3y5k3y5 stays hidden, q-tip and Zx9/ too")
    out = stream.getvalue()
    assert "INFO one *** two *** three" in out
    assert "INFO url https://h/?token=***&x=1" in out
    assert "words ****** stays hidden, ***-tip and ***/ too" in out


def test_short_secrets_do_not_garble_ordinary_text(scrubbed):
    logger, stream = scrubbed
    register_secret("abc")
    register_secret("e")
    logger.info("abcdef and xabc are words; the key e is not, nor (abc)")
    assert stream.getvalue() == "INFO abcdef and xabc are words; the key *** is not, nor (***)\n"


def test_secrets_are_scrubbed_from_tracebacks(scrubbed):
    logger, stream = scrubbed
    register_secret("tok")
    register_secret("wh-SECRET-0123456789")
    try:
        raise RuntimeError("POST https://hooks.example/wh-SECRET-0123456789 failed with tok")
    except RuntimeError:
        logger.exception("send failed")
    out = stream.getvalue()
    assert "wh-SECRET" not in out and " tok" not in out
    assert "Traceback (most recent call last)" in out
    assert "RuntimeError: POST https://hooks.example/*** failed with ***" in out


def test_a_record_made_without_the_factory_is_scrubbed_by_the_handler_filter(scrubbed):
    register_secret("pw-0987654321")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(SecretFilter())
    record = logging.makeLogRecord(
        {"msg": "login with %s", "args": ("pw-0987654321",), "exc_text": "Err: pw-0987654321"}
    )
    handler.handle(record)
    assert stream.getvalue() == "login with ***\nErr: ***\n"


def test_the_cli_rich_handler_scrubs_tracebacks_too(scrubbed):
    from rich.console import Console

    register_secret("rich-SECRET-5555")
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        _setup_logging(0, False)
        (handler,) = root.handlers
        assert any(isinstance(f, SecretFilter) for f in handler.filters)
        out = io.StringIO()
        handler.console = Console(file=out, width=200)
        try:
            raise ValueError("bad key rich-SECRET-5555")
        except ValueError:
            logging.getLogger("rough_edges_rich").exception("call failed")
        text = out.getvalue()
        assert "call failed" in text and "ValueError: bad key ***" in text
        assert "rich-SECRET" not in text
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


# -- 6. the router step of a new detector -----------------------------------------------------


@pytest.mark.parametrize("doc", ["docs/plugins.md", "examples/tradebot-delta-surge/README.md"])
def test_the_docs_enable_a_new_pattern_in_the_router(repo_root, doc):
    from tradebot_plugins.routers.regime_router import ALL_PATTERNS, RegimeRouterSettings

    from tradebot_core.types import Regime

    text = (repo_root / doc).read_text()
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.S)]
    (router,) = [b["router"] for b in blocks if "router" in b]
    assert router["plugin"] == "regime"
    settings = RegimeRouterSettings.model_validate(router["regime"])
    for regime in Regime:
        if regime is not Regime.NO_TRADE:
            assert "delta_surge" in settings.enabled[regime], regime
            assert set(ALL_PATTERNS) <= set(settings.enabled[regime]), regime
    assert "delta_surge is not enabled in" in text
