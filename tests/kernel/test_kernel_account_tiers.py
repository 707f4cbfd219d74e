"""Account tiers: the default capital plan, hysteresis on the way down, YAML ladders, validation."""

from __future__ import annotations

import textwrap
from decimal import Decimal

import pytest

from tradebot_core.account import Account
from tradebot_core.config import AccountSettings, ConfigError, load_config

D = Decimal


def write(tmp_path, text):
    path = tmp_path / "tradebot.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def problems(path):
    with pytest.raises(ConfigError) as error:
        load_config(path)
    return error.value.problems


def walk(account, balances):
    """Book trades that move the balance to each of ``balances``; the tier name after each."""
    names = []
    for balance in balances:
        account.book(D(balance) - account.balance)
        names.append(account.tier.name)
    return names


def test_the_default_ladder_is_the_capital_plan_at_its_thresholds():
    account = Account(AccountSettings(), "MES")
    assert account.balance == D("2500")
    assert account.tier.name == "MES building" and account.symbol == "MES"
    expected = {
        "0": ("MES building", "MES", 1),
        "2500": ("MES building", "MES", 1),
        "3499.99": ("MES building", "MES", 1),
        "3500": ("ES entry", "ES", 1),
        "4999.99": ("ES entry", "ES", 1),
        "5000": ("ES growth", "ES", 1),
        "7500": ("ES scaling", "ES", 2),
        "9999.99": ("ES scaling", "ES", 2),
        "10000": ("ES full", "ES", 3),
        "250000": ("ES full", "ES", 3),
    }
    for balance, (name, symbol, most) in expected.items():
        tier = account.tier_for(D(balance))
        assert (tier.name, tier.symbol, tier.max_contracts) == (name, symbol, most), balance
    # default buffers: half the width below each tier
    floors = [account.demote_below(t) for t in account.tiers]
    assert floors == [None, D("2750"), D("4250"), D("6250"), D("8750")]


def test_promotion_walks_up_the_ladder_one_threshold_at_a_time():
    account = Account(AccountSettings(), "MES")
    assert walk(account, ["3499", "3500", "5000", "7500", "10000"]) == [
        "MES building",
        "ES entry",
        "ES growth",
        "ES scaling",
        "ES full",
    ]


def test_a_balance_wobbling_around_3500_keeps_its_tier():
    account = Account(AccountSettings(), "MES")
    change = account.book(D("1000"))  # 2,500 -> 3,500: promoted once
    assert change is not None and change.promoted and change.new.name == "ES entry"
    assert account.symbol == "ES"
    changes = []
    for balance in ["3400", "3600", "3300", "3499", "2750", "3510", "3000"]:
        changes.append(account.book(D(balance) - account.balance))
        assert account.tier.name == "ES entry", balance
    assert changes == [None] * 7


def test_a_real_drawdown_below_the_buffer_demotes():
    account = Account(AccountSettings(), "MES")
    account.book(D("1000"))
    change = account.book(D("2749.99") - account.balance)  # below 3,500 - 750
    assert change is not None and not change.promoted
    assert (change.old.name, change.new.name) == ("ES entry", "MES building")
    assert account.symbol == "MES" and account.max_contracts == 1
    # promotion stays at the plain threshold
    assert walk(account, ["3499.99", "3500"]) == ["MES building", "ES entry"]


def test_a_large_loss_demotes_tier_by_tier_with_each_buffer():
    account = Account(AccountSettings(), "MES", balance=D("10000"))
    assert account.tier.name == "ES full"
    assert walk(account, ["8800"]) == ["ES full"]  # above 10,000 - 1,250
    # one loss to 4,300: below ES full's and ES scaling's floors, above ES growth's (4,250)
    assert walk(account, ["4300"]) == ["ES growth"]
    assert walk(account, ["4249"]) == ["ES entry"]


def test_start_and_restore_use_plain_thresholds():
    settings = AccountSettings()
    assert Account(settings, "MES", balance=D("3400")).tier.name == "MES building"
    assert Account(settings, "MES", balance=D("3500")).tier.name == "ES entry"
    # an account that would hold ES entry at 3,400 with history, restored: plain
    account = Account(settings, "MES", balance=D("3500"))
    account.book(D("-100"))
    assert account.tier.name == "ES entry"
    assert account.tier_for(account.balance).name == "MES building"
    path = account.tiers_along(D("3400"), [D("200"), D("-300"), D("-700")])
    assert [t.name for t in path] == ["MES building", "ES entry", "ES entry", "MES building"]


