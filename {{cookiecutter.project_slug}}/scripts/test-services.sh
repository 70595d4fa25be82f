#!/usr/bin/env bash
# Make sure the servers the tests start for real are installed (the tests start
# and stop them on 127.0.0.1 themselves). Installs Debian packages when missing
# and when allowed (root or passwordless sudo); otherwise says what to install.
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[[ -z "${missing[*]:-}" ]] && exit 0

if [[ $(id -u) -eq 0 ]]; then
  sudo=()
elif sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "test-services: please install: ${missing[*]} (e.g. apt-get install ${missing[*]})" >&2
  exit 0  # the tests that need them say so
fi
if command -v apt-get >/dev/null 2>&1; then
  echo "test-services: installing ${missing[*]}" >&2
  "${sudo[@]}" apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "test-services: no apt-get here; please install: ${missing[*]}" >&2
fi
