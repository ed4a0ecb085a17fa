#!/usr/bin/env bash
# Installs what conformance/real.py needs, idempotently:
#   - Debian's rabbitmq-server (3.10 on bookworm) and redis-server, if missing;
#   - a venv at ${CONFORMANCE_VENV:-target/conformance/venv} (relative to the
#     repo root) with the pinned clients and nats-server from requirements.txt.
# Prints one line per install step it actually performs, nothing else on success;
# on failure it prints the failing step's output.
# Note: this machine image ships /usr/sbin/policy-rc.d (exit 101), so installing
# the packages does not start the system services; if one did start, it would
# use the default ports (5672/4369/6379), which real.py does not use.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv="${CONFORMANCE_VENV:-target/conformance/venv}"
python="${PYTHON:-python3}"

quiet() {
  local log
  log="$(mktemp)"
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
}

apt_updated=
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "$apt_updated" ]; then
    quiet apt-get update -qq
    apt_updated=1
  fi
  quiet apt-get install -y -qq --no-install-recommends "$@"
}

missing=()
command -v rabbitmq-server >/dev/null 2>&1 || [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || missing+=(rabbitmq-server)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "conformance setup: apt-get install ${missing[*]}"
  apt_install "${missing[@]}"
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "conformance setup: python venv $venv"
  mkdir -p "$(dirname "$venv")"
  if ! quiet "$python" -m venv "$venv"; then
    # Debian's own python3 needs python3-venv for ensurepip.
    rm -rf "$venv"
    echo "conformance setup: apt-get install python3-venv"
    apt_install python3-venv
    quiet "$python" -m venv "$venv"
  fi
fi

stamp="$venv/.conformance-requirements"
if ! cmp -s conformance/requirements.txt "$stamp"; then
  echo "conformance setup: pip install -r conformance/requirements.txt"
  quiet "$venv/bin/python" -m pip install -q --disable-pip-version-check -r conformance/requirements.txt
  cp conformance/requirements.txt "$stamp"
fi
