"""deploy/deploy_headless.sh and the systemd units it installs.

The script is run for real into a throwaway root (``--root``): a venv with the project in it,
the config, ``.env`` and both units; a second run must change nothing. The units are checked by
``systemd-analyze verify`` (on a copy whose ExecStart is a fake executable), which must be
there under CI=true (scripts/test.sh installs systemd with apt).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = "deploy/deploy_headless.sh"
UNITS = ("tradebot.service", "tradebot-watchdog.service")
APP = "opt/tradebot"

# Offline and quick: the venv sees this interpreter's packages (pip, setuptools, the
# dependencies), so only the project itself is built and installed.
FAST_INSTALL = {
    "PYTHON": sys.executable,
    "TRADEBOT_VENV_ARGS": "--system-site-packages --without-pip",
    "TRADEBOT_PIP_ARGS": "--no-build-isolation --no-deps",
}


def checkout_copy(dest: Path) -> Path:
    """What the script installs from, copied: other edits in the work tree cannot change the
    source fingerprint between two runs, and the build leaves nothing in the real tree."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "build", "*.egg-info")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    for name in ("tradebot_core", "plugins", "deploy"):
        shutil.copytree(REPO / name, dest / name, ignore=ignore)
    return dest


def deploy(src: Path, *args: str) -> str:
    env = {**os.environ, **FAST_INSTALL}
    result = subprocess.run(
        ["bash", str(src / SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def listing(root: Path) -> dict[str, tuple[str, str]]:
    """Every path under root: its type and mode, and the sha256 of a file (a link's target)."""
    entries: dict[str, tuple[str, str]] = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        mode = oct(stat.S_IMODE(info.st_mode))
        if stat.S_ISLNK(info.st_mode):
            entries[str(path.relative_to(root))] = ("link " + mode, os.readlink(path))
        elif stat.S_ISDIR(info.st_mode):
            entries[str(path.relative_to(root))] = ("dir " + mode, "")
        else:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            entries[str(path.relative_to(root))] = ("file " + mode, digest)
    return entries


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_install_twice_changes_nothing_and_keeps_the_env(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    src = checkout_copy(tmp_path / "src")
    root = tmp_path / "root"
    env_file = root / APP / ".env"

    first = deploy(src, "--root", str(root))
    before = listing(root)
    assert (root / APP / ".venv/bin/tradebot").is_file()
    assert "installed: " + str(env_file) in first
    assert "would run: useradd --system" in first  # --root: never run, only shown
    assert "would run: systemctl enable tradebot.service" in first

    second = deploy(src, "--root", str(root))
    assert listing(root) == before
    changes = [
        line
        for line in second.splitlines()
        if line.startswith(("installed:", "updated:", "created:", "installing", "mode "))
    ]
    assert changes == [], second
    for path in (
        env_file,
        root / APP / "tradebot.yaml",
        *(root / "etc/systemd/system" / unit for unit in UNITS),
    ):
        assert f"unchanged: {path}" in second

    # the secrets file: from the template, 0600; the journal's folder 0750; units 0644
    assert env_file.read_text() == (REPO / "deploy/env.template").read_text()
    assert mode_of(env_file) == 0o600
    assert mode_of(root / APP / "data") == 0o750
    assert mode_of(root / APP / "tradebot.yaml") == 0o640
    for unit in UNITS:
        installed = root / "etc/systemd/system" / unit
        assert installed.read_text() == (REPO / "deploy/systemd" / unit).read_text()
        assert mode_of(installed) == 0o644

    # an edited .env is never overwritten, but a loosened mode is put back to 0600
    env_file.write_text("DATABENTO_API_KEY=db-secret\n")
    env_file.chmod(0o644)
    unit = root / "etc/systemd/system/tradebot.service"
    unit.write_text(unit.read_text().replace("RestartSec=15", "RestartSec=1"))
    third = deploy(src, "--root", str(root))
    assert env_file.read_text() == "DATABENTO_API_KEY=db-secret\n"
    assert mode_of(env_file) == 0o600
    assert f"unchanged: {env_file}" not in third
    assert f"updated: {unit}" in third
    assert "would run: systemctl daemon-reload" in third
    after = listing(root)
    env_key = str(env_file.relative_to(root))
    assert after.pop(env_key)[0] == "file 0o600"
    assert after == {key: entry for key, entry in before.items() if key != env_key}


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    out = deploy(REPO, "--root", str(root), "--dry-run")
    assert not root.exists()
    assert f"installed: {root / APP / '.env'}" in out
    assert "would run: systemctl daemon-reload" in out
    for action, command in (
        ("--start", "systemctl start"),
        ("--stop", "systemctl stop"),
        ("--restart", "systemctl restart"),
        ("--logs", "journalctl --unit tradebot.service --unit tradebot-watchdog.service"),
    ):
        assert f"would run: {command}" in deploy(REPO, "--root", str(root), action)
    assert not root.exists()


def unit_settings(unit: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in (REPO / "deploy/systemd" / unit).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


@pytest.mark.parametrize("unit", UNITS)
def test_units_are_hardened(unit: str) -> None:
    settings = unit_settings(unit)
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ReadWritePaths": "/opt/tradebot/data",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
        "User": "tradebot",
        "EnvironmentFile": "/opt/tradebot/.env",
        "Restart": "on-failure",
        "KillSignal": "SIGTERM",
        "TimeoutStopSec": "30",
    }.items():
        assert settings.get(key) == [value], key
    assert "RestartSec" in settings
    if unit == "tradebot.service":
        assert settings["RestartPreventExitStatus"] == ["3"]
        # the in-process watchdog stops pinging when no ticks arrive (a closed market):
        # WatchdogSec= would restart the bot every night and weekend
        assert "WatchdogSec" not in settings
        assert settings["ExecStart"][0].startswith("/opt/tradebot/.venv/bin/tradebot run ")
    else:
        assert settings["ExecStart"] == [
            "/opt/tradebot/.venv/bin/tradebot watchdog /opt/tradebot/tradebot.yaml"
        ]


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        message = "systemd-analyze is missing (apt-get install systemd; scripts/test.sh does)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + ": CI=true requires it")
        pytest.skip(message)
    fake = tmp_path / "tradebot"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    copies = []
    for unit in UNITS:
        text = (REPO / "deploy/systemd" / unit).read_text()
        copy = tmp_path / unit
        copy.write_text(text.replace("/opt/tradebot/.venv/bin/tradebot", str(fake)))
        copies.append(copy)
    result = subprocess.run(
        [analyze, "verify", *map(str, copies)], capture_output=True, text=True, timeout=120
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # unknown keys and bad values are only warnings: none is allowed
    assert not [line for line in output.splitlines() if re.search(r"\.service:\d+:", line)], output


def test_script_is_shellcheck_clean() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        message = "shellcheck is not installed (apt-get install shellcheck; scripts/test.sh does)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + ": CI=true requires it")
        pytest.skip(message)
    result = subprocess.run(
        [shellcheck, str(REPO / SCRIPT)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout
