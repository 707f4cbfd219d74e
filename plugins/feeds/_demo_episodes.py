"""Episodes of the demo feed: order-flow stories written over the random flow.

Each episode overwrites a run of trades (their quote moves, aggressor sides and sizes):

``burst``
    one-sided aggression lifting (or hitting) level after level: stacked imbalances.
``absorption``
    a push into a level, then heavy aggression at that level which does not move it (passive
    orders absorb it), then a reversal away from it.
``exhaustion``
    a push whose last trades thin to single lots at the extreme, then a reversal.
``divergence``
    a push to a new extreme made against the aggressors (sellers on the way up): delta
    divergence.

Trend phases end with an exhaustion, a divergence or an absorption in their direction (the late
push that fails); bursts run in the direction of trends and either way in volatile phases; a few
more of each kind land anywhere. Episode lengths scale with the trade count, so a 750,000-trade
session shows the same stories as a 120,000-trade one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("burst", "absorption", "exhaustion", "divergence")
REFERENCE_TRADES = 120_000
"""Episode lengths below are for a session of this many trades; they scale with the count."""
BURST_TRADES = (60, 160)
ABSORPTION_TRADES = (80, 240)
EXHAUSTION_TRADES = (60, 150)
DIVERGENCE_TRADES = (80, 200)
BURSTS_PER_PHASE = 2
EXTRA_PER_KIND = 4
"""Episodes of each kind placed anywhere in a 6.5-hour session (fewer in a shorter one)."""


@dataclass(slots=True)
class Flow:
    """The per-trade arrays episodes write into (in place)."""

    moves: np.ndarray  # quote move after the trade, in ticks
    side: np.ndarray  # aggressor, +1 / -1
    size: np.ndarray  # lots


@dataclass(frozen=True, slots=True)
class Episode:
    """An episode placed in a session: ``[start, stop)`` in trade indices."""

    kind: str
    start: int
    stop: int
    sign: int  # +1: the push goes up (or buyers are the aggressors absorbed)


def place_episodes(
    rng: np.random.Generator,
    flow: Flow,
    phase: np.ndarray,
    trend_phases: tuple[int, int],
    volatile_phase: int,
    extra_per_kind: int = EXTRA_PER_KIND,
) -> list[Episode]:
    """Write the session's episodes into ``flow``; return them in the order written.

    ``extra_per_kind`` episodes of each kind land anywhere, besides those the phases place.
    """
    trades = len(flow.side)
    scale = float(np.clip(trades / REFERENCE_TRADES, 0.25, 8.0))
    up, down = trend_phases
    episodes: list[Episode] = []
    cuts = np.flatnonzero(np.diff(phase)) + 1
    starts = np.concatenate(([0], cuts)).tolist()
    ends = np.concatenate((cuts, [trades])).tolist()
    for kind, start, end in zip(phase[starts].tolist(), starts, ends, strict=True):
        if kind in (up, down):
            sign = 1 if kind == up else -1
            for _ in range(BURSTS_PER_PHASE):
                episodes.append(_write(rng, flow, "burst", start, end, sign, scale, at="inside"))
            ending = str(rng.choice(["exhaustion", "divergence", "absorption"]))
            episodes.append(_write(rng, flow, ending, start, end, sign, scale, at="end"))
        elif kind == volatile_phase:
            for _ in range(BURSTS_PER_PHASE):
                sign = int(rng.choice([-1, 1]))
                episodes.append(_write(rng, flow, "burst", start, end, sign, scale, at="inside"))
    for kind in KINDS:
        for _ in range(extra_per_kind):
            sign = int(rng.choice([-1, 1]))
            episodes.append(_write(rng, flow, kind, 0, trades, sign, scale, at="inside"))
    return [episode for episode in episodes if episode.stop > episode.start]


def _write(
    rng: np.random.Generator,
    flow: Flow,
    kind: str,
    start: int,
    end: int,
    sign: int,
    scale: float,
    at: str,
) -> Episode:
    """Place one episode of ``kind`` inside ``[start, end)`` (at its end, or anywhere)."""
    lengths = {
        "burst": BURST_TRADES,
        "absorption": ABSORPTION_TRADES,
        "exhaustion": EXHAUSTION_TRADES,
        "divergence": DIVERGENCE_TRADES,
    }[kind]
    length = max(8, int(rng.integers(*lengths) * scale))
    total = _span_of(kind, length)
    room = end - start
    if room < 2 * total:  # a phase too short for this story: skip it
        return Episode(kind, start, start, sign)
    first = end - total if at == "end" else start + int(rng.integers(0, room - total))
    _WRITERS[kind](rng, flow, first, length, sign)
    return Episode(kind, first, first + total, sign)


def _span_of(kind: str, length: int) -> int:
    """Trades an episode of core ``length`` overwrites, lead-in and reversal included."""
    if kind == "absorption":
        return length // 3 + length + length // 2
    if kind == "exhaustion":
        return length + length // 2
    return length


def _push(
    rng: np.random.Generator,
    flow: Flow,
    at: int,
    length: int,
    sign: int,
    levels: int,
    with_aggressors: float,
) -> None:
    """``length`` trades that move the quote ``levels`` ticks (about) the way of ``sign``.

    ``with_aggressors`` is the share of the trades whose aggressor side is ``sign``.
    """
    if length <= 0:
        return
    part = slice(at, at + length)
    chance = min(0.5, levels / length)
    flow.moves[part] = np.where(rng.random(length) < chance, sign, 0)
    flow.side[part] = np.where(rng.random(length) < with_aggressors, sign, -sign)


def _burst(rng: np.random.Generator, flow: Flow, at: int, length: int, sign: int) -> None:
    _push(rng, flow, at, length, sign, int(rng.integers(4, 9)), with_aggressors=0.95)
    flow.size[at : at + length] = rng.integers(3, 16, length)


def _absorption(rng: np.random.Generator, flow: Flow, at: int, length: int, sign: int) -> None:
    lead = length // 3
    _push(rng, flow, at, lead, sign, int(rng.integers(4, 7)), with_aggressors=0.75)
    hold = slice(at + lead, at + lead + length)
    flow.moves[hold] = 0  # the level does not give
    flow.side[hold] = np.where(rng.random(length) < 0.85, sign, -sign)
    flow.size[hold] = rng.integers(5, 31, length)
    turn = at + lead + length
    _push(rng, flow, turn, length // 2, -sign, int(rng.integers(5, 9)), with_aggressors=0.8)


def _exhaustion(rng: np.random.Generator, flow: Flow, at: int, length: int, sign: int) -> None:
    _push(rng, flow, at, length, sign, int(rng.integers(6, 11)), with_aggressors=0.85)
    tail = max(4, length // 4)
    thin = slice(at + length - tail, at + length)
    flow.size[thin] = 1  # the push runs out of buyers (sellers): single lots at the extreme
    flow.moves[thin] = np.where(rng.random(tail) < 0.3, sign, 0)
    _push(rng, flow, at + length, length // 2, -sign, int(rng.integers(5, 9)), 0.8)


def _divergence(rng: np.random.Generator, flow: Flow, at: int, length: int, sign: int) -> None:
    # passive buyers step their bids up while aggressive sellers hit them: a new high on
    # negative delta (the mirror for a new low)
    _push(rng, flow, at, length, sign, int(rng.integers(5, 10)), with_aggressors=0.25)
    flow.size[at : at + length] = rng.integers(2, 11, length)


_WRITERS = {
    "burst": _burst,
    "absorption": _absorption,
    "exhaustion": _exhaustion,
    "divergence": _divergence,
}
