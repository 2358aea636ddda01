#!/usr/bin/env bash
# End-to-end benchmark: the simulator serving as fast as it can, the
# connector reading it into files: and into sqlite: (with the disk spool,
# and with the spool in memory), and curl reading the same kind of stream
# as the yardstick. Prints records/s, MB/s and peak RSS for each, and the
# ratio to curl. Run it several times: this machine is noisy; quote medians.
#
# Usage: benches/e2e.sh [RECORDS]   (default 300000)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-300000}
BIN=target/release/gnip-connector
cargo build --release -q -p gnip-connector
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

start_sim() { # MAX_RECORDS [extra sim flags]
  # A fresh simulator per measurement: each gets a whole timeline.
  local max=$1; shift
  "$BIN" sim --listen 127.0.0.1:0 --max-records "$max" -q "$@" >"$WORK/sim.out" 2>"$WORK/sim.err" &
  SIM_PID=$!
  for _ in $(seq 100); do
    grep -q '^powertrack:' "$WORK/sim.out" 2>/dev/null && break
    sleep 0.05
  done
  URL=$(sed -n 's/^powertrack: //p' "$WORK/sim.out")
  USER_=$(sed -n 's/^user: //p' "$WORK/sim.out")
  PASS=$(sed -n 's/^password: //p' "$WORK/sim.out")
}
stop_sim() { kill "$SIM_PID" 2>/dev/null; wait "$SIM_PID" 2>/dev/null || true; }

peak_rss_mb() { awk '/Maximum resident set size/ {printf "%.1f", $6/1024}' "$1"; }

# curl: read N records, decompressing, to /dev/null. The simulator sends a
# Forced Disconnect after N records, which ends curl's download.
start_sim $((N + 1)) --fault "forced-disconnect-after=$N"
T0=$(date +%s.%N)
curl -s --compressed -u "$USER_:$PASS" "$URL" -o /dev/null --max-time 300 || true
T1=$(date +%s.%N)
stop_sim
CURL_RATE=$(python3 -c "print(round($N/($T1-$T0)))")
echo "curl           : $CURL_RATE records/s"

run_connector() { # label sink [extra flags]
  local label=$1 sink=$2; shift 2
  start_sim "$N"
  rm -rf "$WORK/out"; mkdir -p "$WORK/out"
  GNIP_PASSWORD="$PASS" /usr/bin/time -v "$BIN" run --url "$URL" --user "$USER_" \
    --sink "$sink" --data-dir "$WORK/out/state" --max-records "$N" -q "$@" \
    2>"$WORK/run.err" || { cat "$WORK/run.err"; exit 1; }
  stop_sim
  python3 - "$label" "$WORK/run.err" "$CURL_RATE" <<'PY'
import re, sys
label, path, curl = sys.argv[1], sys.argv[2], float(sys.argv[3])
text = open(path).read()
s = dict(kv.split("=", 1) for kv in re.search(r"^summary: (.*)$", text, re.M).group(1).split())
rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)
secs = float(s["elapsed"].rstrip("s"))
recs, mb = int(s["activities"]), int(s["bytes"]) / 1e6
print(f"{label:15}: {recs/secs:8.0f} records/s {mb/secs:7.1f} MB/s  "
      f"avg {int(s['bytes'])/max(1,int(s['records'])):.0f} B/record  "
      f"peak RSS {int(rss)/1024:.1f} MB  ratio to curl {recs/secs/curl:.2f}")
PY
}

run_connector "files"          "files:$WORK/out/files"
run_connector "files, memory"  "files:$WORK/out/files" --spool-in-memory
run_connector "sqlite"         "sqlite:$WORK/out/db.sqlite"
run_connector "sqlite, memory" "sqlite:$WORK/out/db.sqlite" --spool-in-memory
