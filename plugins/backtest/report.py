"""Backtest reports: tables in the terminal, and one self-contained HTML file with the plots.

The HTML embeds its plots as inline SVG (drawn by matplotlib) and its style in a <style> tag: it
opens offline, from an email attachment, anywhere.
"""

from __future__ import annotations

import html
import io
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

from . import stats


def summary_data(result: Any, stress: dict[str, Any] | None = None) -> dict[str, Any]:
    data = {
        "overall": stats.overall(result),
        "monthly": stats.monthly(result),
        "patterns": stats.per_pattern(result),
        "tiers": stats.tier_progression(result),
    }
    if stress:
        data["stress"] = stress
    return data


# -- terminal ------------------------------------------------------------------------------------

OVERALL = (
    ("start_balance", "start balance"),
    ("final_balance", "final balance"),
    ("net_pnl", "net P&L"),
    ("profit_factor", "profit factor"),
    ("trades", "trades"),
    ("win_rate", "win rate"),
    ("winning_days", "winning days"),
    ("trading_days", "days traded"),
    ("average_daily_pnl", "average daily P&L"),
    ("max_drawdown", "max drawdown"),
    ("max_consecutive_losses", "max consecutive losses"),
)
TIER_COLUMNS = ("day", "from", "to", "symbol", "balance")


