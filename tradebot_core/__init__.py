"""tradebot's kernel: hook specs, domain types, config, the plugin manager and the pipeline.

The kernel imports no vendor SDK and no built-in plugin; every concrete component lives under
``plugins/`` and arrives through the ``tradebot`` entry-point group.
"""

import pluggy

__version__ = "0.1.0"

PROJECT_NAME = "tradebot"
"""The entry-point group, the pluggy project name and the command."""
DISTRIBUTION_NAME = "tradebot-orderflow"
"""What ``pip install`` calls it (``tradebot`` on PyPI is another project)."""
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = ["DISTRIBUTION_NAME", "PROJECT_NAME", "__version__", "hookimpl"]
