#!/usr/bin/env bash
# Install Debian packages without questions. `apt-get update` runs only when the plain install
# fails (stale or empty package lists), so a machine that is already up to date stays fast.
set -euo pipefail
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
# sudo drops the environment, so DEBIAN_FRONTEND goes through env; the lock timeout waits for
# another apt run (for example an image's own background install) instead of failing.
apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=900)
"${apt[@]}" install "$@" || { "${apt[@]}" update && "${apt[@]}" install "$@"; }