def print_report(data: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    overall = data["overall"]
    table = Table(title="backtest", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for key, label in OVERALL:
        table.add_row(label, _fmt(key, overall.get(key)))
    console.print(table)
    for title, key in (("monthly", "monthly"), ("per pattern", "patterns")):
        console.print(_group_table(title, data[key]))
    if data["tiers"]:
        tiers = Table(title="tier progression")
        for column in TIER_COLUMNS:
            tiers.add_column(column)
        for row in data["tiers"]:
            tiers.add_row(*(str(row[c] or "-") for c in TIER_COLUMNS))
        console.print(tiers)
    stress = data.get("stress") or {}
    for title in ("by hour", "by weekday"):
        if title in stress:
            console.print(_group_table(title, stress[title]))
    if "slippage" in stress:
        slip = Table(title="slippage")
        for column in ("more ticks", "slippage ticks", "net P&L", "final balance", "profit factor"):
            slip.add_column(column, justify="right")
        for ticks, row in stress["slippage"].items():
            slip.add_row(
                f"+{ticks}",
                str(row.get("slippage_ticks", "-")),
                row["net_pnl"],
                row["final_balance"],
                str(row["profit_factor"] or "-"),
            )
        console.print(slip)
    if "monte_carlo" in stress and stress["monte_carlo"].get("trades"):
        mc = stress["monte_carlo"]
        table = Table(title=f"Monte Carlo ({mc['runs']} runs, seed {mc['seed']})")
        table.add_column("")
        for p in ("p5", "p25", "p50", "p75", "p95"):
            table.add_column(p, justify="right")
        for mode in ("reshuffled", "resampled"):
            for what in ("final_balance", "max_drawdown"):
                table.add_row(f"{mode} {what.replace('_', ' ')}", *mc[mode][what].values())
        console.print(table)
        for mode in ("reshuffled", "resampled"):
            console.print(f"{mode}: {_mc_probabilities(mc[mode])}")
    if data.get("checks"):
        checks = Table(title="checks (thresholds: --min-profit-factor, --max-drawdown, ...)")
        for column in ("check", "value", "threshold", "result"):
            checks.add_column(column, justify="left" if column == "check" else "right")
        for row in data["checks"]:
            style = "green" if row["result"] == "PASS" else "bold red"
            checks.add_row(
                row["check"], row["value"], row["threshold"], f"[{style}]{row['result']}[/]"
            )
        console.print(checks)
        failed = sum(1 for row in data["checks"] if row["result"] != "PASS")
        total = len(data["checks"])
        console.print(
            f"{total - failed} of {total} checks PASS" + (f", {failed} FAIL" if failed else "")
        )


def _mc_probabilities(mode: dict[str, Any]) -> str:
    text = f"P(final balance < start) {mode['probability_of_loss']:.1%}"
    if "probability_of_ruin" in mode:
        text += f", P(ruin) {mode['probability_of_ruin']:.1%}"
    return text


def _group_table(title: str, groups: dict[str, dict[str, Any]]) -> Table:
    table = Table(title=title)
    for column in ("", "trades", "win %", "net P&L", "profit factor"):
        table.add_column(column, justify="right" if column else "left")
    for name, row in groups.items():
        table.add_row(
            name,
            str(row["trades"]),
            _fmt("win_rate", row["win_rate"]),
            row["net_pnl"],
            str(row["profit_factor"] or "-"),
        )
    return table


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key == "win_rate":
        return f"{value:.1%}"
    return str(value)


# -- HTML ----------------------------------------------------------------------------------------


def html_report(result: Any, data: dict[str, Any]) -> str:
    """A self-contained HTML report with equity, drawdown, daily P&L and per-pattern plots."""
    plots = _plots(result, data)
    overall = data["overall"]
    cards = "".join(
        f'<div class="card"><div class="label">{html.escape(label)}</div>'
        f'<div class="value">{html.escape(_fmt(key, overall.get(key)))}</div></div>'
        for key, label in (
            ("net_pnl", "net P&L"),
            ("final_balance", "final balance"),
            ("profit_factor", "profit factor"),
            ("win_rate", "win rate"),
            ("trades", "trades"),
            ("max_drawdown", "max drawdown"),
            ("winning_days", "winning days"),
            ("max_consecutive_losses", "max losing streak"),
        )
    )
    sections = [
        f'<figure id="{fid}" class="plot"><figcaption>{title}</figcaption>{svg}</figure>'
        for fid, title, svg in plots
    ]
    tables = [
        _rows_table(
            "overall",
            "overall",
            ("", ""),
            [(label, _fmt(key, overall.get(key))) for key, label in OVERALL],
        ),
        _rows_table(
            "tiers",
            "tier progression",
            TIER_COLUMNS,
            [tuple(str(row[c] or "-") for c in TIER_COLUMNS) for row in data["tiers"]],
            empty="no tier change",
        ),
        _html_table("monthly", "monthly", data["monthly"]),
        _html_table("patterns", "per pattern", data["patterns"]),
    ]
    tables.extend(_html_stress(data))
    title = f"tradebot backtest {result.symbol} {result.start} to {result.end}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #1d2330; }}
h1 {{ font-size: 1.4rem; }} .meta {{ color: #667; font-size: .85rem; }}
.cards {{ display: grid; grid-template-columns: repeat(4, 1fr); gap: .75rem; margin: 1rem 0; }}
.card {{ background: #f4f6fa; border-radius: 8px; padding: .75rem 1rem; }}
.label {{ color: #667; font-size: .8rem; }} .value {{ font-size: 1.3rem; font-weight: 600; }}
figure.plot {{ margin: 1.5rem 0; }} figure.plot svg {{ width: 100%; height: auto; }}
figcaption {{ font-weight: 600; margin-bottom: .25rem; }}
table {{ border-collapse: collapse; margin: 1rem 0; min-width: 50%; }}
th, td {{ padding: .3rem .8rem; border-bottom: 1px solid #e2e6ee; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
tr.pass td:last-child {{ color: #2f855a; font-weight: 600; }}
tr.fail td:last-child {{ color: #c53030; font-weight: 600; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="meta">config {result.config_hash} &middot; tradebot {result.code_version} &middot;
{len(result.days)} days &middot; {result.ticks:,} ticks</p>
<div class="cards">{cards}</div>
{"".join(sections)}
{"".join(tables)}
</body></html>
"""


def _html_stress(data: dict[str, Any]) -> list[str]:
    stress = data.get("stress") or {}
    tables = []
    if stress.get("slippage"):
        tables.append(
            _rows_table(
                "slippage",
                "slippage (the days again, with more slippage)",
                (
                    "more ticks",
                    "slippage ticks",
                    "trades",
                    "net P&L",
                    "final balance",
                    "profit factor",
                ),
                [
                    (
                        f"+{ticks}",
                        str(row.get("slippage_ticks", "-")),
                        str(row["trades"]),
                        row["net_pnl"],
                        row["final_balance"],
                        str(row["profit_factor"] or "-"),
                    )
                    for ticks, row in stress["slippage"].items()
                ],
            )
        )
    for key, title in (("by hour", "by hour of entry (ET)"), ("by weekday", "by weekday")):
        if key in stress:
            tables.append(_html_table(key.replace(" ", "-"), title, stress[key]))
    mc = stress.get("monte_carlo") or {}
    if mc.get("trades"):
        rows = [
            (f"{mode} {what.replace('_', ' ')}", *mc[mode][what].values())
            for mode in ("reshuffled", "resampled")
            for what in ("final_balance", "max_drawdown")
        ]
        rows += [
            (mode, _mc_probabilities(mc[mode]), "", "", "", "")
            for mode in ("reshuffled", "resampled")
        ]
        tables.append(
            _rows_table(
                "monte-carlo",
                f"Monte Carlo ({mc['runs']} runs, seed {mc['seed']})",
                ("", "p5", "p25", "p50", "p75", "p95"),
                rows,
            )
        )
    if data.get("checks"):
        tables.append(
            _rows_table(
                "checks",
                "checks",
                ("check", "value", "threshold", "result"),
                [(r["check"], r["value"], r["threshold"], r["result"]) for r in data["checks"]],
                classes=[r["result"].lower() for r in data["checks"]],
            )
        )
    return tables


def _rows_table(
    table_id: str,
    title: str,
    columns: tuple[str, ...],
    rows: list[tuple[str, ...]],
    empty: str = "",
    classes: list[str] | None = None,
) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        (f'<tr class="{classes[i]}">' if classes else "<tr>")
        + "".join(f"<td>{html.escape(str(v))}</td>" for v in row)
        + "</tr>"
        for i, row in enumerate(rows)
    )
    if not rows and empty:
        body = f'<tr><td colspan="{len(columns)}">{html.escape(empty)}</td></tr>'
    return (
        f'<section id="{table_id}"><h2>{html.escape(title)}</h2><table><thead><tr>{head}</tr>'
        f"</thead><tbody>{body}</tbody></table></section>"
    )


def _html_table(table_id: str, title: str, groups: dict[str, dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{row['trades']}</td>"
        f"<td>{_fmt('win_rate', row['win_rate'])}</td><td>{row['net_pnl']}</td>"
        f"<td>{row['profit_factor'] or '-'}</td></tr>"
        for name, row in groups.items()
    )
    return (
        f'<section id="{table_id}"><h2>{html.escape(title)}</h2><table><thead><tr><th></th>'
        "<th>trades</th><th>win %</th><th>net P&amp;L</th><th>profit factor</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )


def pyplot() -> Any:
    """matplotlib's pyplot, headless, with stable SVG ids (the same results give the same
    file)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "tradebot"
    return plt


def _plots(result: Any, data: dict[str, Any]) -> list[tuple[str, str, str]]:
    plt = pyplot()
    nets = [Decimal(t["net_pnl"]) for t in result.trades]
    _, curve = stats.drawdown(result.starting_balance, nets)
    balances = [float(result.starting_balance), *(float(b) for b in curve)]
    peaks = [max(balances[: i + 1]) for i in range(len(balances))]
    days = result.days
    plots = []

    fig, ax = plt.subplots(figsize=(10, 3.2))
    ax.plot(range(len(balances)), balances, color="#2b6cb0", linewidth=1.5)
    ax.set_xlabel("trade")
    ax.set_ylabel("balance ($)")
    ax.grid(alpha=0.3)
    plots.append(("equity-curve", "equity curve", figure_svg(fig)))

    fig, ax = plt.subplots(figsize=(10, 2.4))
    under = [b - p for b, p in zip(balances, peaks, strict=True)]
    ax.fill_between(range(len(under)), under, 0, color="#c53030", alpha=0.5)
    ax.set_xlabel("trade")
    ax.set_ylabel("drawdown ($)")
    ax.grid(alpha=0.3)
    plots.append(("drawdown", "drawdown", figure_svg(fig)))

    fig, ax = plt.subplots(figsize=(10, 2.8))
    day_pnl = [float(d["net_pnl"]) for d in days]
    colors = ["#2f855a" if v >= 0 else "#c53030" for v in day_pnl]
    ax.bar(range(len(day_pnl)), day_pnl, color=colors)
    ax.set_xticks(range(len(days)), [d["day"][5:] for d in days], rotation=90, fontsize=7)
    ax.set_ylabel("net P&L ($)")
    ax.grid(axis="y", alpha=0.3)
    plots.append(("daily-pnl", "daily P&L", figure_svg(fig)))

    patterns = data["patterns"]
    fig, ax = plt.subplots(figsize=(10, 0.4 * max(3, len(patterns)) + 0.8))
    names = list(patterns)
    values = [float(patterns[n]["net_pnl"]) for n in names]
    ax.barh(names, values, color=["#2f855a" if v >= 0 else "#c53030" for v in values])
    ax.set_xlabel("net P&L ($)")
    ax.grid(axis="x", alpha=0.3)
    plots.append(("patterns-plot", "net P&L per pattern", figure_svg(fig)))
    return plots


def figure_svg(fig: Any) -> str:
    """``fig`` as inline SVG (closed afterwards)."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]
