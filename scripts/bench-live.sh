#!/usr/bin/env bash
# Live classification benchmark on a veth pair whose capture end lives in a
# network namespace, fed with ndpi-trace (each pass with new IP addresses,
# so every pass's flows are new flows) by `netmamba replay` (default) or
# tcpreplay.
#
# 1. Sender comparison (needs tcpreplay; --no-compare skips it): both
#    senders at top speed for --seconds into `classify --no-model`.
# 2. Rate sweep: `netmamba classify -i` (the embedded default model, --model,
#    or --no-model for capture + flow table alone) while the trace is replayed
#    at each rate of --rates (Mb/s of frame bytes, or "topspeed"). Per rate:
#    achieved send rate, packets the capture's kernel socket saw, packets lost
#    before it (sent - seen), ring drops, flows shed, flows, flows classified
#    (and per second), latency p50/p99 (of the last second with traffic that
#    classified flows) and CPU per stage (% of one core: cap = capture workers:
#    ring, decode, flow table (which also times flows out while packets
#    arrive), byte views; exp = the once-a-second expiry clock; cls =
#    classifier worker threads in the model; oth = rest of the process, mostly
#    GC), averaged over the seconds traffic flowed.
# 3. --overload SECONDS: classify with a memory bound (--max-memory, default
#    1GiB, from which classify derives its flow-table cap; --max-flows
#    overrides the cap) and --queue while the trace is replayed at
#    --overload-mbps (>= 1 Gb/s: ~30k new flows/s, far beyond the model's
#    ~100 flows/s) for SECONDS, then at --recovery-mbps for --recovery
#    seconds; samples the classify process's VmRSS every second, reports its
#    peak against the bound and FAILS (exit 1) if it went above; checks that
#    every flow is reported (JSONL lines = flows, "shed":true lines = shed,
#    including flows shed at shutdown past --drain-timeout), that shedding
#    stops and latency comes back during recovery.
#
# Needs root and iproute2 (tcpreplay for --sender tcpreplay / the comparison):
#   apt-get install -y tcpreplay iproute2
# Usage: scripts/bench-live.sh [--model FILE | --no-model] [--rates "100 200 500 1000 topspeed"]
#          [--seconds S] [--workers W] [--threads T] [--sender replay|tcpreplay] [--no-compare]
#          [--no-sweep] [--overload SECONDS [--overload-mbps R] [--recovery S] [--recovery-mbps R]
#          [--max-memory BYTES] [--max-flows N]] [--queue N] [TRACE]
# --queue bounds the classifier queue in the sweep and the overload test (default 64: under
# overload the latency is about queue / classification rate, and it drains quickly after).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="" NOMODEL=0 RATES="100 200 500 1000 1500 2000 topspeed" SECS=8 WORKERS=1 THREADS=1
SENDER=replay COMPARE=1 SWEEP=1 OVERLOAD=0 OVER_MBPS=1000 RECOVERY=15 RECOVERY_MBPS=1
MAXFLOWS="" MAXMEM=1GiB QUEUE=64
TRACE=../shared/data/ndpi-trace.pcapng
while [ $# -gt 0 ]; do
	case "$1" in
	--model) MODEL=$2; shift 2 ;;
	--no-model) NOMODEL=1; shift ;;
	--rates) RATES=$2; shift 2 ;;
	--seconds) SECS=$2; shift 2 ;;
	--workers) WORKERS=$2; shift 2 ;;
	--threads) THREADS=$2; shift 2 ;;
	--sender) SENDER=$2; shift 2 ;;
	--no-compare) COMPARE=0; shift ;;
	--no-sweep) SWEEP=0; shift ;;
	--overload) OVERLOAD=$2; shift 2 ;;
	--overload-mbps) OVER_MBPS=$2; shift 2 ;;
	--recovery) RECOVERY=$2; shift 2 ;;
	--recovery-mbps) RECOVERY_MBPS=$2; shift 2 ;;
	--max-flows) MAXFLOWS=$2; shift 2 ;;
	--max-memory) MAXMEM=$2; shift 2 ;;
	--queue) QUEUE=$2; shift 2 ;;
	-*) echo "bench-live: unknown option $1" >&2; exit 2 ;;
	*) TRACE=$1; shift ;;
	esac
