#!/usr/bin/env bash
# Install tradebot on a headless Debian/Ubuntu server as two hardened systemd services.
# See docs/deploy.md for the whole path from a bare server to a running bot.
#
#   sudo deploy/deploy_headless.sh            install or repair (idempotent: a second run changes
#                                             nothing and prints "unchanged" for each file)
#   sudo deploy/deploy_headless.sh --start    start tradebot-watchdog and tradebot
#   sudo deploy/deploy_headless.sh --stop     stop both
#   sudo deploy/deploy_headless.sh --restart  restart both
#   sudo deploy/deploy_headless.sh --logs     follow both services' logs (journalctl)
#   sudo deploy/deploy_headless.sh --update   git pull the checkout, reinstall, run
#                                             `tradebot preflight`, restart only if it passes
#
#   --root DIR   install into DIR instead of / (every path prefixed by DIR); useradd, chown,
#                systemctl, journalctl and runuser are printed ("would run: ...") instead of run
#   --dry-run    change nothing: print what would be installed and run
#
# What it installs (the checkout it runs from is the source; it may live anywhere):
#   system user and group `tradebot` (no login shell, home /opt/tradebot)
#   /opt/tradebot/.venv            the project, pip-installed (root-owned: the bot cannot edit it)
#   /opt/tradebot/tradebot.yaml    the starter config, only if absent (root:tradebot 0640)
#   /opt/tradebot/.env             from deploy/env.template, only if absent (tradebot 0600)
#   /opt/tradebot/data/            the journal and heartbeat (tradebot 0750; the only writable path)
#   /etc/systemd/system/tradebot.service, tradebot-watchdog.service (enabled, not started)
#
# Environment (for tests and unusual servers): PYTHON (default python3), TRADEBOT_VENV_ARGS
# (extra `python -m venv` arguments), TRADEBOT_PIP_ARGS (extra `pip install` arguments).
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

say() {
  printf '%s\n' "$*"
}

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$SCRIPT_DIR/.." && pwd)

APP=/opt/tradebot
BOT_USER=tradebot
UNIT_DIR=/etc/systemd/system
UNITS=(tradebot.service tradebot-watchdog.service)
VENV=$APP/.venv
STAMP=$VENV/tradebot-source.sha256
CONFIG=$APP/tradebot.yaml
PYTHON=${PYTHON:-python3}
read -r -a VENV_ARGS <<<"${TRADEBOT_VENV_ARGS:-}"
read -r -a PIP_ARGS <<<"${TRADEBOT_PIP_ARGS:-}"

ROOT=""
DRY_RUN=false
ACTION=install

set_action() {
  [ "$ACTION" = install ] || die "choose one of --start --stop --restart --logs --update"
  ACTION=$1
}

while [ $# -gt 0 ]; do
  case "$1" in
  --start | --stop | --restart | --logs | --update) set_action "${1#--}" ;;
  --dry-run) DRY_RUN=true ;;
  --root)
    if [ $# -lt 2 ] || [ -z "$2" ]; then die "--root needs a directory"; fi
    ROOT=$(realpath -m "$2")
    shift
    ;;
  --root=*) ROOT=$(realpath -m "${1#--root=}") ;;
  -h | --help)
    usage
    exit 0
    ;;
  *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done
[ "$ROOT" != / ] || ROOT=""

# ---------------------------------------------------------------------------------------------
# running things

show() {
  local out
  printf -v out '%q ' "$@"
  printf '%s' "${out% }"
}

# A step that changes this machine's files: printed instead with --dry-run.
act() {
  if [ "$DRY_RUN" = true ]; then
    say "would run: $(show "$@")"
  else
    "$@"
  fi
}

# A step on the system itself (users, ownership, services): printed instead with --root or
# --dry-run.
system() {
  if [ "$DRY_RUN" = true ] || [ -n "$ROOT" ]; then
    say "would run: $(show "$@")"
  else
    "$@"
  fi
}

# ---------------------------------------------------------------------------------------------
# files

# The mode of a file as stat prints it (600, 755...), to compare with a wanted 0600.
octal() {
  printf '%o' "$((8#$1))"
}

# fix_meta PATH MODE OWNER:GROUP CHANGED: bring mode (and, on a real install, owner) in line.
# Prints what it fixed; returns 0 when something needed fixing.
fix_meta() {
  local path=$1 mode=$2 owner=$3 changed=$4 fixed=1
  if [ -e "$ROOT$path" ] && [ "$(stat -c %a "$ROOT$path")" != "$(octal "$mode")" ]; then
    say "mode $(stat -c %a "$ROOT$path") -> $mode: $ROOT$path"
    act chmod "$mode" "$ROOT$path"
    fixed=0
  fi
  if [ -z "$ROOT" ] && [ "$DRY_RUN" = false ]; then
    if [ "$(stat -c %U:%G "$path")" != "$owner" ]; then
      say "owner $(stat -c %U:%G "$path") -> $owner: $path"
      chown "$owner" "$path"
      fixed=0
    fi
  elif [ "$changed" = true ] || [ ! -e "$ROOT$path" ]; then
    system chown "$owner" "$ROOT$path"
  fi
  return "$fixed"
}

