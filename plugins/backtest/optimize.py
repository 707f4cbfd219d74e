"""``tradebot optimize``: walk-forward tuning of any config setting with Optuna.

The trading days from ``--from`` to ``--to`` are cut into windows: ``--train`` days to tune on,
then the ``--test`` days right after them to check the result on, the next window ``--step`` days
later. For each window an Optuna study (TPE sampler, seeded) runs ``--trials`` backtests of the
train days, each with the settings it suggests from the search space; the best settings then run
once on the test days. In-sample (train) and out-of-sample (test) figures side by side show
overfitting at a glance: tuned settings that earn in-sample and lose out-of-sample.

The search space is a YAML file of dotted config paths (any plugin setting, applied as
``--set PATH=VALUE``)::

    detectors.imbalance.ratio: {low: 2.0, high: 4.0, step: 0.25}   # a float (step optional)
    risk.max_position: {low: 1, high: 3}                           # whole numbers: an int
    detectors.imbalance.zero_weak_side: {choices: [imbalance, as_one, ignore]}

(``log: true`` samples on a log scale; the entries may also sit under a top-level ``space:``.)

Deterministic: trials run one after another (the parallelism is the days inside a trial, on the
executor), each backtest is exact, and the sampler is seeded, so the same ``--seed`` gives the
same windows, trials and figures on local processes and on a Dask cluster.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from tradebot_core import ConfigError, LoadedConfig, __version__

DRAWDOWN_PENALTY = Decimal("0.5")
PROFIT_FACTOR_CAP = 100.0


def _profit_factor(m: dict[str, Any]) -> float:
    """No loss: the cap when it made money (0 without trades)."""
    if m["profit_factor"] is not None:
        return float(m["profit_factor"])
    return PROFIT_FACTOR_CAP if Decimal(m["net_pnl"]) > 0 else 0.0


OBJECTIVES: dict[str, Callable[[dict[str, Any]], float]] = {
    "score": lambda m: float(Decimal(m["net_pnl"]) - DRAWDOWN_PENALTY * Decimal(m["max_drawdown"])),
    "net_pnl": lambda m: float(Decimal(m["net_pnl"])),
    "profit_factor": _profit_factor,
    "win_rate": lambda m: float(m["win_rate"] or 0.0),
    "average_daily_pnl": lambda m: float(Decimal(m["average_daily_pnl"])),
    "max_drawdown": lambda m: -float(Decimal(m["max_drawdown"])),
}
OBJECTIVE_HELP = (
    "What the study maximizes: score (net P&L - 0.5 x max drawdown), net_pnl, profit_factor "
    "(capped at 100), win_rate, average_daily_pnl, max_drawdown (the smallest)."
)
METRICS = (
    "net_pnl",
    "profit_factor",
    "max_drawdown",
    "trades",
    "win_rate",
    "days",
    "average_daily_pnl",
    "final_balance",
)


# -- the search space ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One setting to tune: ``low``..``high`` (optionally by ``step``, or on a log scale) or one
    of ``choices``."""

    path: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    @property
    def is_int(self) -> bool:
        return all(isinstance(v, int) for v in (self.low, self.high)) and (
            self.step is None or isinstance(self.step, int)
        )

    def suggest(self, trial: Any) -> Any:
        if self.choices:
            return trial.suggest_categorical(self.path, list(self.choices))
        if self.is_int:
            return trial.suggest_int(
                self.path, self.low, self.high, step=self.step or 1, log=self.log
            )
        value = trial.suggest_float(self.path, self.low, self.high, step=self.step, log=self.log)
        if self.step is not None:  # 2.0 + 3 x 0.1 is 2.3, not 2.3000000000000003
            places = max(0, -int(Decimal(str(self.step)).as_tuple().exponent))
            value = round(value, places)
        return value

    def describe(self) -> dict[str, Any]:
        if self.choices:
            return {"choices": list(self.choices)}
        out: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.step is not None:
            out["step"] = self.step
        if self.log:
            out["log"] = True
        return out


def _bad(problem: str) -> click.BadParameter:
    return click.BadParameter(problem, param_hint="--space")


