"""``tradebot watchdog --once`` as a real process, at virtual times (``--now``)."""

from __future__ import annotations

import json
import subprocess

import pytest
from ops.ops_support import ns_at

from tradebot_core.execution.store import JournalLock

MARKET_HOURS = "2024-11-13T10:00:00"  # a Wednesday, 10:00 ET
DAILY_BREAK = "2024-11-13T17:30:00"  # Globex halts 17:00-18:00 ET
SATURDAY = "2024-11-16T12:00:00"


@pytest.fixture
def bot_lock(ops_env):
    """The journal held as a running bot holds it (by this test process)."""
    lock = JournalLock(ops_env.journal)
    lock.acquire()
    yield lock
    lock.release()


def once(tradebot, ops_env, now: str, process: bool = True) -> str:
    """One round of the watchdog: a real process, or (``process=False``, quicker) in this one."""
    args = ("watchdog", str(ops_env.config), "--once", "--now", now)
    if not process:
        from click.testing import CliRunner

        from tradebot_core.cli import cli

        outcome = CliRunner().invoke(cli, list(args), catch_exceptions=False)
        assert outcome.exit_code == 0, outcome.output
        return outcome.stdout
    result = tradebot(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_stale_heartbeat_while_the_market_is_open_alerts(tradebot, ops_env, bot_lock):
    ops_env.write_config()
    ops_env.write_heartbeat(ns_at(MARKET_HOURS) - 120 * 10**9)
    stdout = once(tradebot, ops_env, MARKET_HOURS)
    assert ops_env.checks() == ["heartbeat_stale"]
    alert = ops_env.alerts()[0]
    assert alert["payload"]["stalled"] is True
    assert alert["payload"]["age_s"] == 120.0
    assert "heartbeat 120 s old" in alert["message"]
    assert "heartbeat 120 s old" in stdout


def test_a_fresh_heartbeat_is_quiet(tradebot, ops_env, bot_lock):
    ops_env.write_config()
    ops_env.write_heartbeat(ns_at(MARKET_HOURS) - 3 * 10**9)
    once(tradebot, ops_env, MARKET_HOURS, process=False)
    assert ops_env.checks() == []


@pytest.mark.parametrize("now", [DAILY_BREAK, SATURDAY], ids=["daily-break", "weekend"])
def test_a_closed_market_is_not_a_stall(tradebot, ops_env, bot_lock, now):
    ops_env.write_config()
    ops_env.write_heartbeat(ns_at(now) - 3600 * 10**9)  # an hour old
    once(tradebot, ops_env, now)
    alerts = [a["payload"]["check"] for a in ops_env.alerts() if a["payload"]["stalled"]]
    assert alerts == []  # (17:30 is after 16:05: the day's report, not an alert, may go out)


def test_a_killed_bot_is_noticed(tradebot, ops_env, bot_lock):
    ops_env.write_config()
    bot = subprocess.Popen(["sleep", "60"])
    try:
        ops_env.write_heartbeat(ns_at(MARKET_HOURS) - 2 * 10**9, pid=bot.pid)
        once(tradebot, ops_env, MARKET_HOURS, process=False)
        assert ops_env.checks() == []  # alive: nothing to say
        bot.kill()
        bot.wait()
        once(tradebot, ops_env, MARKET_HOURS)
    finally:
        bot.kill()
        bot.wait()
    alerts = ops_env.alerts()
    assert [a["payload"]["check"] for a in alerts] == ["bot_gone"]
    assert f"process {bot.pid} is gone" in alerts[0]["message"]


def test_a_free_journal_lock_means_the_bot_is_gone(tradebot, ops_env):
    ops_env.write_config()
    ops_env.write_heartbeat(ns_at(SATURDAY) - 2 * 10**9)  # this process: alive
    once(
        tradebot, ops_env, SATURDAY, process=False
    )  # the market is closed: a dead bot is still news
    alerts = ops_env.alerts()
    assert [a["payload"]["check"] for a in alerts] == ["bot_gone"]
    assert "nothing holds the journal" in alerts[0]["message"]


def test_disk_over_the_threshold_alerts(tradebot, ops_env, bot_lock):
    ops_env.write_config(watchdog=", max_disk_pct: 0")
    ops_env.write_heartbeat(ns_at(MARKET_HOURS) - 2 * 10**9)
    once(tradebot, ops_env, MARKET_HOURS)
    alerts = ops_env.alerts()
    assert [a["payload"]["check"] for a in alerts] == ["disk"]
    assert "(limit 0%)" in alerts[0]["message"]
    assert alerts[0]["payload"]["disk_pct"] > 0


def test_feed_reconnects_and_memory_over_their_thresholds_alert(tradebot, ops_env, bot_lock):
    ops_env.write_config(watchdog=", max_feed_reconnects: 3, max_rss_mb: 100")
    ops_env.write_heartbeat(ns_at(MARKET_HOURS) - 2 * 10**9, pid=999_999_999, feed_reconnects=4)
    once(tradebot, ops_env, MARKET_HOURS, process=False)
    checks = ops_env.checks()
    assert "feed_reconnects" in checks
    assert "memory" in checks  # the heartbeat's 150 MB, the pid being gone


def test_the_end_of_day_report_is_sent_once_after_1605(tradebot, ops_env, bot_lock):
    ops_env.write_config()

    def at(now: str, process: bool = False) -> None:
        ops_env.write_heartbeat(ns_at(now) - 2 * 10**9)  # a healthy bot
        once(tradebot, ops_env, now, process=process)

    at("2024-11-13T16:00:00")
    assert ops_env.checks() == []  # not yet
    at("2024-11-13T16:10:00", process=True)
    at("2024-11-13T16:20:00")  # a restarted watchdog: not twice
    reports = ops_env.alerts()
    assert [a["payload"]["check"] for a in reports] == ["daily_report"]
    report = reports[0]
    assert report["payload"]["day"] == "2024-11-13"
    assert report["payload"]["bot_running"] is True
    assert report["payload"]["net_position"] == 1
    assert report["payload"]["day_realized"] == "125.00"
    assert "end-of-day health report 2024-11-13" in report["message"]
    assert json.loads((ops_env.heartbeat.parent / "watchdog.json").read_text()) == {
        "report_sent": "2024-11-13"
    }
    at("2024-11-14T16:06:00")  # the next day: another one
    assert [a["payload"]["day"] for a in ops_env.alerts()] == ["2024-11-13", "2024-11-14"]
