#!/usr/bin/env bash
# Live classification benchmark: a veth pair whose capture end lives in a
# network namespace, fed by tcpreplay at increasing rates; reports the highest
# rate at which nothing was dropped (kernel ring drops + flows shed by the
# classifier queue), with CPU use, latency and flows/s at each rate.
#
# Needs root, tcpreplay and iproute2 (apt-get install -y tcpreplay iproute2).
# Usage: scripts/bench-live.sh [--model FILE] [--rates "5 10 20 50"] [--seconds S] [--workers W] [TRACE]
# Without --model a RANDOMLY INITIALISED default-size NetMamba is used (same
# cost as a trained one; the labels are meaningless).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="" RATES="2 5 10 20 50 100 200" SECONDS_PER_RATE=8 WORKERS=1
TRACE=../shared/data/ndpi-trace.pcapng
while [ $# -gt 0 ]; do
	case "$1" in
	--model) MODEL=$2; shift 2 ;;
	--rates) RATES=$2; shift 2 ;;
	--seconds) SECONDS_PER_RATE=$2; shift 2 ;;
	--workers) WORKERS=$2; shift 2 ;;
	*) TRACE=$1; shift ;;
	esac
done
[ "$(id -u)" -eq 0 ] || { echo "bench-live: needs root (network namespace, AF_PACKET)" >&2; exit 1; }
for t in tcpreplay ip; do
	command -v $t >/dev/null || { echo "bench-live: $t missing: apt-get install -y tcpreplay iproute2" >&2; exit 1; }
done
export PATH="/usr/local/go/bin:$PATH" CGO_ENABLED=0
TMP=$(mktemp -d)
NS=nmbench$$
cleanup() { ip netns del "$NS" 2>/dev/null || true; ip link del nmb0$$ 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
go build -o "$TMP/netmamba" ./cmd/netmamba
NM="$TMP/netmamba"
"$NM" bench classify --write-ethernet "$TMP/trace-eth.pcap" "$TRACE"
if [ -z "$MODEL" ]; then
	MODEL="$TMP/random.safetensors"
	"$NM" bench classify --save-random-model "$MODEL"
fi
ip netns add "$NS"
ip link add nmb0$$ type veth peer name nmb1$$
ip link set nmb1$$ netns "$NS"
ip link set nmb0$$ up
ip netns exec "$NS" ip link set nmb1$$ up
ip netns exec "$NS" ip link set lo up
echo "bench-live: model $MODEL, trace $TRACE (Ethernet copy $(stat -c %s "$TMP/trace-eth.pcap") bytes), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%8s %10s %10s %8s %8s %8s %10s %10s %9s %9s %7s\n" "Mb/s" "sent_pkts" "kern_pkts" "k_drops" "shed" "flows" "classified" "flows/s" "p50" "p99" "cpu%"
best=0
for R in $RATES; do
	LOG="$TMP/classify-$R.log"
	ip netns exec "$NS" /usr/bin/env time -f "CPU %U %S %e" "$NM" classify --model "$MODEL" -i nmb1$$ --workers "$WORKERS" \
		--duration $((SECONDS_PER_RATE + 4))s --stats-interval 2s --idle-timeout 5s >/dev/null 2>"$LOG" &
	CPID=$!
	sleep 2
	timeout -s INT $((SECONDS_PER_RATE + 1)) tcpreplay -q --mbps="$R" --loop=0 -i nmb0$$ "$TMP/trace-eth.pcap" >"$TMP/replay-$R.log" 2>&1 || true
	wait $CPID || true
	sent=$(grep -oE 'Actual: [0-9]+ packets' "$TMP/replay-$R.log" | grep -oE '[0-9]+' | head -1 || echo "?")
	kp=$(grep -oE 'kernel: [0-9]+ packets' "$LOG" | grep -oE '[0-9]+' || echo "?")
	kd=$(grep -oE 'kernel: [0-9]+ packets, [0-9]+ drops' "$LOG" | grep -oE '[0-9]+ drops' | grep -oE '[0-9]+' || echo "?")
	flows=$(grep -oE '[0-9]+ flows: ' "$LOG" | grep -oE '[0-9]+' || echo "?")
	cls=$(grep -oE 'flows: [0-9]+ classified' "$LOG" | grep -oE '[0-9]+' || echo "?")
	shed=$(grep -oE 'unknown, [0-9]+ shed' "$LOG" | grep -oE '[0-9]+' || echo "?")
	# latency while traffic flows: the last periodic line before shutdown
	# (the final summary also counts the flows flushed at shutdown)
	steady=$(grep '^live .* pkts' "$LOG" | tail -2 | head -1 || true)
	p50=$(echo "$steady" | grep -oE 'p50 [^ ]+' | awk '{print $2}' || echo "?")
	p99=$(echo "$steady" | grep -oE 'p99 [^ ]+' | awk '{print $2}' || echo "?")
	read -r _ u s e < <(grep '^CPU' "$LOG" || echo "CPU 0 0 1")
	cpu=$(awk -v u="$u" -v s="$s" -v e="$e" 'BEGIN{printf "%.0f", 100*(u+s)/e}')
	fps=$(awk -v c="$cls" -v t="$SECONDS_PER_RATE" 'BEGIN{if (c+0==c) printf "%.0f", c/t; else print "?"}')
	printf "%8s %10s %10s %8s %8s %8s %10s %10s %9s %9s %7s\n" "$R" "$sent" "$kp" "$kd" "$shed" "$flows" "$cls" "$fps" "$p50" "$p99" "$cpu"
	if [ "$kd" = "0" ] && [ "$shed" = "0" ]; then best=$R; fi
done
echo "bench-live: highest rate with zero drops (kernel and shed): $best Mb/s (paper: 261.87 Mb/s mean with an A30 GPU)"