def parse_space(data: Any, source: str = "space") -> list[Param]:
    """The parameters of a search space mapping (see the module's docstring)."""
    if isinstance(data, dict) and set(data) == {"space"}:
        data = data["space"]
    if not isinstance(data, dict) or not data:
        raise click.BadParameter(
            f"{source}: expected a mapping of dotted config paths to "
            "{low:, high:[, step:]} or {choices: [...]}",
            param_hint="--space",
        )
    params = []
    for path, spec in data.items():
        where = f"{source}: {path}"
        if not isinstance(spec, dict):
            raise _bad(f"{where}: expected {{low, high}} or {{choices}}")
        unknown = set(spec) - {"low", "high", "step", "log", "choices"}
        if unknown:
            raise _bad(f"{where}: unknown {sorted(unknown)}")
        if "choices" in spec:
            choices = spec["choices"]
            if not isinstance(choices, list) or not choices:
                raise _bad(f"{where}: choices must be a non-empty list")
            params.append(Param(str(path), choices=tuple(choices)))
            continue
        low, high, step = spec.get("low"), spec.get("high"), spec.get("step")
        numbers = [v for v in (low, high, step) if v is not None]
        if (
            low is None
            or high is None
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers)
        ):
            raise _bad(f"{where}: low and high must be numbers")
        if low > high or (step is not None and step <= 0):
            raise _bad(f"{where}: need low <= high and step > 0")
        log = bool(spec.get("log", False))
        if log and (step is not None or low <= 0):
            raise _bad(f"{where}: log needs low > 0 and no step")
        params.append(Param(str(path), low, high, step, log))
    return params


def load_space(path: str | Path) -> list[Param]:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise click.BadParameter(f"{path}: {exc}", param_hint="--space") from None
    return parse_space(data, str(path))


def overrides_for(params: dict[str, Any]) -> list[str]:
    """``PATH=VALUE`` overrides, each value written as YAML reads it back (JSON is YAML)."""
    return [f"{path}={json.dumps(value)}" for path, value in params.items()]


# -- walk-forward --------------------------------------------------------------------------------


def windows(
    days: list[date], train: int, test: int, step: int
) -> list[tuple[list[date], list[date]]]:
    """(train days, test days) pairs: ``train`` days, then the ``test`` days after them; the next
    window starts ``step`` days later; only whole windows."""
    if min(train, test, step) < 1:
        raise ValueError("train, test and step must be at least 1 day")
    out = []
    start = 0
    while start + train + test <= len(days):
        out.append((days[start : start + train], days[start + train : start + train + test]))
        start += step
    return out


def metrics(result: Any, objective: str) -> dict[str, Any]:
    from . import stats

    overall = stats.overall(result)
    out = {key: overall[key] for key in METRICS}
    out["objective"] = OBJECTIVES[objective](overall)
    return out


Progress = Callable[[str], None]


def walk_forward(
    loaded: LoadedConfig,
    days: list[date],
    space: list[Param],
    executor: Any,
    *,
    train: int,
    test: int,
    step: int,
    trials: int,
    seed: int,
    objective: str = "score",
    progress: Progress | None = None,
    backtest: Callable[..., Any] | None = None,
) -> dict[str, Any]:
    """Every window's study and test run; the results hold no wall-clock value, so the same
    inputs give byte-identical JSON."""
    import optuna

    from .engine import config_hash, run_backtest

    run = backtest or run_backtest
    if objective not in OBJECTIVES:
        raise ValueError(f"objective {objective!r}: one of {', '.join(OBJECTIVES)}")
    cuts = windows(days, train, test, step)
    if not cuts:
        raise ValueError(
            f"{len(days)} trading days hold no window of {train} train + {test} test days"
        )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    say = progress or (lambda _text: None)
    out_windows = []
    for number, (train_days, test_days) in enumerate(cuts, start=1):
        label = f"window {number}/{len(cuts)}"
        before = days[: days.index(train_days[0])]  # the days before warm the window's first
        records = _study(
            loaded, train_days, before, space, executor, run, trials, seed, objective, label, say
        )
        best = max(records, key=lambda r: r["objective"])  # the first of equals, as Optuna's
        tested = run(
            loaded.override(overrides_for(best["params"])),
            test_days,
            executor,
            warm_days=before + train_days,
        )
        out_of_sample = metrics(tested, objective)
        say(
            f"{label} test: {objective} {out_of_sample['objective']:.2f} "
            f"(in-sample {best['objective']:.2f})"
        )
        out_windows.append(
            {
                "window": number,
                "train": [train_days[0].isoformat(), train_days[-1].isoformat()],
                "test": [test_days[0].isoformat(), test_days[-1].isoformat()],
                "best_trial": best["trial"],
                "best_params": best["params"],
                "in_sample": {k: v for k, v in best.items() if k not in ("trial", "params")},
                "out_of_sample": out_of_sample,
                "trials": records,
            }
        )
    cfg = loaded.config
    return {
        "config_hash": config_hash(loaded),
        "code_version": __version__,
        "symbol": cfg.symbol,
        "from": days[0].isoformat(),
        "to": days[-1].isoformat(),
        "objective": objective,
        "seed": seed,
        "trials": trials,
        "train": train,
        "test": test,
        "step": step,
        "space": {p.path: p.describe() for p in space},
        "windows": out_windows,
        "summary": summarize(out_windows),
    }


