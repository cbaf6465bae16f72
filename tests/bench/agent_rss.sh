#!/usr/bin/env bash
# bench: drover-agent's memory. A real drover-agent, enrolled with a real
# droverd on 127.0.0.1, idle; then ROUNDS instructions (RUN_HOOK /bin/true,
# each through the real executor: persisted, forked, reported) one after the
# other. RSS (and its private part, RssAnon, and Pss) idle, after the first
# round, every 10 rounds and at the end; the binary's size.
#
#   agent_rss.sh [ROUNDS]     (default 100) -> $BENCH_OUT/agent_rss.json
# AGENT_SMAPS=FILE / AGENT_SMAPS_END=FILE keep the agent's /proc/PID/smaps
# idle / after the last round: diff them to see which mapping grew. The
# JSON also has /proc/PID/smaps_rollup idle and after (rollup_idle,
# rollup_after: Rss, Pss, Anonymous, Private_Dirty... in kB) and the agent's
# thread count.
TEST_NAME=bench_agent_rss
source "$(dirname "$0")/bench_lib.sh"
ROUNDS=${1:-100}

coord_init --enroll-token
coord_production_timers
coord_start
agent_init a1 --enroll-token-file "$COORD/enroll.token"
# AGENT_ENV="VAR=VALUE ..." runs the agent with that environment (e.g. MALLOC_ARENA_MAX=1)
read -ra agent_env <<<"${AGENT_ENV:-}"
AGENT_WRAP=(env "${agent_env[@]}")
agent_start a1
connected() { [[ $(agent_state a1) == connected ]]; }
wait_for 30 connected || fail "agent not connected"
PID=${PIDS[a1]}
# idle: let the first long poll settle, then sample
stable() { [[ $(coord_stat .polls) -ge 1 ]]; }
wait_for 10 stable || fail "no poll"
sleep 2
# smaps_rollup as a JSON object of its kB fields
rollup() { awk '$3 == "kB" { sub(":", "", $1); printf "%s\"%s\": %s", n++ ? ", " : "{", $1, $2 } END { print "}" }' "/proc/$1/smaps_rollup"; }
idle_rss=$(proc_field "$PID" VmRSS) idle_anon=$(proc_field "$PID" RssAnon) idle_pss=$(proc_pss "$PID")
idle_rollup=$(rollup "$PID") idle_threads=$(proc_field "$PID" Threads)
echo "idle: VmRSS $idle_rss kB, RssAnon $idle_anon kB, Pss $idle_pss kB"
# AGENT_SMAPS=FILE: keep the idle agent's /proc/PID/smaps (what each mapping costs)
[[ -z ${AGENT_SMAPS:-} ]] || cp "/proc/$PID/smaps" "$AGENT_SMAPS"

done_ok() { [[ $(sql "select count(*) from events where kind='report' and agent_id='a1' and json_extract(data, '\$.step_id')='$1' and json_extract(data, '\$.result')='succeeded'") == 1 ]]; }
series='[]'
t0=$(date +%s%N)
for ((i = 1; i <= ROUNDS; i++)); do
	reply=$(instruct a1 "rss-$i" /bin/true)
	[[ $(jq -r .queued <<<"$reply") == true ]] || fail "queue rss-$i: $reply"
	wait_for 30 done_ok "rss-$i" || fail "rss-$i not reported succeeded"
	if ((i == 1 || i % 10 == 0)); then
		series=$(jq -c --argjson i "$i" --argjson r "$(proc_field "$PID" VmRSS)" \
			--argjson a "$(proc_field "$PID" RssAnon)" '. + [{round: $i, rss_kb: $r, anon_kb: $a}]' <<<"$series")
	fi
done
elapsed_ms=$((($(date +%s%N) - t0) / 1000000))
sleep 1
# AGENT_SMAPS_END=FILE: the same after the last round (diff the two: what grew)
[[ -z ${AGENT_SMAPS_END:-} ]] || cp "/proc/$PID/smaps" "$AGENT_SMAPS_END"
end_rss=$(proc_field "$PID" VmRSS) end_anon=$(proc_field "$PID" RssAnon) end_pss=$(proc_pss "$PID")
end_rollup=$(rollup "$PID") end_threads=$(proc_field "$PID" Threads)
echo "after $ROUNDS rounds: VmRSS $end_rss kB, RssAnon $end_anon kB, Pss $end_pss kB ($elapsed_ms ms)"
echo "threads: $idle_threads idle, $end_threads after; smaps_rollup idle $idle_rollup"
echo "smaps_rollup after $end_rollup"
r10=$(jq '[.[] | select(.round == 10)][0].rss_kb // 0' <<<"$series")

strip -o "$TMP/agent.stripped" "$AGENT"
size_file=$(stat -c %s "$AGENT")
size_stripped=$(stat -c %s "$TMP/agent.stripped")
read -r text data bss _ < <(size "$AGENT" | tail -n 1)
libs=$(ldd "$AGENT" | grep -c '=>')
bench_json agent_rss "$(jq -n --argjson rounds "$ROUNDS" \
	--argjson idle_rss "$idle_rss" --argjson idle_anon "$idle_anon" --argjson idle_pss "$idle_pss" \
	--argjson end_rss "$end_rss" --argjson end_anon "$end_anon" --argjson end_pss "$end_pss" \
	--argjson r10 "$r10" --argjson series "$series" --argjson ms "$elapsed_ms" \
	--argjson ri "$idle_rollup" --argjson ra "$end_rollup" \
	--argjson ti "$idle_threads" --argjson ta "$end_threads" \
	--argjson file "$size_file" --argjson stripped "$size_stripped" \
	--argjson text "$text" --argjson data "$data" --argjson bss "$bss" --argjson libs "$libs" \
	'{rounds: $rounds, idle: {rss_kb: $idle_rss, anon_kb: $idle_anon, pss_kb: $idle_pss},
	  after: {rss_kb: $end_rss, anon_kb: $end_anon, pss_kb: $end_pss},
	  growth_kb: ($end_rss - $idle_rss), growth_after_round10_kb: ($end_rss - $r10),
	  rounds_ms: $ms, series: $series, rollup_idle: $ri, rollup_after: $ra,
	  threads: {idle: $ti, after: $ta},
	  binary: {file_bytes: $file, stripped_bytes: $stripped, text: $text, data: $data,
	           bss: $bss, shared_libs: $libs}}')"
ok "agent RSS idle $idle_rss kB, after $ROUNDS instructions $end_rss kB; binary $size_stripped bytes stripped"
