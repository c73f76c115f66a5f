#!/bin/sh
# Live-change benchmark (issue: change it live): bench/live.py says what it
# measures; figures go to docs/benchmarks.md. About 2 minutes.
# Needs nginx (nginx-light), wrk, curl and /usr/bin/python3.
set -eu
cd "$(dirname "$0")/.."
make --no-print-directory -s build/switchboard >/dev/null
exec /usr/bin/python3 bench/live.py
