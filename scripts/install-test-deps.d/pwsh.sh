#!/usr/bin/env bash
# PowerShell 7 for the host-script tests (test/hosts*.test.ts), run by install-test-deps.sh's
# "extra" section. Idempotent: when the pinned version is already installed it only re-checks
# the symlink.
#
# PowerShell comes as a .NET global tool from NuGet: the .NET SDK is on the machine, and Debian
# has no PowerShell package. A global tool lands in ~/.dotnet/tools of the installing user, which
# an sshd session (whose PATH is the system default) does not look in, so the tool is linked into
# /usr/local/bin. Tests log in over ssh as the user that runs them (root here), so the tool's
# store under that user's home stays readable.
set -euo pipefail

PWSH_VERSION="${GMSA_PWSH_VERSION:-7.6.9}"
TOOLS_DIR="${HOME}/.dotnet/tools"
LINK=/usr/local/bin/pwsh

info() { printf '    %s\n' "$*"; }
die() { printf 'install-test-deps.d/pwsh.sh: %s\n' "$*" >&2; exit 1; }

command -v dotnet >/dev/null || die "the .NET SDK (dotnet) is missing; PowerShell is installed as a .NET tool"

installed="$(dotnet tool list --global 2>/dev/null | awk 'tolower($1) == "powershell" { print $2 }')"
if [[ "$installed" == "$PWSH_VERSION" ]]; then
  info "PowerShell $PWSH_VERSION already installed"
elif [[ -n "$installed" ]]; then
  info "PowerShell $installed installed; moving to $PWSH_VERSION"
  dotnet tool update --global PowerShell --version "$PWSH_VERSION" >/dev/null
else
  info "dotnet tool install --global PowerShell --version $PWSH_VERSION"
  dotnet tool install --global PowerShell --version "$PWSH_VERSION" >/dev/null
fi

[[ -x "$TOOLS_DIR/pwsh" ]] || die "pwsh not found in $TOOLS_DIR after installing"
if [[ "$(readlink "$LINK" 2>/dev/null || true)" != "$TOOLS_DIR/pwsh" ]]; then
  info "linking $LINK -> $TOOLS_DIR/pwsh (sshd sessions have /usr/local/bin on PATH)"
  ln -sfn "$TOOLS_DIR/pwsh" "$LINK"
fi
# The tool shim finds the runtime through DOTNET_ROOT or the dotnet on PATH; an ssh session has
# /usr/bin on PATH, so check the way a session would run it.
version="$(env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$HOME" "$LINK" -NoProfile -NonInteractive -Command '$PSVersionTable.PSVersion.ToString()')" \
  || die "pwsh does not start with a minimal environment"
info "pwsh $version at $LINK"
