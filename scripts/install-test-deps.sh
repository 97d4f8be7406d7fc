#!/usr/bin/env bash
# Installs what the integration tests and the demo need on a Debian machine (run as root).
# Idempotent: a second run only re-checks.
#
#   bash scripts/install-test-deps.sh                 # every section, in order
#   bash scripts/install-test-deps.sh apt samba-root  # only the named sections
#
# Sections:
#   apt         Debian packages from the machine's own archive (ldap-utils, openssh, promtool,
#               systemd-analyze, chromium, ...)
#   samba-root  a Debian-stable root holding Samba >= 4.21 (the first Samba that generates gMSA
#               passwords; Debian 12 ships 4.17), built once into $GMSA_SAMBA_ROOT
#               (default /var/cache/gmsa-gitops/samba-root). test/harness/samba.ts runs the
#               throwaway DC from it through chroot.
#   extra       every scripts/install-test-deps.d/*.sh, in name order: the place for other
#               installers (PowerShell 7, ...). Each must be idempotent and run as root.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SAMBA_ROOT="${GMSA_SAMBA_ROOT:-/var/cache/gmsa-gitops/samba-root}"
MARKER="$SAMBA_ROOT/.gmsa-gitops-root-complete"
# Packages inside the root. samba-ad-dc/samba-ad-provision/samba-dsdb-modules are separate
# packages since Samba 4.20 in Debian; python3-markdown is only a Recommends of samba but
# samba-tool's domain level commands import it (and exit 0 when it is missing).
ROOT_PACKAGES=(samba samba-ad-dc samba-ad-provision samba-dsdb-modules winbind krb5-user ldap-utils python3-markdown)
# chromium: the status page test drives it headless through playwright-core (no browser download).
# gcc, libc6-dev: the netapi32 double of the host tests is a small C library.
HOST_PACKAGES=(debootstrap ldap-utils iproute2 util-linux openssl ca-certificates git openssh-server openssh-client prometheus gnupg chromium systemd gcc libc6-dev)

step() { printf '\n==> %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }
die() { printf 'install-test-deps: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "run as root (apt-get, debootstrap and chroot need it)"

APT_UPDATED=0
apt_update_once() {
  if [[ $APT_UPDATED -eq 0 ]]; then
    info "apt-get update"
    apt-get update -qq
    APT_UPDATED=1
  fi
}

section_apt() {
  step "Debian packages on this machine"
  local missing=() pkg
  for pkg in "${HOST_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    info "already installed: ${HOST_PACKAGES[*]}"
    return
  fi
  apt_update_once
  info "installing: ${missing[*]}"
  # The prometheus package starts its server by default; tests only need promtool.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if systemctl is-active --quiet prometheus 2>/dev/null; then
    info "stopping the prometheus service the package started (tests run their own)"
    systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
}

# Refuses to wipe a folder something is still mounted under (a DC left running, or a crashed
# build): rm -rf would follow bind mounts into the host.
assert_nothing_mounted_under() {
  local dir="$1"
  if awk -v d="$dir/" '{ if (index($2 "/", d) == 1) found = 1 } END { exit !found }' /proc/self/mounts; then
    die "something is still mounted under $dir; unmount it (see /proc/self/mounts) and retry"
  fi
}

section_samba_root() {
  step "Samba root (Debian stable) at $SAMBA_ROOT"
  if [[ -f "$MARKER" ]]; then
    info "already built: $(cat "$MARKER")"
    return
  fi
  command -v debootstrap >/dev/null || die "debootstrap is missing: run the apt section first"
  if [[ -e "$SAMBA_ROOT" ]]; then
    info "removing an incomplete root left by an earlier run"
    assert_nothing_mounted_under "$SAMBA_ROOT"
    rm -rf --one-file-system "$SAMBA_ROOT"
  fi
  mkdir -p "$(dirname "$SAMBA_ROOT")"

  local started=$SECONDS
  info "debootstrap --variant=minbase stable (about a minute)"
  debootstrap --variant=minbase stable "$SAMBA_ROOT" >"$SAMBA_ROOT.debootstrap.log" 2>&1 \
    || { tail -n 20 "$SAMBA_ROOT.debootstrap.log" >&2; die "debootstrap failed (log: $SAMBA_ROOT.debootstrap.log)"; }
  rm -f "$SAMBA_ROOT.debootstrap.log"

  # Packages must not start daemons inside the root while they install.
  printf '#!/bin/sh\nexit 101\n' >"$SAMBA_ROOT/usr/sbin/policy-rc.d"
  chmod 0755 "$SAMBA_ROOT/usr/sbin/policy-rc.d"

  info "apt-get install ${ROOT_PACKAGES[*]} (inside the root)"
  # A private mount namespace: /proc vanishes with the command even if it fails.
  unshare --mount --fork bash -euo pipefail -c '
    root="$1"; shift
    mount -t proc proc "$root/proc"
    chroot "$root" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -qq --no-install-recommends "$@"
    chroot "$root" apt-get clean
  ' _ "$SAMBA_ROOT" "${ROOT_PACKAGES[@]}" >"$SAMBA_ROOT/install.log" 2>&1 \
    || { tail -n 20 "$SAMBA_ROOT/install.log" >&2; die "apt-get inside the root failed (log: $SAMBA_ROOT/install.log)"; }

  local version
  version="$(chroot "$SAMBA_ROOT" samba --version)" || die "samba does not run inside the root"
  info "$version"
  # The marker is written last: its presence means the root is complete.
  printf '%s, built %s\n' "$version" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$MARKER"
  info "done in $((SECONDS - started)) s"
}

section_extra() {
  step "Other installers (scripts/install-test-deps.d/)"
  local found=0 script
  for script in "$SCRIPT_DIR"/install-test-deps.d/*.sh; do
    [[ -e "$script" ]] || continue
    found=1
    info "running $(basename "$script")"
    bash "$script"
  done
  [[ $found -eq 1 ]] || info "none"
}

sections=("$@")
[[ ${#sections[@]} -gt 0 ]] || sections=(apt samba-root extra)
for section in "${sections[@]}"; do
  case "$section" in
    apt) section_apt ;;
    samba-root) section_samba_root ;;
    extra) section_extra ;;
    *) die "unknown section '$section' (known: apt samba-root extra)" ;;
  esac
done
step "All requested sections done"
