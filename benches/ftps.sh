#!/usr/bin/env bash
# FTPS benchmark (issue: FTPS endpoint): gatehouse against vsftpd with TLS, same
# machine, same user and password, same run. Per server it measures a single 1 GiB
# upload and download, 20 parallel 50 MiB uploads and downloads, FTPS sign-ins per
# second (connect, AUTH TLS, USER/PASS, QUIT), a "camera trap" (20 sessions of the
# same user each uploading 16 MiB at once; for gatehouse again with the password
# cache off), and server CPU seconds per GiB for the 1 GiB transfers. Every case runs
# BENCH_REPS times (default 3; the 1 GiB cases BENCH_BIG_REPS, default 3) and the
# table shows medians. The machine is small and noisy: read ratios, not absolutes.
# Run as root (it creates a local user for vsftpd): bash benches/ftps.sh
set -euo pipefail
cd "$(dirname "$0")/.."

reps=${BENCH_REPS:-3} big_reps=${BENCH_BIG_REPS:-3}
(( big_reps <= reps )) || big_reps=$reps
command -v vsftpd >/dev/null && command -v curl >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends vsftpd curl
}
cargo build --release -q
bench_start=$EPOCHREALTIME

work=$(mktemp -d /tmp/gatehouse-ftps-bench.XXXXXX)
chmod 755 "$work"   # vsftpd's local user must reach its home below it
gh_pid="" vs_pid="" reaper_pid="" made_user=""
cleanup() {
  local status=$?
  # Background curl and client jobs of a case cut short, then both servers.
  for pid in $(jobs -p); do kill "$pid" 2>/dev/null || true; done
  [ -n "$gh_pid" ] && kill "$gh_pid" 2>/dev/null || true
  # vsftpd: its sessions (each in a session of its own), then the listener and the
  # subreaper's orphans, then the subreaper.
  [ -n "$vs_pid" ] && pkill -P "$vs_pid" 2>/dev/null || true
  [ -n "$reaper_pid" ] && { pkill -P "$reaper_pid"; kill "$reaper_pid"; } 2>/dev/null || true
  wait 2>/dev/null || true
  [ -n "$made_user" ] && userdel -r ghbench >/dev/null 2>&1 || true
  if [ "$status" != 0 ] && [ -f "$work/gatehouse.log" ]; then
    echo "ftps bench failed (exit $status); end of the gatehouse log:" >&2; tail -20 "$work/gatehouse.log" >&2
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

password="bench passphrase 1"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
cat "$work/cert.pem" "$work/key.pem" > "$work/vsftpd.pem"

# gatehouse; start_gatehouse takes extra VAR=value settings (the restart for the
# camera trap without password cache). The store lives in $work/gh, so the user and
# FTP account survive a restart. The sign-in throttle keeps its defaults: right
# passwords, however many at once, must never count against it.
export GATEHOUSE_DATA_DIR="$work/gh" GATEHOUSE_HTTP__LISTEN=127.0.0.1:18080 GATEHOUSE_FTP__LISTEN=127.0.0.1:12121 \
  GATEHOUSE_FTP__PASSIVE_PORTS=51000-51100 GATEHOUSE_TLS__CERT="$work/cert.pem" GATEHOUSE_TLS__KEY="$work/key.pem"
start_gatehouse() {
  env "$@" ./target/release/gatehouse serve >>"$work/gatehouse.log" 2>&1 &
  gh_pid=$!
  for _ in $(seq 100); do
    [ -f "$work/gh/root.token" ] && curl -sf http://127.0.0.1:18080/healthz >/dev/null \
      && (exec 3<>/dev/tcp/127.0.0.1/12121) 2>/dev/null && return 0
    kill -0 "$gh_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "gatehouse did not come up:" >&2; tail -20 "$work/gatehouse.log" >&2; return 1
}
stop_gatehouse() { kill "$gh_pid"; wait "$gh_pid" || true; gh_pid=""; }
start_gatehouse
token=$(cat "$work/gh/root.token")
api() { curl -sf -H "Authorization: Bearer $token" -H 'content-type: application/json' "$@"; }
uid=$(api -X POST http://127.0.0.1:18080/api/v1/users -d "{\"login\":\"ghbench\",\"password\":\"$password\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
api -X POST http://127.0.0.1:18080/api/v1/users/actions/create-ftp-accounts -d "{\"ids\":[$uid],\"quota_mb\":null}" >/dev/null

# vsftpd with a local user of the same name and password, in the foreground
# (background=NO) below a small subreaper, for its CPU time. The listener forks a
# process per session and reaps it, so its cutime+cstime (fields 16-17 of
# /proc/PID/stat) hold what the session processes used; but a session process does
# not wait for every child of its own (one per sign-in), and those orphans' CPU (a
# third of a transfer's) would go to init. With the subreaper they are reparented to
# it and it reaps them, so listener (14-17) + subreaper (16-17) is all of vsftpd
# (checked against polling every vsftpd process during a transfer). The listener
# itself cannot be the subreaper: it crashes reaping a pid it did not fork.
id ghbench >/dev/null 2>&1 || { useradd -m ghbench; made_user=1; }
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
background=NO
pam_service_name=vsftpd
max_clients=200
max_per_ip=200
CONF
cat >"$work/reaper.py" <<'PY'
import ctypes, os, signal, sys
if ctypes.CDLL(None).prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
    sys.exit("PR_SET_CHILD_SUBREAPER failed")
child = os.fork()
if child == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
signal.signal(signal.SIGTERM, lambda *_: os.kill(child, signal.SIGTERM))
while True:
    try:
        if os.wait()[0] == child:
            break
    except ChildProcessError:
        break
PY
mkdir -p /var/run/vsftpd/empty
setsid python3 "$work/reaper.py" vsftpd "$work/vsftpd.conf" >"$work/vsftpd.log" 2>&1 &
reaper_pid=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/12122) 2>/dev/null && break; sleep 0.1; done
vs_pid=$(pgrep -P "$reaper_pid")
[ "$(cat "/proc/$vs_pid/comm")" = vsftpd ] || { echo "no vsftpd below pid $reaper_pid" >&2; exit 1; }

mib=1048576
head -c $((1024 * mib)) /dev/urandom >"$work/1g.bin"
head -c $((50 * mib)) /dev/urandom >"$work/50m.bin"
head -c $((16 * mib)) /dev/urandom >"$work/16m.bin"

# Files a case uploads are named up*.bin; download sources dl*.bin stay.
# Before every timed run: no uploads or dirty pages of an earlier run, an empty page
# cache (so the server reads download sources from disk, alike for both), then the
# client's own source files read back in, so uploads time the server, not our disk.
settle() {
  find "$work/gh/ftp" "$work/vs-home" -name 'up*.bin' -delete
  sync
  echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
  cat "$work/1g.bin" "$work/50m.bin" "$work/16m.bin" >/dev/null
}

# transfer port up|down local|- remote [size]: one curl session; checks the byte count
# (size: of a download) and retries once (reported, and counted in the notes) on failure.
transfer() {
  local port=$1 dir=$2 file=$3 remote=$4 args want got try
  if [ "$dir" = up ]; then args=(-T "$file" -w '%{size_upload}'); want=$(stat -c %s "$file")
  else args=(-o /dev/null -w '%{size_download}'); want=$5; fi
  for try in 1 2; do
    got=$(curl -sS --ssl-reqd -k --user "ghbench:$password" "${args[@]}" "ftp://127.0.0.1:$port/$remote") && [ "$got" = "$want" ] && return 0
    echo "retry: $dir $remote on port $port (try $try moved ${got:-0} of $want bytes)" | tee -a "$work/notes" >&2
  done
  return 1
}
# parallel n port up|down local remote-prefix [size]: n sessions at once, remote names prefix1..n.
parallel() {
  local n=$1 port=$2 dir=$3 file=$4 prefix=$5 size=${6:-} jobs=() i failed=0
  for i in $(seq "$n"); do transfer "$port" "$dir" "$file" "$prefix$i.bin" $size & jobs+=($!); done
  for i in "${jobs[@]}"; do wait "$i" || failed=1; done
  return $failed
}
now() { echo "$EPOCHREALTIME"; }
elapsed() { python3 -c "print(f'{$2 - $1:.3f}')"; }

# Server CPU in seconds: utime+stime+cutime+cstime of the server process; for vsftpd
# plus cutime+cstime of its subreaper, once every session process is reaped.
ticks() { # pid first last: the sum of /proc/pid/stat fields first..last
  awk -v first="$2" -v last="$3" '{ sub(/^.*\) /, ""); for (i = first; i <= last; i++) sum += $(i - 2); print sum }' "/proc/$1/stat"
}
cpu() {
  local pid=$1 hz
  hz=$(getconf CLK_TCK)
  sleep 0.2
  if [ "$pid" = "$vs_pid" ]; then
    for _ in $(seq 200); do
      [ -z "$(pgrep -P "$vs_pid"; pgrep -P "$reaper_pid" | grep -vx "$vs_pid")" ] && break
      sleep 0.05
    done
    echo "$(( $(ticks "$vs_pid" 14 17) + $(ticks "$reaper_pid" 16 17) ))" "$hz" | awk '{ print $1 / $2 }'
  else
    echo "$(ticks "$pid" 14 17)" "$hz" | awk '{ print $1 / $2 }'
  fi
}

# signins port sessions workers: sign-ins per second (connect, AUTH TLS, USER/PASS, QUIT).
signins() {
  python3 - "$1" "$password" "$2" "$3" 2>>"$work/notes" <<'PY'
import ftplib, ssl, sys, time, threading
port, password, sessions, workers = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
left = sessions; failed = 0; lock = threading.Lock()
def worker():
    global left, failed
    while True:
        with lock:
            if left == 0: return
            left -= 1
        try:
            ftp = ftplib.FTP_TLS(context=ctx, timeout=30); ftp.connect("127.0.0.1", port); ftp.login("ghbench", password); ftp.quit()
        except Exception as error:
            with lock: failed += 1
            print(f"sign-in failed on port {port}: {error!r}", file=sys.stderr)
threads = [threading.Thread(target=worker) for _ in range(workers)]
start = time.monotonic(); [t.start() for t in threads]; [t.join() for t in threads]; wall = time.monotonic() - start
print(f"{(sessions - failed) / wall:.1f}")
PY
}

# Per-run results: wall seconds (transfers, camera trap), sign-ins/s, CPU seconds.
declare -A runs
record() { runs["$1|$2"]+="$3 "; }

# timed name server command...: settle, run the command, record its wall time.
timed() {
  local name=$1 server=$2 start end
  shift 2
  settle
  start=$(now); "$@"; end=$(now)
  record "$name" "$server" "$(elapsed "$start" "$end")"
}
# timed_cpu: as timed, plus the server's CPU seconds for the run.
timed_cpu() {
  local name=$1 server=$2 pid=$3 start end c0 c1
  shift 3
  settle
  c0=$(cpu "$pid"); start=$(now); "$@"; end=$(now); c1=$(cpu "$pid")
  record "$name" "$server" "$(elapsed "$start" "$end")"
  record "cpu-$name" "$server" "$(elapsed "$c0" "$c1")"
}

camera_trap() { # name server port: 20 sessions of the same user, 16 MiB each, at once
  timed "$1" "$2" parallel 20 "$3" up "$work/16m.bin" upcam
}

servers=(gatehouse:12121 vsftpd:12122)
for server in "${servers[@]}"; do
  name=${server%%:*}; port=${server##*:}
  echo "== $name: download sources and warm-up" >&2
  transfer "$port" up "$work/50m.bin" upwarm.bin   # warm caches and the TLS path once
  transfer "$port" up "$work/1g.bin" dl1g.bin
  parallel 20 "$port" up "$work/50m.bin" dl50m-
done
# Servers take turns within each round, so a noisy spell on the machine hits both.
for round in $(seq "$reps"); do
  for server in "${servers[@]}"; do
    name=${server%%:*}; port=${server##*:}
    pid=$gh_pid; [ "$name" = vsftpd ] && pid=$vs_pid
    echo "== round $round/$reps: $name" >&2
    if [ "$round" -le "$big_reps" ]; then
      timed_cpu up1g "$name" "$pid" transfer "$port" up "$work/1g.bin" up1g.bin
      timed_cpu down1g "$name" "$pid" transfer "$port" down - dl1g.bin $((1024 * mib))
    fi
    timed up20x50 "$name" parallel 20 "$port" up "$work/50m.bin" uppar-
    timed down20x50 "$name" parallel 20 "$port" down - dl50m- $((50 * mib))
    settle; record signins "$name" "$(signins "$port" 200 10)"
    camera_trap camera "$name" "$port"
  done
done

echo "== gatehouse restarted with GATEHOUSE_SIGNIN__PASSWORD_CACHE=0s: sign-ins, camera trap" >&2
stop_gatehouse
start_gatehouse GATEHOUSE_SIGNIN__PASSWORD_CACHE=0s
for _ in $(seq "$reps"); do
  settle; record signins-nocache gatehouse "$(signins 12121 200 10)"
  camera_trap camera-nocache gatehouse 12121
done
# vsftpd has no password cache: its column repeats its own runs of the same case.
runs["signins-nocache|vsftpd"]=${runs["signins|vsftpd"]}
runs["camera-nocache|vsftpd"]=${runs["camera|vsftpd"]}

# The table: medians; ratio >1 means gatehouse is better (faster, or less CPU).
python3 - "$reps" "$big_reps" "$(elapsed "$bench_start" "$(now)")" <<PY
import statistics, sys, textwrap
reps, big_reps, total = sys.argv[1], sys.argv[2], float(sys.argv[3])
runs = {$(for key in "${!runs[@]}"; do printf '"%s": [%s], ' "$key" "${runs[$key]// /, }"; done)}
def med(case, server): return statistics.median(runs[f"{case}|{server}"])
rows = [  # label, case, kind, MiB moved per run
    ("1 GiB upload", "up1g", "rate", 1024), ("1 GiB download", "down1g", "rate", 1024),
    ("20 x 50 MiB parallel upload", "up20x50", "rate", 1000), ("20 x 50 MiB parallel download", "down20x50", "rate", 1000),
    ("sign-ins/s (200 sessions, 10 workers)", "signins", "per-s", 0),
    ("  same, password cache off*", "signins-nocache", "per-s", 0),
    ("camera trap 20 x 16 MiB, same user", "camera", "wall", 320),
    ("  same, password cache off*", "camera-nocache", "wall", 320),
    ("CPU s/GiB, 1 GiB upload", "cpu-up1g", "cpu", 1024), ("CPU s/GiB, 1 GiB download", "cpu-down1g", "cpu", 1024),
]
def cell(kind, value, mib):
    if kind == "rate": return f"{mib / value:6.0f} MiB/s {value:6.2f} s"
    if kind == "wall": return f"{value:6.2f} s"
    if kind == "per-s": return f"{value:6.1f} /s"
    return f"{value * 1024 / mib:6.2f} s"
print(f"\nFTPS, gatehouse vs vsftpd (TLS, PROT P), medians of {reps} runs (1 GiB cases: {big_reps} runs); {total:.0f} s after the build")
print(f"{'case':<40}{'gatehouse':>22}{'vsftpd':>22}{'gh/vs':>8}")
for label, case, kind, mib in rows:
    g, v = med(case, "gatehouse"), med(case, "vsftpd")
    ratio = g / v if kind == "per-s" else v / g   # times and CPU: lower is better
    print(f"{label:<40}{cell(kind, g, mib):>22}{cell(kind, v, mib):>22}{ratio:7.2f}x")
print("gh/vs >1: gatehouse faster (or less CPU).  * gatehouse restarted with GATEHOUSE_SIGNIN__PASSWORD_CACHE=0s;")
print("  vsftpd has no password cache, its column repeats its own runs.")
print(textwrap.fill("runs: " + "; ".join(f"{k}: {' '.join(f'{x:g}' for x in v)}" for k, v in sorted(runs.items())), 110, subsequent_indent="  "))
PY
if [ -s "$work/notes" ]; then echo "notes:"; sort "$work/notes" | uniq -c; fi