# ensure_dir PATH MODE OWNER:GROUP
ensure_dir() {
  local path=$1 mode=$2 owner=$3
  if [ -d "$ROOT$path" ]; then
    fix_meta "$path" "$mode" "$owner" false || say "unchanged: $ROOT$path/"
  else
    say "created: $ROOT$path/"
    act mkdir -p -m "$mode" "$ROOT$path"
    fix_meta "$path" "$mode" "$owner" true || true
  fi
}

# install_file SOURCE PATH MODE OWNER:GROUP [keep]: write SOURCE's content to PATH (atomically,
# already at MODE), or leave it; with keep, an existing file's content is never replaced.
# Returns 0 when the content was written.
install_file() {
  local source=$1 path=$2 mode=$3 owner=$4 keep=${5:-} verb tmp
  if [ -e "$ROOT$path" ]; then
    if cmp -s "$source" "$ROOT$path"; then
      fix_meta "$path" "$mode" "$owner" false || say "unchanged: $ROOT$path"
      return 1
    elif [ "$keep" = keep ]; then
      fix_meta "$path" "$mode" "$owner" false \
        || say "unchanged: $ROOT$path (yours: never overwritten)"
      return 1
    fi
    verb=updated
  else
    verb=installed
  fi
  say "$verb: $ROOT$path"
  if [ "$DRY_RUN" = true ]; then
    say "would run: $(show install -m "$mode" "$source" "$ROOT$path")"
  else
    mkdir -p "$(dirname "$ROOT$path")"
    tmp=$(mktemp "$ROOT$path.XXXXXX") # mode 0600 from the start: no window for secrets
    cat "$source" >"$tmp"
    chmod "$mode" "$tmp"
    if [ -z "$ROOT" ]; then
      chown "$owner" "$tmp"
    fi
    mv -f "$tmp" "$ROOT$path"
  fi
  if [ -n "$ROOT" ] || [ "$DRY_RUN" = true ]; then
    system chown "$owner" "$ROOT$path"
  fi
  return 0
}

# ---------------------------------------------------------------------------------------------
# the steps

check_python() {
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
    || die "$PYTHON is missing or older than 3.11 (tradebot needs >= 3.11; Debian 12 / Ubuntu 24.04 have it)"
  "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null \
    || die "$PYTHON cannot make a venv: apt-get install python3-venv"
}

ensure_user() {
  if [ -n "$ROOT" ]; then
    system useradd --system --user-group --home-dir "$APP" --no-create-home \
      --shell /usr/sbin/nologin "$BOT_USER"
  elif id -u "$BOT_USER" >/dev/null 2>&1; then
    say "unchanged: user $BOT_USER"
  else
    say "created: user $BOT_USER"
    system useradd --system --user-group --home-dir "$APP" --no-create-home \
      --shell /usr/sbin/nologin "$BOT_USER"
  fi
}

# What pip would build from: a change to any of these files means a reinstall.
source_fingerprint() {
  (
    cd "$SRC"
    find pyproject.toml README.md tradebot_core plugins -type f \
      ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 2>/dev/null \
      | LC_ALL=C sort -z | xargs -0 sha256sum
  ) | sha256sum | cut -d' ' -f1
}

ensure_venv() {
  local want have=""
  if [ -x "$ROOT$VENV/bin/python" ]; then
    say "unchanged: $ROOT$VENV/ (python)"
  else
    say "created: $ROOT$VENV/"
    act "$PYTHON" -m venv "${VENV_ARGS[@]}" "$ROOT$VENV"
  fi
  want=$(source_fingerprint)
  [ -f "$ROOT$STAMP" ] && have=$(cat "$ROOT$STAMP")
  if [ "$have" = "$want" ]; then
    say "unchanged: $ROOT$VENV/ (tradebot-orderflow from $SRC, source ${want:0:12})"
    return
  fi
  say "installing tradebot-orderflow from $SRC into $ROOT$VENV/ (source ${want:0:12})"
  # pip reinstalls a local directory every time (same version number or not); dependencies
  # already satisfied are kept
  act "$ROOT$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "${PIP_ARGS[@]}" "$SRC"
  if [ "$DRY_RUN" = true ]; then
    say "would write: $ROOT$STAMP"
  else
    printf '%s\n' "$want" >"$ROOT$STAMP"
  fi
}