def _study(
    loaded: LoadedConfig,
    train_days: list[date],
    warm_days: list[date],
    space: list[Param],
    executor: Any,
    run: Callable[..., Any],
    trials: int,
    seed: int,
    objective: str,
    label: str,
    say: Progress,
) -> list[dict[str, Any]]:
    """One window's Optuna study on its train days: each trial's settings and figures."""
    import optuna

    records: list[dict[str, Any]] = []
    seen: dict[str, dict[str, Any]] = {}  # the same settings suggested again: the same figures

    def trial_objective(trial: Any) -> float:
        params = {p.path: p.suggest(trial) for p in space}
        key = json.dumps(params, sort_keys=True)
        if key not in seen:
            result = run(
                loaded.override(overrides_for(params)), train_days, executor, warm_days=warm_days
            )
            seen[key] = metrics(result, objective)
        figures = seen[key]
        records.append({"trial": trial.number, "params": params, **figures})
        say(
            f"{label} trial {trial.number + 1}/{trials}: "
            f"{objective} {figures['objective']:.2f} {params}"
        )
        return float(figures["objective"])

    # TPE after a random start (Optuna's 10 trials, at most half of them); one trial at a time:
    # the parallelism is the days inside a trial, and the order keeps the seed's sequence
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(1, min(10, trials // 2)))
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(trial_objective, n_trials=trials, n_jobs=1)
    return records


def _per_day(figures: dict[str, Any]) -> Decimal:
    days = figures["days"] or 1
    return (Decimal(figures["net_pnl"]) / days).quantize(Decimal("0.01"))


def summarize(out_windows: list[dict[str, Any]]) -> dict[str, Any]:
    """In-sample vs out-of-sample over all windows: net P&L per day of each, their ratio (the
    walk-forward efficiency; well below 1, or negative, is overfitting) and the out-of-sample
    total."""

    def total(side: str, key: str) -> Decimal:
        return sum((Decimal(str(w[side][key])) for w in out_windows), Decimal(0))

    is_days = sum(w["in_sample"]["days"] for w in out_windows) or 1
    oos_days = sum(w["out_of_sample"]["days"] for w in out_windows) or 1
    is_day = (total("in_sample", "net_pnl") / is_days).quantize(Decimal("0.01"))
    oos_day = (total("out_of_sample", "net_pnl") / oos_days).quantize(Decimal("0.01"))
    return {
        "windows": len(out_windows),
        "in_sample_daily_pnl": str(is_day),
        "out_of_sample_daily_pnl": str(oos_day),
        "efficiency": str((oos_day / is_day).quantize(Decimal("0.01"))) if is_day > 0 else None,
        "out_of_sample_net_pnl": str(total("out_of_sample", "net_pnl")),
        "out_of_sample_trades": int(total("out_of_sample", "trades")),
        "profitable_out_of_sample": sum(
            1 for w in out_windows if Decimal(w["out_of_sample"]["net_pnl"]) > 0
        ),
    }


# -- the backtest database -----------------------------------------------------------------------

SCHEMA = """
CREATE TABLE IF NOT EXISTS optimize_runs (
    id INTEGER PRIMARY KEY, created_ns INTEGER, config_hash TEXT, code_version TEXT, symbol TEXT,
    date_from TEXT, date_to TEXT, executor TEXT, objective TEXT, seed INTEGER, trials INTEGER,
    train_days INTEGER, test_days INTEGER, step_days INTEGER, space TEXT, summary TEXT
);
CREATE TABLE IF NOT EXISTS optimize_windows (
    run_id INTEGER, window INTEGER, train_from TEXT, train_to TEXT, test_from TEXT, test_to TEXT,
    best_trial INTEGER, best_params TEXT, in_sample_objective REAL, out_of_sample_objective REAL,
    in_sample TEXT, out_of_sample TEXT, PRIMARY KEY (run_id, window)
);
CREATE TABLE IF NOT EXISTS optimize_trials (
    run_id INTEGER, window INTEGER, trial INTEGER, params TEXT, objective REAL, metrics TEXT,
    PRIMARY KEY (run_id, window, trial)
);
"""


def save(path: str | Path, data: dict[str, Any], executor: str) -> int:
    """One walk-forward run in the backtest database's optimize_* tables; returns its id."""
    from .store import open_db

    db = open_db(path, SCHEMA)
    try:
        with db:
            cur = db.execute(
                "INSERT INTO optimize_runs (created_ns, config_hash, code_version, symbol,"
                " date_from, date_to, executor, objective, seed, trials, train_days, test_days,"
                " step_days, space, summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    time.time_ns(),
                    data["config_hash"],
                    data["code_version"],
                    data["symbol"],
                    data["from"],
                    data["to"],
                    executor,
                    data["objective"],
                    data["seed"],
                    data["trials"],
                    data["train"],
                    data["test"],
                    data["step"],
                    json.dumps(data["space"], sort_keys=True),
                    json.dumps(data["summary"], sort_keys=True),
                ),
            )
            run_id = int(cur.lastrowid or 0)
            for w in data["windows"]:
                db.execute(
                    "INSERT INTO optimize_windows VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        run_id,
                        w["window"],
                        *w["train"],
                        *w["test"],
                        w["best_trial"],
                        json.dumps(w["best_params"], sort_keys=True),
                        w["in_sample"]["objective"],
                        w["out_of_sample"]["objective"],
                        json.dumps(w["in_sample"], sort_keys=True),
                        json.dumps(w["out_of_sample"], sort_keys=True),
                    ),
                )
                db.executemany(
                    "INSERT INTO optimize_trials VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (
                            run_id,
                            w["window"],
                            t["trial"],
                            json.dumps(t["params"], sort_keys=True),
                            t["objective"],
                            json.dumps(
                                {k: v for k, v in t.items() if k not in ("trial", "params")},
                                sort_keys=True,
                            ),
                        )
                        for t in w["trials"]
                    ],
                )
        return run_id
    finally:
        db.close()