def test_the_default_plan_applies_to_mes_and_es_only():
    assert Account(AccountSettings(), "ES").symbol == "MES"
    assert Account(AccountSettings(), "ESZ5").tier.name == "MES building"
    for other in ("NQ", "CL", "SPY"):
        account = Account(AccountSettings(), other)
        assert account.tier is None and account.symbol == other and account.max_contracts is None


def test_an_empty_list_means_no_tiers(tmp_path):
    loaded = load_config(write(tmp_path, "symbol: MES\naccount: {tiers: []}\n"))
    account = Account(loaded.config.account, loaded.config.symbol)
    assert account.tiers == [] and account.tier is None
    assert account.book(D("5000")) is None
    assert account.symbol == "MES" and account.max_contracts is None


def test_the_default_config_and_tradebot_yaml_get_the_plan():
    for loaded in (load_config(None), load_config("tradebot.yaml")):
        cfg = loaded.config
        account = Account(cfg.account, cfg.symbol)
        assert account.tiers[0].name == "MES building"
        assert account.balance == D("2500") and account.symbol == "MES"


def test_a_custom_ladder_from_yaml_in_any_order_with_a_buffer(tmp_path):
    path = write(
        tmp_path,
        """\
        symbol: NQ
        account:
          starting_balance: 4000
          demote_buffer: 100
          tiers:
            - {name: big, min_balance: 6000, symbol: NQ, max_contracts: 2}
            - {name: micro, min_balance: 0, symbol: MNQ, max_contracts: 3}
            - {name: mini, min_balance: 5000, symbol: NQ}
        """,
    )
    cfg = load_config(path).config
    assert [t.name for t in cfg.account.tiers] == ["micro", "mini", "big"]
    account = Account(cfg.account, cfg.symbol)
    assert account.tier.name == "micro" and account.symbol == "MNQ" and account.max_contracts == 3
    assert walk(account, ["5000", "4901", "6000", "5900", "5899", "4899"]) == [
        "mini",
        "mini",
        "big",
        "big",
        "mini",
        "micro",
    ]


def test_a_custom_ladder_with_the_default_buffer(tmp_path):
    path = write(
        tmp_path,
        """\
        account:
          tiers:
            - {name: micro, min_balance: 0, symbol: MES}
            - {name: mini, min_balance: 3000, symbol: ES}
        """,
    )
    account = Account(load_config(path).config.account, "MES")
    assert account.demote_below(account.tiers[1]) == D("1500")
    assert walk(account, ["3000", "1500", "1499"]) == ["mini", "mini", "micro"]


def test_a_zero_buffer_makes_demotion_symmetric(tmp_path):
    path = write(tmp_path, "account: {demote_buffer: 0}\n")
    account = Account(load_config(path).config.account, "MES")
    assert walk(account, ["3500", "3499.99", "5000", "4999"]) == [
        "ES entry",
        "MES building",
        "ES growth",
        "ES entry",
    ]


def test_duplicate_min_balance_is_an_error_naming_the_key(tmp_path):
    path = write(
        tmp_path,
        """\
        account:
          tiers:
            - {name: a, min_balance: 3500, symbol: ES}
            - {name: b, min_balance: 0, symbol: MES}
            - {name: c, min_balance: 3500, symbol: ES, max_contracts: 2}
        """,
    )
    found = problems(path)
    assert len(found) == 1
    assert found[0].startswith("tradebot.yaml:2: account.tiers: ")
    assert "'a' and 'c' have the same min_balance 3500" in found[0]


def test_a_negative_buffer_is_an_error_naming_the_key(tmp_path):
    path = write(tmp_path, "account:\n  demote_buffer: -50\n")
    assert problems(path) == ["tradebot.yaml:2: account.demote_buffer: must be >= 0 (got -50)"]


def test_a_bad_tier_names_its_index_and_key(tmp_path):
    path = write(
        tmp_path,
        """\
        account:
          tiers:
            - {name: micro, min_balance: 0, symbol: MES}
            - {name: mini, min_balance: 3500, symbol: ES, max_contracts: 0}
        """,
    )
    found = problems(path)
    assert found == ["tradebot.yaml:4: account.tiers.1.max_contracts: must be >= 1 (got 0)"]