install_all() {
  local units_changed=false unit
  if [ -z "$ROOT" ] && [ "$DRY_RUN" = false ] && [ "$(id -u)" != 0 ]; then
    die "run as root (sudo $0), or try --dry-run / --root DIR"
  fi
  check_python
  ensure_user
  ensure_dir "$APP" 0755 root:root
  ensure_dir "$APP/data" 0750 "$BOT_USER:$BOT_USER"
  ensure_venv
  install_file "$SRC/tradebot_core/templates/tradebot.yaml" "$CONFIG" 0640 "root:$BOT_USER" keep \
    || true
  install_file "$SCRIPT_DIR/env.template" "$APP/.env" 0600 "$BOT_USER:$BOT_USER" keep || true
  ensure_dir "$UNIT_DIR" 0755 root:root
  for unit in "${UNITS[@]}"; do
    if install_file "$SCRIPT_DIR/systemd/$unit" "$UNIT_DIR/$unit" 0644 root:root; then
      units_changed=true
    fi
  done
  if [ "$units_changed" = true ]; then
    system systemctl daemon-reload
  fi
  for unit in "${UNITS[@]}"; do
    if [ -z "$ROOT" ] && [ "$DRY_RUN" = false ] && systemctl is-enabled --quiet "$unit"; then
      say "unchanged: $unit enabled"
    else
      system systemctl enable "$unit"
    fi
  done
}

warn_template_env() {
  if [ -f "$ROOT$APP/.env" ] && cmp -s "$SCRIPT_DIR/env.template" "$ROOT$APP/.env"; then
    say "warning: $ROOT$APP/.env is still the template: put the API keys in it first" >&2
  fi
}

# `tradebot preflight CONFIG` as the bot's user. It FAILs a journal locked by another process:
# the running tradebot.service's own lock (its MainPID) is expected during an update and is not
# counted; any other FAIL, or a non-zero exit without FAIL lines, is a failure.
preflight() {
  local out status=0 main_pid line fails=0 lines=0
  if [ "$DRY_RUN" = true ] || [ -n "$ROOT" ]; then
    system runuser -u "$BOT_USER" -- env -C "$APP" "$VENV/bin/tradebot" preflight "$CONFIG"
    return 0
  fi
  say "preflight: $VENV/bin/tradebot preflight $CONFIG"
  main_pid=$(systemctl show --property MainPID --value tradebot.service 2>/dev/null || true)
  out=$(runuser -u "$BOT_USER" -- env -C "$APP" "$VENV/bin/tradebot" preflight "$CONFIG" 2>&1) \
    || status=$?
  printf '%s\n' "$out"
  [ "$status" = 0 ] && return 0
  while IFS= read -r line; do
    case "$line" in
    FAIL*)
      lines=$((lines + 1))
      if [ -n "$main_pid" ] && [ "$main_pid" != 0 ] \
        && [[ "$line" == "FAIL journal: "*" is locked by process $main_pid "* ]]; then
        say "(that lock is the running tradebot.service, pid $main_pid: expected during an update)"
      else
        fails=$((fails + 1))
      fi
      ;;
    esac
  done <<<"$out"
  [ "$lines" -gt 0 ] && [ "$fails" = 0 ]
}

# git in the checkout, as the user who owns it (root pulling into someone's clone would leave
# root-owned files there, and git refuses a repository owned by someone else)
git_in_src() {
  local owner
  owner=$(stat -c %U "$SRC")
  if [ "$(id -u)" = 0 ] && [ "$owner" != root ]; then
    runuser -u "$owner" -- git -C "$SRC" "$@"
  else
    git -C "$SRC" "$@"
  fi
}

update() {
  local before after
  if [ -z "$ROOT" ] && [ "$DRY_RUN" = false ] && [ "$(id -u)" != 0 ]; then
    die "run as root (sudo $0 --update), or try --dry-run / --root DIR"
  fi
  before=$(git_in_src rev-parse --short HEAD)
  if [ "$DRY_RUN" = true ]; then
    say "would run: $(show git -C "$SRC" pull --ff-only)"
  else
    git_in_src pull --ff-only
  fi
  after=$(git_in_src rev-parse --short HEAD)
  say "checkout $SRC: $before -> $after"
  install_all
  if ! preflight; then
    say "error: preflight failed: NOT restarting; the running bot keeps its old process." >&2
    say "fix what preflight says, then: $0 --update (or go back: git -C $SRC checkout $before && $0 --update)" >&2
    exit 1
  fi
  system systemctl restart "${UNITS[@]}"
}

case "$ACTION" in
install)
  install_all
  say "next: edit $APP/.env and $CONFIG, then $0 --start (docs/deploy.md)"
  ;;
update) update ;;
start)
  warn_template_env
  system systemctl start tradebot-watchdog.service tradebot.service
  ;;
stop) system systemctl stop tradebot.service tradebot-watchdog.service ;;
restart)
  warn_template_env
  system systemctl restart tradebot-watchdog.service tradebot.service
  ;;
logs) system journalctl --unit tradebot.service --unit tradebot-watchdog.service -n 200 -f ;;
esac
