"""`tradebot replay` runs the whole pipeline on one day of a feed."""

from __future__ import annotations

import json

from click.testing import CliRunner

from tradebot_core.cli import cli

MBO = "esh4-glbx-mdp3-20231225.mbo.dbn.zst"


def test_replay_a_recorded_day_through_the_pipeline(repo_root, shared_data, tmp_path):
    summary = tmp_path / "summary.json"
    result = CliRunner().invoke(
        cli,
        [
            "replay",
            str(repo_root / "tradebot.yaml"),
            "--date",
            "2023-12-26",
            "--symbol",
            "ES",
            "--speed",
            "max",
            "--set",
            "feed.plugin=file",
            "--set",
            f"feed.file.path={shared_data / 'databento' / MBO}",
            "--set",
            "services={}",
            "--set",
            "notifiers={}",
            "--journal",
            str(tmp_path / "replay.db"),
            "--summary-json",
            str(summary),
            "-q",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    data = json.loads(summary.read_text())
    assert data["ticks"] == 2_973 and data["bars"] > 10


def test_replay_of_a_day_the_file_does_not_hold_plays_nothing(repo_root, shared_data, tmp_path):
    summary = tmp_path / "summary.json"
    CliRunner().invoke(
        cli,
        [
            "replay",
            str(repo_root / "tradebot.yaml"),
            "--date",
            "2023-12-27",
            "--symbol",
            "ES",
            "--set",
            "feed.plugin=file",
            "--set",
            f"feed.file.path={shared_data / 'databento' / MBO}",
            "--set",
            "services={}",
            "--set",
            "notifiers={}",
            "--journal",
            str(tmp_path / "none.db"),
            "--summary-json",
            str(summary),
            "-q",
        ],
        catch_exceptions=False,
    )
    assert json.loads(summary.read_text())["ticks"] == 0
