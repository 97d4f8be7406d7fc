#!/usr/bin/env bash
# The README's first command: installs what the demo needs (Debian packages, the Samba 4.22
# root, npm dependencies with Node 24), then runs the demo: a throwaway Samba AD DC, a local
# Git repository made from examples/, and the controller against both. Ctrl-C cleans up.
# Run as root (debootstrap, chroot and network namespaces need it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/install-test-deps.sh apt samba-root
[[ -x node_modules/.bin/node ]] || npm ci
exec npm run --silent demo
