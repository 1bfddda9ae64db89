#!/bin/sh
# Create the unprivileged user noslate worker processes run as (isolation_seccomp).
# Idempotent. Usage: sudo scripts/create-worker-user.sh [NAME]
set -eu
name="${1:-noslate-worker}"
if id "$name" >/dev/null 2>&1; then
    echo "user $name exists: $(id "$name")"
    exit 0
fi
useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --user-group "$name"
echo "created $(id "$name")"
