#!/usr/bin/env bash
# Install everything the tests need (Python packages, a headless Chromium for the browser
# tests), check lint and formatting, and run the whole suite on all cores. Used by the README
# and by .ci/run. With CI=true a browser that cannot be installed is an error, and the browser
# tests fail instead of skipping (TRADEBOT_REQUIRE_BROWSER=1).
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check -e ".[test]"

# Lint and formatting first: a failure here fails the script before any test runs.
echo "ruff check ."
python3 -m ruff check .
echo "ruff format --check ."
python3 -m ruff format --check .
echo "mypy" && python3 -m mypy  # type-checks tradebot_core ([tool.mypy] in pyproject.toml)

ci=false
if [ "${CI:-}" = true ]; then
  ci=true
  export TRADEBOT_REQUIRE_BROWSER=1
fi

no_browser() {
  if [ "$ci" = true ]; then
    echo "error: $1; CI=true requires the browser tests (TRADEBOT_REQUIRE_BROWSER=1)" >&2
    exit 1
  fi
  echo "warning: $1; browser tests will be skipped" >&2
}

have_chromium() {
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1
}

# Debian packages the tests use: Chromium for the browser tests (Playwright cannot download its
# own here), systemd-analyze to verify the units and shellcheck for the deploy script.
missing=()
have_chromium || missing+=(chromium)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
if [ "${#missing[@]}" -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing ${missing[*]} for the tests..."
    (apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}") \
      >/dev/null || true
  fi
fi
have_chromium || no_browser "chromium is not installed (apt-get install chromium, as root)"

exec python3 -m pytest -n "${TRADEBOT_TEST_WORKERS:-auto}" "$@"
