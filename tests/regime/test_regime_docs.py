"""docs/regime.md and docs/router.md: their YAML examples validate and every setting is listed."""

from __future__ import annotations

import re

import pytest
import yaml
from tradebot_plugins.regime.adx_regime import AdxRegimeSettings
from tradebot_plugins.routers.regime_router import RegimeRouterSettings


@pytest.mark.parametrize(
    ("page", "section", "model"),
    [
        ("regime.md", ("regime", "adx"), AdxRegimeSettings),
        ("router.md", ("router", "regime"), RegimeRouterSettings),
    ],
)
def test_docs_examples_validate_and_list_every_setting(repo_root, page, section, model):
    text = (repo_root / "docs" / page).read_text()
    examples = re.findall(r"```yaml\n(.*?)```", text, re.S)
    assert examples, f"{page} has no YAML example"
    for example in examples:
        raw = yaml.safe_load(example)
        assert raw[section[0]]["plugin"] == section[1]
        settings = model.model_validate(raw[section[0]][section[1]])
        assert settings != model()  # the example changes something
    for name in model.model_fields:
        assert f"`{name}`" in text, f"{page} does not list the setting {name}"
