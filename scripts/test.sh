#!/usr/bin/env bash
# The README's test command: installs every component the tests use (Debian packages,
# the Samba 4.22 root, PowerShell 7, npm dependencies with Node 24), then runs `npm test`:
# type check, lint, format check, unit and integration tests. Run as root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/install-test-deps.sh
npm ci
npm test
