#!/bin/sh
# Put STPyV8's ICU data where every worker finds it: /usr/share/stpyv8 (as root).
#
# STPyV8 13.1 copies icudtl.dat into /usr/share/stpyv8 and ~/.local/share/stpyv8 on
# its first import, and at start-up prefers $HOME/.local/share/stpyv8 -- from which it
# fails to load ICU (the first Intl call is then a fatal V8 error; measured with
# 13.1.201.22). Workers run with HOME=/nonexistent, so: sync /usr/share once here,
# and remove a copy that a first import as root with that HOME left under it.
set -eu
PY="${1:-.venv/bin/python}"
if [ "$(id -u)" -ne 0 ]; then
    exit 0  # /usr/share is not ours to write; STPyV8 keeps its copy under ~/.local
fi
HOME=/root "$PY" -c 'import STPyV8' >/dev/null
if [ -d /nonexistent/.local/share/stpyv8 ] && [ "$(stat -c %U /nonexistent)" = root ]; then
    rm -rf /nonexistent/.local/share/stpyv8
    rmdir -p /nonexistent/.local/share 2>/dev/null || true
fi
