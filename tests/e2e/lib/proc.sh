# shellcheck shell=bash
# proc.sh: processes of an e2e run, started in a namespace and signalled by
# their own PID only (never by name).
#
#   proc_start NAME HOST CMD...   start CMD in HOST's namespace in the
#                 background (stdin /dev/null, stdout+stderr appended to
#                 $E2E_RUN/logs/NAME.log, all signals at their defaults); record
#                 "NAME PID START HOST" (START: the process's start time, so a
#                 reused PID is never signalled). Prints nothing; the PID is
#                 proc_pid NAME. A NAME whose process is gone may be started
#                 again (restart); a live one is refused. Tip: env -C DIR CMD
#                 for a working directory, env K=V CMD for the environment.
#   proc_pid NAME          the PID (fails when unknown)
#   proc_alive NAME        true while it runs (a zombie or a stopped process:
#                          stopped counts as alive)
#   proc_signal NAME SIG   kill -SIG that PID, if it is still the same process
#   proc_wait_gone NAME [TIMEOUT_S=10]   bounded wait until it has exited;
#                          reaps it and sets PROC_STATUS to its exit status
#                          when it was our child
#   proc_stop NAME [GRACE_S=5]   SIGCONT+SIGTERM, then SIGKILL after GRACE_S
#   proc_stop_all          proc_stop every live process, newest first
#   proc_log NAME          path of its log file

PROC_STATUS=

_proc_rec() {
	local f=$E2E_RUN/procs/$1
	[[ -n ${E2E_RUN:-} && -f $f ]] || {
		echo "e2e: no process named '$1'" >&2
		return 1
	}
	cat "$f"
}

proc_log() { echo "$E2E_RUN/logs/$1.log"; }

proc_pid() {
	local f
	f=$(_proc_rec "$1") || return 1
	echo "${f%% *}"
}

proc_alive() {
	local f
	f=$(_proc_rec "$1") || return 1
	read -ra f <<<"$f"
	_e2e_same_proc "${f[0]}" "${f[1]}"
}

proc_start() {
	local name=${1:?usage: proc_start NAME HOST CMD...} host=${2:?usage: proc_start NAME HOST CMD...}
	local ns pid start log
	shift 2
	(($# > 0)) || {
		echo "usage: proc_start NAME HOST CMD..." >&2
		return 2
	}
	[[ $name =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ ]] || {
		echo "e2e: proc_start: bad name '$name'" >&2
		return 2
	}
	if [[ -f $E2E_RUN/procs/$name ]] && proc_alive "$name"; then
		echo "e2e: proc_start: '$name' is already running (PID $(proc_pid "$name"))" >&2
		return 1
	fi
	ns=$(ns_of "$host") || return 2
	log=$(proc_log "$name")
	echo "---- $(date -u +%H:%M:%S.%N | cut -c1-12) start in $host: $*" >>"$log"
	# ip netns exec and env both exec: $! is the PID of CMD itself.
	ip netns exec "$ns" env --default-signal "$@" >>"$log" 2>&1 </dev/null &
	pid=$!
	start=$(_e2e_starttime "$pid") || start=0
	_proc_record "$name" "$pid" "$start" "$host"
}

# _proc_record NAME PID START HOST: remember a process (also one started by
# someone else, e.g. the registry helper) so teardown stops it.
_proc_record() {
	echo "$2 $3 $4" >"$E2E_RUN/procs/$1"
	e2e_state_add proc "$1 $2 $3 $4"
}

proc_signal() {
	local f
	f=$(_proc_rec "$1") || return 1
	read -ra f <<<"$f"
	_e2e_same_proc "${f[0]}" "${f[1]}" || {
		echo "e2e: proc_signal: '$1' (PID ${f[0]}) is not running" >&2
		return 1
	}
	kill "-${2#-}" "${f[0]}"
}

# Reap PID if it is our child; PROC_STATUS gets its status.
_proc_reap() {
	PROC_STATUS=
	if wait "$1" 2>/dev/null; then PROC_STATUS=0; else PROC_STATUS=$?; fi
	[[ $PROC_STATUS == 127 ]] && PROC_STATUS= # not our child
	return 0
}

proc_wait_gone() {
	local f
	f=$(_proc_rec "$1") || return 1
	read -ra f <<<"$f"
	if wait_for "$1 (PID ${f[0]}) to exit" "${2:-10}" _proc_gone "${f[0]}" "${f[1]}"; then
		_proc_reap "${f[0]}"
		return 0
	fi
	return 1
}

_proc_gone() { ! _e2e_same_proc "$1" "$2"; }

# _proc_kill_rec PID START NAME: TERM, up to 5 s, KILL; only that process.
_proc_kill_rec() {
	local pid=$1 start=$2 i
	_e2e_same_proc "$pid" "$start" || {
		wait "$pid" 2>/dev/null
		return 0
	}
	kill -CONT "$pid" 2>/dev/null
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < ${3:-50}; i++)); do
		_e2e_same_proc "$pid" "$start" || break
		sleep 0.1
	done
	if _e2e_same_proc "$pid" "$start"; then
		kill -KILL "$pid" 2>/dev/null
		for ((i = 0; i < 50; i++)); do
			_e2e_same_proc "$pid" "$start" || break
			sleep 0.1
		done
	fi
	wait "$pid" 2>/dev/null
	return 0
}

proc_stop() {
	local f grace=${2:-5}
	f=$(_proc_rec "$1") || return 1
	read -ra f <<<"$f"
	_proc_kill_rec "${f[0]}" "${f[1]}" "$((grace * 10))"
}

proc_stop_all() {
	local f
	[[ -n ${E2E_RUN:-} && -d $E2E_RUN/procs ]] || return 0
	while IFS= read -r f; do
		proc_stop "${f##*/}"
	done < <(ls -t "$E2E_RUN/procs")
}
