#!/usr/bin/env bash
# Install everything the tests need (Python packages, a headless Chromium for the dashboard
# test) and run the whole suite on all cores. Used by the README and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check -e ".[test]"

# The dashboard's browser test drives Debian's Chromium (Playwright cannot download its own here).
if ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing chromium for the browser tests..."
    (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium) >/dev/null \
      || echo "warning: chromium could not be installed; browser tests will be skipped"
  else
    echo "warning: chromium is not installed; browser tests will be skipped"
  fi
fi

exec python3 -m pytest -n "${TRADEBOT_TEST_WORKERS:-auto}" "$@"
