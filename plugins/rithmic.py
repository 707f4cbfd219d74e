"""The ``rithmic`` plugin: Rithmic's market data and order routing, one name for both.

``feed: {plugin: rithmic}`` streams last trades (:mod:`tradebot_plugins.feeds.rithmic_feed`),
``broker: {plugin: rithmic}`` routes bracket orders
(:mod:`tradebot_plugins.brokers.rithmic_broker`).
Neither imports the ``async-rithmic`` client until it is built.
"""

from __future__ import annotations

from typing import Any

from tradebot_core import hookimpl


@hookimpl
def register_feeds(register: Any) -> None:
    from .feeds.rithmic_feed import RithmicFeed

    register(RithmicFeed)


@hookimpl
def register_brokers(register: Any) -> None:
    from .brokers.rithmic_broker import RithmicBroker

    register(RithmicBroker)