# -- reports -------------------------------------------------------------------------------------

COLUMNS = (
    ("net_pnl", "net P&L"),
    ("per_day", "per day"),
    ("profit_factor", "PF"),
    ("max_drawdown", "max DD"),
    ("trades", "trades"),
    ("objective", "objective"),
)


def _cell(figures: dict[str, Any], key: str) -> str:
    if key == "per_day":
        return str(_per_day(figures))
    value = figures[key]
    if value is None:
        return "-"
    if key == "objective":
        return f"{value:.2f}"
    return str(value)


def _params_lines(params: dict[str, Any]) -> list[str]:
    return [f"{path}={json.dumps(value)}" for path, value in params.items()]


def print_table(data: dict[str, Any], console: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title=f"walk-forward: {data['objective']}, in-sample vs out-of-sample")
    table.add_column("#", justify="right")
    table.add_column("train / test", no_wrap=True)
    table.add_column("best settings", overflow="fold", min_width=30)
    shown = [c for c in COLUMNS if c[0] in ("net_pnl", "profit_factor", "max_drawdown")]
    for side in ("IS", "OOS"):
        for _key, label in shown:
            table.add_column(f"{side} {label}", justify="right")
    for w in data["windows"]:
        table.add_row(
            str(w["window"]),
            f"{w['train'][0]}..{w['train'][1]}\n{w['test'][0]}..{w['test'][1]}",
            "\n".join(_params_lines(w["best_params"])),
            *(_cell(w["in_sample"], key) for key, _ in shown),
            *(_cell(w["out_of_sample"], key) for key, _ in shown),
        )
    console.print(table)
    s = data["summary"]
    console.print(
        f"net P&L per day: in-sample {s['in_sample_daily_pnl']}, out-of-sample "
        f"{s['out_of_sample_daily_pnl']} (efficiency {s['efficiency'] or '-'}); out-of-sample "
        f"total {s['out_of_sample_net_pnl']} over {s['out_of_sample_trades']} trades, "
        f"{s['profitable_out_of_sample']} of {s['windows']} windows profitable"
    )


