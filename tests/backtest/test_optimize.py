"""`tradebot optimize`: walk-forward tuning on 20 small demo days, 3 windows; the same seed gives
the same result again and on a Dask cluster; the report and the database hold in-sample and
out-of-sample figures per window."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from datetime import date
from pathlib import Path

import click
import pytest
from tradebot_plugins.backtest import optimize

FROM, TO = "2024-10-01", "2024-10-28"  # 20 CME trading days
SMALL = ["--set", "feed.demo.trades_per_session=20000", "--set", "timeframe_s=120"]
# 3 windows: days 1-6 / 7-10, 6-11 / 12-15, 11-16 / 17-20
WALK = ["--train", "6", "--test", "4", "--step", "5", "--trials", "2", "--seed", "11"]
SPACE = """\
detectors.imbalance.ratio: {low: 2.0, high: 4.0, step: 0.5}
risk.max_position: {choices: [1, 2]}
"""


def run_optimize(repo_root: Path, out: Path, *extra: str) -> Path:
    space = out / "space.yaml"
    space.write_text(SPACE)
    json_path = out / "optimize.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tradebot_core.cli",
            "optimize",
            str(repo_root / "tradebot.yaml"),
            "--from",
            FROM,
            "--to",
            TO,
            "--space",
            str(space),
            "--json",
            str(json_path),
            "--db",
            str(out / "bt.db"),
            "--quiet",
            *WALK,
            *SMALL,
            *extra,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "160"},
    )
    return json_path


@pytest.fixture(scope="module")
def local_run(repo_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("optimize")
    json_path = run_optimize(repo_root, out, "--workers", "2", "--report", str(out / "wf.html"))
    return out, json_path


def test_three_windows_saved_and_the_same_seed_gives_the_same_result(
    repo_root, local_run, tmp_path
):
    out, json_path = local_run
    data = json.loads(json_path.read_text())
    assert [(w["train"], w["test"]) for w in data["windows"]] == [
        (["2024-10-01", "2024-10-08"], ["2024-10-09", "2024-10-14"]),
        (["2024-10-08", "2024-10-15"], ["2024-10-16", "2024-10-21"]),
        (["2024-10-15", "2024-10-22"], ["2024-10-23", "2024-10-28"]),
    ]
    for w in data["windows"]:
        assert len(w["trials"]) == 2
        assert w["in_sample"]["days"] == 6 and w["out_of_sample"]["days"] == 4
        assert set(w["best_params"]) == {"detectors.imbalance.ratio", "risk.max_position"}
        assert w["best_params"]["detectors.imbalance.ratio"] in {2.0, 2.5, 3.0, 3.5, 4.0}
        best = max(t["objective"] for t in w["trials"])
        assert w["in_sample"]["objective"] == best
    assert sum(w["in_sample"]["trades"] for w in data["windows"]) > 0

    again = run_optimize(repo_root, tmp_path, "--workers", "2")
    assert again.read_bytes() == json_path.read_bytes()

    db = sqlite3.connect(out / "bt.db")
    assert db.execute("SELECT count(*) FROM optimize_runs").fetchone() == (1,)
    rows = db.execute(
        "SELECT window, train_from, test_to, best_params, in_sample_objective,"
        " out_of_sample_objective FROM optimize_windows ORDER BY window"
    ).fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (1, "2024-10-01", "2024-10-14"),
        (2, "2024-10-08", "2024-10-21"),
        (3, "2024-10-15", "2024-10-28"),
    ]
    for row, w in zip(rows, data["windows"], strict=True):
        assert json.loads(row[3]) == w["best_params"]
        assert row[4:] == (w["in_sample"]["objective"], w["out_of_sample"]["objective"])
    assert db.execute("SELECT count(*) FROM optimize_trials").fetchone() == (6,)


def test_dask_cluster_gives_the_same_result(repo_root, local_run, tmp_path):
    distributed = pytest.importorskip("distributed")
    _, json_path = local_run
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        host="127.0.0.1",
        scheduler_port=0,  # an OS-chosen free port, like every test server
    ) as cluster:
        address = cluster.scheduler_address.removeprefix("tcp://")
        dask_json = run_optimize(repo_root, tmp_path, "--executor", f"dask://{address}")
    assert dask_json.read_bytes() == json_path.read_bytes()


def test_report_shows_in_sample_and_out_of_sample_per_window(local_run):
    out, json_path = local_run
    data = json.loads(json_path.read_text())
    page = (out / "wf.html").read_text()
    assert "in-sample (train)" in page and "out-of-sample (test)" in page
    for w in data["windows"]:
        row = re.search(rf'<tr id="window-{w["window"]}">(.*?)</tr>', page, re.S)
        assert row, w["window"]
        ins = re.findall(r'<td class="is">([^<]*)</td>', row.group(1))
        outs = re.findall(r'<td class="oos[^"]*">([^<]*)</td>', row.group(1))
        assert ins[0] == w["in_sample"]["net_pnl"] and outs[0] == w["out_of_sample"]["net_pnl"]
        assert len(ins) == len(outs) == len(optimize.COLUMNS)
    chart = page[page.index('<figure id="is-vs-oos"') :]
    assert "<svg" in chart and "<path" in chart


# -- the pieces, without a backtest ---------------------------------------------------------------


def test_windows_are_whole_and_step_apart():
    days = [date(2024, 10, d) for d in range(1, 21)]
    cuts = optimize.windows(days, train=10, test=5, step=5)
    assert [(t[0].day, t[-1].day, s[0].day, s[-1].day) for t, s in cuts] == [
        (1, 10, 11, 15),
        (6, 15, 16, 20),
    ]
    assert optimize.windows(days, 15, 6, 1) == []


def test_space_parses_ranges_ints_and_choices_and_rejects_mistakes():
    space = optimize.parse_space(
        {
            "space": {
                "detectors.imbalance.ratio": {"low": 2.0, "high": 3.0, "step": 0.1},
                "risk.max_position": {"low": 1, "high": 3},
                "detectors.imbalance.zero_weak_side": {"choices": ["imbalance", "ignore"]},
            }
        }
    )
    ratio, size, side = space
    assert not ratio.is_int and size.is_int and side.choices == ("imbalance", "ignore")
    assert optimize.overrides_for({"a.b": 2.3, "c": "ignore", "d": True}) == [
        "a.b=2.3",
        'c="ignore"',
        "d=true",
    ]
    for bad in (
        {"x": {"low": 3, "high": 1}},
        {"x": {"low": 1}},
        {"x": {"choices": []}},
        {"x": {"low": 1, "high": 2, "steps": 1}},
        {"x": 3},
        [],
    ):
        with pytest.raises(click.BadParameter):
            optimize.parse_space(bad)


def test_step_values_are_rounded_to_the_step():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    param = optimize.parse_space({"x": {"low": 0.1, "high": 0.9, "step": 0.1}})[0]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    values = []
    study.optimize(lambda trial: values.append(param.suggest(trial)) or 0.0, n_trials=20)
    assert all(v == round(v, 1) and repr(v) == str(round(v, 1)) for v in values)
