"""Every hook is documented for plugin authors (as datasette's test_docs does)."""

from __future__ import annotations

import inspect

from tradebot_core import hookspecs


def hook_names() -> list[str]:
    return [
        name
        for name, obj in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(obj, "tradebot_spec")
    ]


def test_every_hook_has_a_docstring_and_a_row_in_docs_plugins(repo_root):
    names = hook_names()
    assert len(names) >= 10
    page = (repo_root / "docs" / "plugins.md").read_text()
    for name in names:
        assert (getattr(hookspecs, name).__doc__ or "").strip(), name
        assert f"`{name}`" in page, f"docs/plugins.md does not document {name}"
