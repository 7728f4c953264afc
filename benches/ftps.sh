#!/usr/bin/env bash
# FTPS benchmark (issue: FTPS endpoint): gatehouse against vsftpd with TLS, same
# machine, same run. Measures a 1 GiB upload, 20 parallel 50 MiB uploads, and
# FTPS sign-ins per second (connect, AUTH TLS, USER/PASS, QUIT).
# Run as root (it creates a local user for vsftpd): bash benches/ftps.sh
set -euo pipefail
cd "$(dirname "$0")/.."

command -v vsftpd >/dev/null && command -v curl >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends vsftpd curl
}
cargo build --release -q

work=$(mktemp -d /tmp/gatehouse-ftps-bench.XXXXXX)
chmod 755 "$work"   # vsftpd's local user must reach its home below it
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; pkill -f "vsftpd $work/vsftpd.conf" || true; rm -rf "$work"; }
trap cleanup EXIT

password="bench passphrase 1"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
cat "$work/cert.pem" "$work/key.pem" > "$work/vsftpd.pem"

# gatehouse
export GATEHOUSE_DATA_DIR="$work/gh" GATEHOUSE_HTTP__LISTEN=127.0.0.1:18080 GATEHOUSE_FTP__LISTEN=127.0.0.1:12121 \
  GATEHOUSE_FTP__PASSIVE_PORTS=51000-51100 GATEHOUSE_TLS__CERT="$work/cert.pem" GATEHOUSE_TLS__KEY="$work/key.pem" \
  GATEHOUSE_SIGNIN__MAX_FAILURES=1000000
./target/release/gatehouse serve >"$work/gatehouse.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -f "$work/gh/root.token" ] && curl -sf http://127.0.0.1:18080/healthz >/dev/null && break; sleep 0.1; done
token=$(cat "$work/gh/root.token")
api() { curl -sf -H "Authorization: Bearer $token" -H 'content-type: application/json' "$@"; }
uid=$(api -X POST http://127.0.0.1:18080/api/v1/users -d "{\"login\":\"ghbench\",\"password\":\"$password\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
api -X POST http://127.0.0.1:18080/api/v1/users/actions/create-ftp-accounts -d "{\"ids\":[$uid],\"quota_mb\":null}" >/dev/null

# vsftpd with a local user of the same name and password
id ghbench >/dev/null 2>&1 || useradd -m ghbench
echo "ghbench:$password" | chpasswd
mkdir -p "$work/vs-home" && chown ghbench "$work/vs-home"
cat >"$work/vsftpd.conf" <<CONF
listen=YES
listen_address=127.0.0.1
listen_port=12122
local_enable=YES
write_enable=YES
local_root=$work/vs-home
chroot_local_user=YES
allow_writeable_chroot=YES
ssl_enable=YES
force_local_logins_ssl=YES
force_local_data_ssl=YES
rsa_cert_file=$work/vsftpd.pem
require_ssl_reuse=NO
seccomp_sandbox=NO
pasv_min_port=52000
pasv_max_port=52100
background=YES
pam_service_name=vsftpd
max_clients=200
max_per_ip=200
CONF
mkdir -p /var/run/vsftpd/empty
vsftpd "$work/vsftpd.conf"
sleep 0.5

head -c 1073741824 /dev/urandom >"$work/1g.bin"
head -c 52428800 /dev/urandom >"$work/50m.bin"

# Each phase starts with no dirty pages of an earlier one, so writeback hits both servers alike.
settle() { rm -f "$work"/gh/ftp/ghbench/*.bin "$work"/vs-home/*.bin; sync; }

upload() { # port file name; one retry, reported, for a failed AUTH TLS upgrade
  curl -sS --ssl-reqd -k --user "ghbench:$password" -T "$2" "ftp://127.0.0.1:$1/$3" \
    || { echo "retrying $3 on port $1" >&2; curl -sS --ssl-reqd -k --user "ghbench:$password" -T "$2" "ftp://127.0.0.1:$1/$3"; }
}
seconds() { python3 -c "import time; print(time.monotonic())"; }
rate() { python3 -c "print(f'{$1 / ($3 - $2) / 1e6:.0f}')"; }

declare -A single parallel logins
for server in gatehouse:12121 vsftpd:12122; do
  name=${server%%:*}; port=${server##*:}
  upload "$port" "$work/1g.bin" warm.bin   # warm caches and the TLS path once
  settle
  start=$(seconds); upload "$port" "$work/1g.bin" big.bin; end=$(seconds)
  settle
  single[$name]=$(rate 1073741824 "$start" "$end")
  start=$(seconds)
  uploads=()
  for i in $(seq 20); do upload "$port" "$work/50m.bin" "p$i.bin" & uploads+=($!); done
  wait "${uploads[@]}"
  end=$(seconds)
  parallel[$name]=$(rate $((20 * 52428800)) "$start" "$end")
  settle
  logins[$name]=$(python3 - "$port" "$password" <<'PY'
import ftplib, ssl, sys, time, threading
port, password = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
count = failed = 0; lock = threading.Lock(); stop = time.monotonic() + 10
def worker():
    global count, failed
    while time.monotonic() < stop:
        try:
            ftp = ftplib.FTP_TLS(context=ctx); ftp.connect("127.0.0.1", port); ftp.login("ghbench", password); ftp.quit()
            with lock: count += 1
        except Exception:
            with lock: failed += 1
threads = [threading.Thread(target=worker) for _ in range(8)]
[t.start() for t in threads]; [t.join() for t in threads]
print(f"failed sign-ins on port {port}: {failed}", file=sys.stderr)
print(f"{count / 10:.1f}")
PY
)
  rm -f "$work"/gh/ftp/ghbench/*.bin "$work"/vs-home/*.bin
done

printf '%-10s %22s %28s %16s\n' server "1 GiB upload MB/s" "20x50 MiB parallel MB/s" "sign-ins/s"
for name in gatehouse vsftpd; do
  printf '%-10s %22s %28s %16s\n' "$name" "${single[$name]}" "${parallel[$name]}" "${logins[$name]}"
done
python3 -c "print(f'ratios gatehouse/vsftpd: 1 GiB {${single[gatehouse]}/${single[vsftpd]}:.2f}x, parallel {${parallel[gatehouse]}/${parallel[vsftpd]}:.2f}x, sign-ins {${logins[gatehouse]}/${logins[vsftpd]}:.2f}x')"
