#!/usr/bin/env bash
# Install the Debian packages listed in $1 (one per line, # comments) when run as root.
# Idempotent: does nothing when every package is installed; `apt-get update` runs once,
# only when something is missing.
set -euo pipefail
list="${1:-scripts/debian-packages.txt}"
[ -f "$list" ] || exit 0
mapfile -t wanted < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$list" | grep -v '^$' | sort -u)
[ "${#wanted[@]}" -gt 0 ] || exit 0
missing=()
for pkg in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "debian: all ${#wanted[@]} packages installed"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "debian: NOTICE: not root, skipping: ${missing[*]} (install them yourself, e.g. sudo apt-get install ${missing[*]})" >&2
  exit 0
fi
echo "debian: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
