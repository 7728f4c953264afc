#!/usr/bin/env bash
# The project's whole check, as README.md gives it and .ci/run calls it:
# installs the real peers the integration tests drive, then formatting, lints
# and every test. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

# command -> Debian package: FTPS clients (curl, lftp, rclone, Python ftplib),
# OpenLDAP (slapd, ldap-utils), systemd-analyze (the unit in dist/) and an
# SMTP server (aiosmtpd).
packages=()
for pair in curl:curl lftp:lftp rclone:rclone python3:python3 slapd:slapd ldapmodify:ldap-utils slappasswd:slapd systemd-analyze:systemd openssl:openssl; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin" command -v "${pair%%:*}" >/dev/null 2>&1 || packages+=("${pair##*:}")
done
# aiosmtpd (the SMTP server of the mail tests) installs for Debian's own python3.
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || packages+=(python3-aiosmtpd)
# prometheus_client's parser checks that /metrics is Prometheus text.
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import prometheus_client' 2>/dev/null || packages+=(python3-prometheus-client)
# node and npm run the OpenID Connect provider of the SSO tests.
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)
# PostgreSQL's server programs: the store tests start private clusters (initdb).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || packages+=(postgresql)
command -v psql >/dev/null 2>&1 || packages+=(postgresql-client)
# Debian's chromium is the browser the web console tests drive (Playwright downloads none).
[ -x /usr/bin/chromium ] || packages+=(chromium)
if [ "${#packages[@]}" -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${packages[@]}"
fi

export PATH="$PATH:/usr/sbin"   # slapd, slapadd, slappasswd

# npm oidc-provider (pinned in tests/it/peers/oidc/package.json) into target/oidc-peer.
peer=target/oidc-peer
if ! cmp -s tests/it/peers/oidc/package.json "$peer/package.json" || [ ! -d "$peer/node_modules/oidc-provider" ]; then
  mkdir -p "$peer"
  cp tests/it/peers/oidc/package.json "$peer/package.json"
  npm install --prefix "$peer" --no-audit --no-fund --loglevel=error
fi
# npm playwright-core (pinned in tests/it/peers/web/package.json) into target/web-peer.
web=target/web-peer
if ! cmp -s tests/it/peers/web/package.json "$web/package.json" || [ ! -d "$web/node_modules/playwright-core" ]; then
  mkdir -p "$web"
  cp tests/it/peers/web/package.json "$web/package.json"
  npm install --prefix "$web" --no-audit --no-fund --loglevel=error
fi
# openapi-spec-validator (PyPI, pinned) checks the API description.
validator=target/openapi-peer
if ! "$validator/bin/python" -c 'import openapi_spec_validator' 2>/dev/null; then
  python3 -m venv "$validator"
  "$validator/bin/pip" install --quiet --disable-pip-version-check openapi-spec-validator==0.9.0
fi
cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test --all-features
# The integration suite again with every daemon's store on PostgreSQL (a
# private cluster per test, initdb into a temp dir) instead of sled.
GATEHOUSE_TEST_STORE=postgres cargo test --all-features --test it
