#!/usr/bin/env bash
# Install the repo-root npm dependencies (package.json) when they changed.
set -euo pipefail
[ -f package.json ] || exit 0
if ! command -v npm >/dev/null 2>&1; then
  echo "npm: not found; install Node.js >= 18 with npm (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi
stamp=node_modules/.noslate-stamp
inputs=(package.json)
[ -f package-lock.json ] && inputs+=(package-lock.json)
if [ -f "$stamp" ] && [ -z "$(find "${inputs[@]}" -newer "$stamp" 2>/dev/null)" ]; then
  echo "npm: up to date"
  exit 0
fi
if [ -f package-lock.json ] && [ ! -d node_modules ]; then
  npm ci --no-audit --no-fund --loglevel=error
else
  npm install --no-audit --no-fund --loglevel=error
fi
touch "$stamp"