def _chart(data: dict[str, Any]) -> str:
    """Net P&L per day, in-sample and out-of-sample bars side by side per window (SVG)."""
    from .report import figure_svg, pyplot

    plt = pyplot()
    names = [str(w["window"]) for w in data["windows"]]
    ins = [float(_per_day(w["in_sample"])) for w in data["windows"]]
    outs = [float(_per_day(w["out_of_sample"])) for w in data["windows"]]
    xs = range(len(names))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(names) + 2), 3.2))
    ax.bar([x - 0.2 for x in xs], ins, width=0.4, color="#2b6cb0", label="in-sample (train)")
    ax.bar([x + 0.2 for x in xs], outs, width=0.4, color="#dd6b20", label="out-of-sample (test)")
    ax.axhline(0, color="#1d2330", linewidth=0.8)
    ax.set_xticks(list(xs), names)
    ax.set_xlabel("window")
    ax.set_ylabel("net P&L per day ($)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return figure_svg(fig)


def html_report(data: dict[str, Any]) -> str:
    """One self-contained page: per window, the best settings and in-sample beside out-of-sample
    figures, and a bar chart of both."""
    esc = html.escape
    head = "".join(f"<th>{esc(label)}</th>" for _, label in COLUMNS)
    rows = []
    for w in data["windows"]:
        oos_class = "win" if Decimal(w["out_of_sample"]["net_pnl"]) > 0 else "loss"
        rows.append(
            f'<tr id="window-{w["window"]}"><td>{w["window"]}</td>'
            f'<td class="dates">train {esc(w["train"][0])} .. {esc(w["train"][1])}<br>'
            f"test {esc(w['test'][0])} .. {esc(w['test'][1])}</td>"
            f"<td>{'<br>'.join(esc(line) for line in _params_lines(w['best_params']))}</td>"
            + "".join(f'<td class="is">{esc(_cell(w["in_sample"], k))}</td>' for k, _ in COLUMNS)
            + "".join(
                f'<td class="oos {oos_class}">{esc(_cell(w["out_of_sample"], k))}</td>'
                for k, _ in COLUMNS
            )
            + "</tr>"
        )
    s = data["summary"]
    space = "".join(
        f"<li><code>{esc(path)}</code>: {esc(json.dumps(spec))}</li>"
        for path, spec in data["space"].items()
    )
    title = f"tradebot walk-forward {data['symbol']} {data['from']} to {data['to']}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; max-width: 1400px; color: #1d2330; }}
h1 {{ font-size: 1.4rem; }} .meta {{ color: #667; font-size: .85rem; }}
table {{ border-collapse: collapse; margin: 1rem 0; font-size: .85rem; }}
td.dates {{ white-space: nowrap; }} th:nth-child(-n+3) {{ text-align: left; }}
th, td {{ padding: .25rem .4rem; border-bottom: 1px solid #e2e6ee; text-align: right; }}
td:nth-child(-n+3) {{ text-align: left; }} td:nth-child(3) {{ font-size: .8rem; }}
td.is {{ background: #ebf4ff; }} td.oos {{ background: #fff5eb; }}
td.oos.loss:nth-child(10) {{ color: #c53030; font-weight: 600; }}
td.oos.win:nth-child(10) {{ color: #2f855a; font-weight: 600; }}
figure svg {{ width: 100%; max-width: 700px; height: auto; }}
</style></head><body>
<h1>{esc(title)}</h1>
<p class="meta">config {esc(data["config_hash"])} &middot; tradebot {esc(data["code_version"])}
&middot; objective {esc(data["objective"])} &middot; seed {data["seed"]} &middot;
{data["trials"]} trials per window &middot; train {data["train"]} / test {data["test"]} / step
{data["step"]} trading days</p>
<ul class="space">{space}</ul>
<section id="windows"><h2>in-sample vs out-of-sample per window</h2>
<table><thead>
<tr><th rowspan="2">#</th><th rowspan="2">train / test</th><th rowspan="2">best settings</th>
<th colspan="{len(COLUMNS)}">in-sample (train)</th>
<th colspan="{len(COLUMNS)}">out-of-sample (test)</th></tr>
<tr>{head}{head}</tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<p id="summary">Net P&amp;L per day: in-sample {esc(s["in_sample_daily_pnl"])}, out-of-sample
{esc(s["out_of_sample_daily_pnl"])} (walk-forward efficiency {esc(s["efficiency"] or "-")});
out-of-sample total {esc(s["out_of_sample_net_pnl"])} over {s["out_of_sample_trades"]} trades,
{s["profitable_out_of_sample"]} of {s["windows"]} windows profitable.</p></section>
<figure id="is-vs-oos"><figcaption>net P&amp;L per day, in-sample vs out-of-sample</figcaption>
{_chart(data)}</figure>
</body></html>
"""


# -- the command ---------------------------------------------------------------------------------


def _check_space(loaded: LoadedConfig, space: list[Param]) -> None:
    """Every parameter's extremes (or choices) applied once, so a wrong path fails before any
    backtest."""
    for p in space:
        values = p.choices or (p.low, p.high)
        for value in values:
            try:
                loaded.override(overrides_for({p.path: value}))
            except ConfigError as exc:
                raise click.BadParameter("; ".join(exc.problems), param_hint="--space") from None


@click.command(name="optimize")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--from", "start", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--to", "end", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option(
    "--space",
    "space_path",
    required=True,
    type=click.Path(dir_okay=False, exists=True),
    help="YAML: dotted config path -> {low, high[, step][, log]} or {choices: [...]}.",
)
@click.option("--train", default=10, show_default=True, help="Trading days tuned on per window.")
@click.option("--test", default=5, show_default=True, help="Trading days tested on after them.")
@click.option("--step", type=int, help="Trading days between windows (default: --test).")
@click.option("--trials", default=20, show_default=True, help="Optuna trials per window.")
@click.option("--seed", default=7, show_default=True, help="The TPE sampler's seed.")
@click.option(
    "--objective",
    type=click.Choice(list(OBJECTIVES)),
    default="score",
    show_default=True,
    help=OBJECTIVE_HELP,
)
@click.option("--symbol", help="Instrument (default: the config's symbol).")
@click.option("--workers", type=int, help="Worker processes (default: all cores).")
@click.option(
    "--executor",
    default="local",
    show_default=True,
    help="'local' (processes on this machine) or dask://HOST:PORT (a Dask cluster).",
)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Results (JSON).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), help="HTML report.")
@click.option(
    "--db",
    default="data/backtests.db",
    show_default=True,
    help="Backtest database (SQLite): tables optimize_runs, optimize_windows, optimize_trials.",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config key by its dotted path (repeatable).",
)
@click.option("-q", "--quiet", is_flag=True, help="No line per trial.")
def optimize(
    config: str,
    start: Any,
    end: Any,
    space_path: str,
    train: int,
    test: int,
    step: int | None,
    trials: int,
    seed: int,
    objective: str,
    symbol: str | None,
    workers: int | None,
    executor: str,
    json_path: str | None,
    report_path: str | None,
    db: str,
    overrides: tuple[str, ...],
    quiet: bool,
) -> None:
    """Walk-forward tuning of CONFIG's settings with Optuna: tune on --train days, test the best
    settings on the --test days after them, move on by --step days.

    \b
    tradebot optimize tradebot.yaml --from 2025-01-02 --to 2025-06-30 --space space.yaml \\
        --train 10 --test 5 --step 5 --trials 20 --seed 7 --report optimize.html
    space.yaml:  detectors.imbalance.ratio: {low: 2.0, high: 4.0, step: 0.25}
    Each trial's days run in parallel (--workers, or --executor dask://HOST:PORT); trials run
    one after another, so the same --seed gives the same result on any executor. The report
    puts in-sample and out-of-sample figures of each window side by side.
    """
    from tradebot_core.calendar import trading_days

    from .commands import _load, prepare_feed
    from .executors import make_executor

    if min(train, test, trials) < 1 or (step is not None and step < 1):
        raise click.UsageError("--train, --test, --step and --trials must be at least 1")
    space = load_space(space_path)
    loaded = _load(config, symbol, overrides)
    _check_space(loaded, space)
    days = list(trading_days(start.date(), end.date()))
    if not windows(days, train, test, step or test):
        raise click.UsageError(
            f"{len(days)} trading days from {start.date()} to {end.date()} hold no window of "
            f"--train {train} + --test {test} days"
        )
    prepare_feed(loaded, days)
    pool = make_executor(executor, workers)
    say = None if quiet else (lambda text: click.echo(text, err=True))
    try:
        data = walk_forward(
            loaded,
            days,
            space,
            pool,
            train=train,
            test=test,
            step=step or test,
            trials=trials,
            seed=seed,
            objective=objective,
            progress=say,
        )
    finally:
        pool.close()
    print_table(data)
    run_id = save(db, data, executor)
    click.echo(f"saved: {db} (optimize run {run_id})")
    if json_path:
        Path(json_path).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    if report_path:
        Path(report_path).write_text(html_report(data))
        click.echo(f"report: {report_path}")