done
case "$SENDER" in replay | tcpreplay) ;; *) echo "bench-live: --sender replay or tcpreplay" >&2; exit 2 ;; esac
[ "$(id -u)" -eq 0 ] || { echo "bench-live: needs root (network namespace, AF_PACKET)" >&2; exit 1; }
command -v ip >/dev/null || { echo "bench-live: ip missing: apt-get install -y iproute2" >&2; exit 1; }
HAVE_TCPREPLAY=0
command -v tcpreplay >/dev/null && HAVE_TCPREPLAY=1
if [ "$SENDER" = tcpreplay ] && [ $HAVE_TCPREPLAY = 0 ]; then
	echo "bench-live: tcpreplay missing: apt-get install -y tcpreplay" >&2; exit 1
fi
[ $HAVE_TCPREPLAY = 1 ] || COMPARE=0
export PATH="/usr/local/go/bin:$PATH" CGO_ENABLED=0
TMP=$(mktemp -d)
NS=nmbench$$ TX=nmb0$$ RX=nmb1$$
CPID="" SAMPLER=""
cleanup() {
	[ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null || true
	[ -n "$CPID" ] && kill -INT "$CPID" 2>/dev/null && wait "$CPID" 2>/dev/null || true
	ip netns del "$NS" 2>/dev/null || true
	ip link del "$TX" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT
go build -o "$TMP/netmamba" ./cmd/netmamba
NM="$TMP/netmamba"
if [ $COMPARE = 1 ] || [ "$SENDER" = tcpreplay ]; then
	"$NM" bench classify --write-ethernet "$TMP/trace-eth.pcap" "$TRACE"
fi
MODELARGS=()
[ -n "$MODEL" ] && MODELARGS=(--model "$MODEL")
MODELNAME=${MODEL:-"embedded default"}
if [ $NOMODEL = 1 ]; then MODELARGS=(--no-model); MODELNAME="none (--no-model: capture + flow table + byte views)"; fi

ip netns add "$NS"
ip link add "$TX" type veth peer name "$RX" netns "$NS"
echo 1 >/proc/sys/net/ipv6/conf/"$TX"/disable_ipv6
ip netns exec "$NS" sh -c "echo 1 > /proc/sys/net/ipv6/conf/$RX/disable_ipv6"
ip link set "$TX" up
ip netns exec "$NS" ip link set "$RX" up
ip netns exec "$NS" ip link set lo up

# send SENDER RATE SECONDS LOG: replay the trace (new addresses every pass).
send() {
	local s=$1 r=$2 t=$3 log=$4
	if [ "$s" = replay ]; then
		local rate=(--mbps "$r")
		[ "$r" = topspeed ] && rate=(--topspeed)
		"$NM" replay -i "$TX" "${rate[@]}" --loop 0 --duration "${t}s" --unique-ip "$TRACE" >"$log" 2>&1 || true
	else
		local rate=(--mbps="$r")
		[ "$r" = topspeed ] && rate=(--topspeed)
		# -K: preloaded in memory like replay; stopped by SIGINT after t s (it prints its counters)
		timeout -s INT "$t" tcpreplay -K "${rate[@]}" --loop=0 --unique-ip -i "$TX" "$TMP/trace-eth.pcap" >"$log" 2>&1 || true
	fi
}
# sent SENDER LOG: "packets mbps pps" achieved by the sender.
sent() {
	if [ "$1" = replay ]; then
		sed -nE 's/^replay [^:]+: ([0-9]+) packets, [0-9]+ bytes in [0-9.]+ s: ([0-9.]+) Mb\/s, ([0-9]+) packets\/s.*/\1 \2 \3/p' "$2" | tail -1
	else
		local p m pps
		p=$(grep -oE 'Actual: [0-9]+ packets' "$2" | grep -oE '[0-9]+' | head -1)
		m=$(grep -oE 'Rated: [0-9.]+ Bps, [0-9.]+ Mbps' "$2" | grep -oE '[0-9.]+ Mbps' | grep -oE '[0-9.]+' | head -1)
		pps=$(grep -oE 'Mbps, [0-9.]+ pps' "$2" | grep -oE '[0-9.]+' | head -1)
		echo "${p:-?} ${m:-?} ${pps:-?}"
	fi
}
# start_classify LOG OUT ARGS...: live classify in the namespace; waits until it captures.
start_classify() {
	local log=$1 out=$2
	shift 2
	ip netns exec "$NS" "$NM" classify "${MODELARGS[@]}" -i "$RX" --workers "$WORKERS" --threads "$THREADS" \
		--stats-interval 1s -o "$out" "$@" 2>"$log" &
	CPID=$!
	for _ in $(seq 300); do
		grep -q 'memory bounds' "$log" 2>/dev/null && return 0
		kill -0 "$CPID" 2>/dev/null || { cat "$log" >&2; exit 1; }
		sleep 0.1
	done
	echo "bench-live: classify did not start" >&2; cat "$log" >&2; exit 1
}
# stop_classify: after the flows ended by the idle timeout, stop classify
# (it classifies what is still queued, then prints its summary).
stop_classify() {
	sleep 3
	kill -INT "$CPID" 2>/dev/null || true
	wait "$CPID" || true
	CPID=""
}
# periodic LOG [FROM [TO]]: the periodic stats lines FROM..TO (1-based) as
# "pkt/s flows/s classified_total cap% cls% oth% shed_d cls_d p50_d p99_d queue exp% live_flows"
# (_d: the interval's own)
periodic() {
	grep '^live .* pkts (' "$1" | sed -n "${2:-1},${3:-\$}p" | awk '{
		seen = 0
		for (i = 1; i <= NF; i++) {
			t = $i
			if (t == "pkts") pps = $(i + 1)
			else if (t == "live,") fr = $(i + 1)
			else if (t == "queue") q = $(i + 1)
			else if (t == "classified" && !seen) { ct = $(i + 1); seen = 1 }
			else if (t == "capture") cap = $(i + 1)
			else if (t == "expiry") ex = $(i + 1)
			else if (t == "flows" && $(i + 1) ~ /^\(/) { lv = $(i + 1); gsub(/[(]/, "", lv) }
			else if (t == "classifier") cls = $(i + 1)
			else if (t == "other") oth = $(i + 1)
			else if (t == "interval:") { sd = $(i + 2); ck = $(i + 4); p50 = $(i + 7); p99 = $(i + 9) }
		}
		gsub(/[(]/, "", pps); gsub(/\/s\),?/, "", fr); sub(/\/.*/, "", q)
		gsub(/[%,]/, "", ct); gsub(/[%,]/, "", cap); gsub(/[%,]/, "", ex); gsub(/[%,]/, "", cls); gsub(/[%,]/, "", oth)
		gsub(/,/, "", sd); gsub(/,/, "", ck)
		print pps, fr, ct, cap, cls, oth, sd, ck, p50, p99, q, ex, lv
	}'
}
kernel() { sed -nE 's/.*kernel: ([0-9]+) packets, ([0-9]+) drops.*/\1 \2/p' "$1" | tail -1; }
summary() { sed -nE 's/.* ([0-9]+) flows: ([0-9]+) classified, [0-9]+ unknown, ([0-9]+) shed \(([0-9]+) at shutdown\), .* ([0-9]+) evicted.*/\1 \2 \3 \5 \4/p' "$1" | tail -1; }

echo "bench-live: model $MODELNAME, threads $THREADS, workers $WORKERS, trace $TRACE, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"

if [ $COMPARE = 1 ]; then
	echo
	echo "== senders at top speed, $SECS s each, into classify --no-model (same run) =="
	printf "%-10s %10s %10s %10s %10s %8s\n" sender "sent_Mb/s" sent_pps sent_pkts kern_pkts k_drops
	for S in replay tcpreplay; do
		SAVE=("${MODELARGS[@]}")
		MODELARGS=(--no-model)
		start_classify "$TMP/cmp-$S.log" /dev/null --idle-timeout 1s
		send "$S" topspeed "$SECS" "$TMP/cmp-send-$S.log"
		stop_classify
		MODELARGS=("${SAVE[@]}")
		read -r sp sm spps < <(sent "$S" "$TMP/cmp-send-$S.log")
		read -r kp kd < <(kernel "$TMP/cmp-$S.log")
		printf "%-10s %10s %10s %10s %10s %8s\n" "$S" "$sm" "$spps" "$sp" "$kp" "$kd"
	done
fi

if [ $SWEEP = 1 ]; then
	echo
	echo "== rate sweep, sender $SENDER, $SECS s per rate (--idle-timeout 1s, --queue $QUEUE) =="
	printf "%8s %9s %9s %9s %6s %7s %7s %8s %9s %6s %9s %9s %5s %5s %5s %5s\n" \
		"rate" "sent_Mb/s" "sent_pkts" "kern_pkts" "lost" "k_drops" "shed" "flows" "classified" "cls/s" "p50" "p99" "cap%" "exp%" "cls%" "oth%"
	best=none bestall=none bestm=0 bestallm=0 lossy=""
	for R in $RATES; do
		LOG="$TMP/classify-$R.log"
		start_classify "$LOG" /dev/null --idle-timeout 1s --queue "$QUEUE"
		send "$SENDER" "$R" "$SECS" "$TMP/send-$R.log"
		stop_classify
		read -r sp sm _ < <(sent "$SENDER" "$TMP/send-$R.log")
		read -r kp kd < <(kernel "$LOG")
		read -r flows cls shed _ < <(summary "$LOG")
		# seconds with traffic: pkt/s above half the peak
		read -r clsps p50 p99 cap exp clsc oth < <(periodic "$LOG" | awk '
			{ pps[NR]=$1; line[NR]=$0; if ($1>mx) mx=$1 }
			END { for (i=1;i<=NR;i++) if (pps[i] > mx/2) { split(line[i], f, " "); n++; c+=f[8]; a+=f[4]; e+=f[12]; b+=f[5]; o+=f[6]; if (f[8] > 0) { p50=f[9]; p99=f[10] } }
			      if (p50 == "") { p50 = "-"; p99 = "-" }
			      if (n) printf "%.0f %s %s %.0f %.0f %.0f %.0f\n", c/n, p50, p99, a/n, e/n, b/n, o/n; else print "? ? ? ? ? ? ?" }')
		lost="?"
		[[ "$sp" =~ ^[0-9]+$ && "$kp" =~ ^[0-9]+$ ]] && lost=$((sp - kp))
		printf "%8s %9s %9s %9s %6s %7s %7s %8s %9s %6s %9s %9s %5s %5s %5s %5s\n" \
			"$R" "$sm" "$sp" "$kp" "$lost" "$kd" "$shed" "$flows" "$cls" "$clsps" "$p50" "$p99" "$cap" "$exp" "$clsc" "$oth"
		if [ "$lost" = 0 ] && [ "$kd" = 0 ]; then
			if awk -v a="$sm" -v b="$bestm" 'BEGIN { exit !(a > b) }'; then bestm=$sm best="$sm Mb/s (rate $R)"; fi
			if [ "$shed" = 0 ] && awk -v a="$sm" -v b="$bestallm" 'BEGIN { exit !(a > b) }'; then bestallm=$sm bestall="$sm Mb/s (rate $R)"; fi
		else
			lossy="$lossy $R"
		fi
	done
	echo "bench-live: highest send rate with no packet lost (sent = seen by the capture socket, 0 ring drops): $best; rates with losses:${lossy:- none}"
	if [ $NOMODEL = 0 ]; then
		echo "bench-live: highest send rate with also no flow shed (every flow classified): $bestall (paper: 261.87 Mb/s mean with an A30 GPU)"
	fi
fi

if [ "$OVERLOAD" -gt 0 ]; then
	echo
	CAPARGS=(--max-memory "$MAXMEM")
	[ -n "$MAXFLOWS" ] && CAPARGS+=(--max-flows "$MAXFLOWS")
	echo "== overload: $OVER_MBPS Mb/s for $OVERLOAD s, then $RECOVERY_MBPS Mb/s for $RECOVERY s (sender replay, ${CAPARGS[*]}, --queue $QUEUE, --idle-timeout 1s) =="
	LOG="$TMP/overload.log" OUT="$TMP/overload.jsonl"
	start_classify "$LOG" "$OUT" "${CAPARGS[@]}" --queue "$QUEUE" --idle-timeout 1s
	grep -E 'memory bound|warning' "$LOG"
	bound=$(sed -nE 's/.*memory bound [^(]*\(([0-9]+) bytes.*/\1/p' "$LOG" | head -1)
	cap=$(sed -nE 's/.*memory bounds: flow tables ([0-9]+) × ([0-9]+) flows.*/\1 \2/p' "$LOG" | head -1 | awk '{ print $1 * $2 }')
	rss0=$(awk '/VmRSS/{print $2}' /proc/"$CPID"/status)
	(while kill -0 "$CPID" 2>/dev/null; do awk '/VmRSS/{print $2}' /proc/"$CPID"/status 2>/dev/null; sleep 1; done) >"$TMP/rss.txt" &
	SAMPLER=$!
	send replay "$OVER_MBPS" "$OVERLOAD" "$TMP/over-send.log"
	n1=$(grep -c '^live .* pkts (' "$LOG" || true)
	send replay "$RECOVERY_MBPS" "$RECOVERY" "$TMP/rec-send.log"
	n2=$(grep -c '^live .* pkts (' "$LOG" || true)
	stop_classify
	kill "$SAMPLER" 2>/dev/null || true
	SAMPLER=""
	echo "sent, overload:  $(grep '^replay ' "$TMP/over-send.log" | tail -1)"
	echo "sent, recovery:  $(grep '^replay ' "$TMP/rec-send.log" | tail -1)"
	read -r kp kd < <(kernel "$LOG")
	read -r flows cls shed evicted shedshut < <(summary "$LOG")
	lines=$(wc -l <"$OUT")
	shedlines=$(grep -c '"shed":true' "$OUT" || true)
	peak=$(sort -n "$TMP/rss.txt" | tail -1)
	periodic "$LOG" 2 "$n1" | awk -v s="$OVERLOAD" '{ f+=$2; c+=$8; n++ } END { if (n) printf "overload phase: %.0f new flows/s offered, %.1f flows/s classified (capacity under this load): %.0fx capacity\n", f/n, c/n, (c>0 ? f/c : 0) }'
	echo "capture: kernel saw $kp packets, $kd ring drops"
	peaklive=$(periodic "$LOG" | awk '$13 > m { m = $13 } END { print m + 0 }')
	echo "memory: VmRSS $((rss0 / 1024)) MiB at start (model, 64 MiB capture ring), peak $((peak / 1024)) MiB (samples: $(wc -l <"$TMP/rss.txt")); peak live flows $peaklive of the ${cap:-?}-flow cap, queue cap $QUEUE"
	if [ "$peaklive" -gt 0 ]; then
		awk -v r0="$rss0" -v p="$peak" -v l="$peaklive" 'BEGIN { printf "memory: %.1f KB of RSS per live flow (GC slack included)\n", (p - r0) * 1.024 / l }'
	fi
	BOUND_OK=1
	if [ -n "$bound" ]; then
		awk -v p="$peak" -v b="$bound" 'BEGIN { printf "memory: peak VmRSS %.0f MiB against the --max-memory bound %.0f MiB (%.0f%%)\n", p / 1024, b / 1048576, 100 * p * 1024 / b }'
		if [ $((peak * 1024)) -gt "$bound" ]; then
			BOUND_OK=0
			echo "bench-live: FAIL: peak VmRSS $((peak / 1024)) MiB EXCEEDS the --max-memory bound $((bound / 1048576)) MiB" >&2
		fi
	else
		echo "memory: no --max-memory bound on the start-up line" >&2
		BOUND_OK=0
	fi
	echo "flows: $flows seen, $cls classified, $shed shed ($shedshut of them at shutdown, past --drain-timeout), $evicted evicted by the flow-table cap"
	grep -E 'shutting down|shutdown took' "$LOG" || true
	echo "results: $lines JSONL lines (flows: $flows), $shedlines with \"shed\":true (shed: $shed)"
	if [ "$lines" = "$flows" ] && [ "$shedlines" = "$shed" ]; then echo "every flow reported: yes"; else echo "every flow reported: NO"; fi
	echo "recovery, per second (interval counts; new flows/s, queue length, flows shed and classified, their latency):"
	printf "  %4s %8s %8s %6s %6s %10s %10s\n" s "flows/s" "queue" "shed" "cls" "p50" "p99"
	periodic "$LOG" $((n1 + 1)) "$n2" | awk '{ printf "  %4d %8s %8s %6s %6s %10s %10s\n", NR, $2, $11, $7, $8, $9, $10 }'
	echo "overload, last 3 s (interval counts):"
	periodic "$LOG" $((n1 - 2)) "$n1" | awk '{ printf "  %4s %8s %8s %6s %6s %10s %10s\n", "", $2, $11, $7, $8, $9, $10 }'
	grep -E 'cpu over|kernel:' "$LOG"
	[ "$BOUND_OK" = 1 ] || exit 1
fi
