#!/usr/bin/env bash
# The Debian packages `make test` needs beyond Python 3.11: Java 17 for Spark, PostgreSQL for the Postgres
# target's build (the tests start their own server in a temp dir), Chromium and its driver for the browser
# test. One list for `make test` and .ci/run, so a newcomer's machine and CI install the same things.
# As root it installs what is missing with apt-get; otherwise it prints the exact command and fails,
# because the tests would fail later with a less helpful message.
# Usage: scripts/install_system_packages.sh [test|run]   (`run`: only what `make run` needs, i.e. Java)
set -euo pipefail

PYTHON="${PYTHON:-python3.11}"
purpose="${1:-test}"

missing=()
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
if [ "$purpose" = test ]; then
    { command -v initdb >/dev/null || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; } || missing+=(postgresql)
    command -v chromium >/dev/null || missing+=(chromium)
    command -v chromedriver >/dev/null || missing+=(chromium-driver)
fi
# Debian's own Python 3.11 creates virtual environments only with its venv package.
if [ "$(command -v "$PYTHON" || true)" = "/usr/bin/$PYTHON" ] && ! "$PYTHON" -c "import ensurepip" 2>/dev/null; then
    missing+=("$PYTHON-venv")
fi

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

install=(apt-get install -y -qq --no-install-recommends "${missing[@]}")
if [ "$(id -u)" -ne 0 ]; then
    echo "make $purpose needs these Debian packages: ${missing[*]}" >&2
    echo "install them with:" >&2
    echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive ${install[*]}" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null; then
    echo "make $purpose needs: ${missing[*]} (Debian package names; no apt-get here, install the equivalents)" >&2
    exit 1
fi
echo "installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${install[@]}"
