#!/usr/bin/env bash
# The project's whole check, as README.md gives it and .ci/run calls it:
# installs the real peers the integration tests drive, then formatting, lints
# and every test. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=()
for tool in curl lftp slapd ldapmodify; do
  command -v "$tool" >/dev/null 2>&1 || packages+=("$tool")
done
if [ "${#packages[@]}" -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${packages[@]}"
fi

cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test --all-features
