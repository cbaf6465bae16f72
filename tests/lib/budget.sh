# shellcheck shell=sh
# budget.sh: a test script ends itself, cleanly, before CTest kills it.
#
# CTest kills a test that outlives its TIMEOUT with SIGKILL: no trap runs, so
# what the script started (network namespaces, droverd, agents, a registry,
# HAProxy, PostgreSQL) stays and loads every test after it. A script that
# sources this file and calls budget_start gets a watchdog that, once the
# budget is spent, sends the script SIGTERM. The TERM trap installed here
# prints
#
#   NAME: timed out after N s during STEP (in FUNCTION, called at FILE:LINE)
#
# and exits 143, so the script's EXIT trap cleans up and the test fails with
# that message. The budget: DROVER_TEST_BUDGET seconds when set, else the
# CTest TIMEOUT (the CMake helper drv_test_timeout hands it over in
# DROVER_TEST_TIMEOUT) less a margin for the cleanup, max(30 s, 5 %). Neither
# set (a script run by hand): no watchdog, only the traps.
#
# A trap runs only once the foreground command ends: a script blocked in one
# (a long `sleep`, `drover deploy --wait`) has its children sent SIGTERM 3 s
# after its own, and SIGKILL 3 s after that, so its trap gets to run. The
# script's own processes die with that; its cleanup stops the rest.
#
#   budget_start       the INT and TERM traps, and the watchdog (one per
#                      test: a script run by a test script that has one
#                      starts none; DROVER_BUDGET_PID names the owner)
#   budget_traps       the INT (exit 130) and TERM (message, exit 143) traps
#                      alone, for a library that sets its traps again later
#   budget_step TEXT   what the script does now, for the message
#   budget_passed MSG  the last check that passed, for the message
#   budget_end         first thing in the EXIT cleanup: resets the EXIT and
#                      INT traps, and no SIGTERM from the watchdog interrupts
#                      the cleanup (one that comes is reported and ignored)
#
# POSIX sh (the plan and packaging tests run under dash); bash adds the
# function stack to the message.

[ -z "${_BUDGET_LOADED:-}" ] || return 0
_BUDGET_LOADED=1
BUDGET_STEP=
BUDGET_LAST=
BUDGET_SECONDS=
BUDGET_DIR=

budget_step() { BUDGET_STEP=$*; }
budget_passed() { BUDGET_LAST=$*; }

# _budget_seconds: the budget, or nothing when there is none.
_budget_seconds() {
	if [ -n "${DROVER_TEST_BUDGET:-}" ]; then
		echo "$DROVER_TEST_BUDGET"
	elif [ -n "${DROVER_TEST_TIMEOUT:-}" ]; then
		_bm=$((DROVER_TEST_TIMEOUT / 20))
		[ "$_bm" -ge 30 ] || _bm=30
		[ "$DROVER_TEST_TIMEOUT" -gt $((_bm + 10)) ] || _bm=$((DROVER_TEST_TIMEOUT / 2))
		echo $((DROVER_TEST_TIMEOUT - _bm))
	fi
}

budget_traps() {
	trap 'exit 130' INT
	trap '_budget_on_term' TERM
}

budget_start() {
	budget_traps
	[ -z "${DROVER_BUDGET_PID:-}" ] || return 0
	BUDGET_SECONDS=$(_budget_seconds)
	[ -n "$BUDGET_SECONDS" ] || return 0
	case $BUDGET_SECONDS in
	*[!0-9]* | 0)
		echo "budget: bad budget '$BUDGET_SECONDS' (seconds)" >&2
		return 2
		;;
	esac
	BUDGET_DIR=$(mktemp -d "${TMPDIR:-/tmp}/drover-budget.XXXXXX") || return 1
	DROVER_BUDGET_PID=$$
	export DROVER_BUDGET_PID
	# Twice forked: not a job of the script (a bare `wait` must not wait for
	# it) and not holding CTest's output pipes (CTest reads them to the end).
	(_budget_watch "$$" "$BUDGET_SECONDS" "$BUDGET_DIR" &)
}

budget_end() {
	trap - EXIT INT
	trap '_budget_late' TERM
	[ -z "$BUDGET_DIR" ] || : >"$BUDGET_DIR/ending" 2>/dev/null || true
}

_budget_late() {
	echo "${TEST_NAME:-${0##*/}}: budget: SIGTERM during the cleanup, ignored" >&2
}

# _budget_where: the bash function stack at the trap, innermost first.
_budget_where() {
	# shellcheck disable=SC3028,SC3054
	if [ -n "${BASH_VERSION:-}" ] && [ "${#FUNCNAME[@]}" -gt 3 ]; then
		_bw=" (in" _bi=2
		while [ "$_bi" -lt $((${#FUNCNAME[@]} - 1)) ]; do
			_bw="$_bw ${FUNCNAME[$_bi]}, called at ${BASH_SOURCE[$((_bi + 1))]##*/}:${BASH_LINENO[$_bi]};"
			_bi=$((_bi + 1))
		done
		printf '%s)' "${_bw%;}"
	fi
}

_budget_on_term() {
	_bs=${BUDGET_STEP:-}
	if [ -n "$BUDGET_LAST" ]; then
		_bs="${_bs:-the step}${_bs:+,} after \"$BUDGET_LAST\""
	fi
	if [ -n "$BUDGET_DIR" ] && [ -e "$BUDGET_DIR/fired" ]; then
		: >"$BUDGET_DIR/term" 2>/dev/null
		echo "${TEST_NAME:-${0##*/}}: timed out after $BUDGET_SECONDS s during ${_bs:-its first step}$(_budget_where)" >&2
		[ ! -e "$BUDGET_DIR/children" ] ||
			echo "${TEST_NAME:-${0##*/}}: (it was blocked in a command: its child processes were sent $(cat "$BUDGET_DIR/children"))" >&2
	else
		echo "${TEST_NAME:-${0##*/}}: SIGTERM during ${_bs:-its first step}$(_budget_where)" >&2
	fi
	exit 143
}

# _budget_alive PID START: PID still runs the process that started at START
# (field 22 of /proc/PID/stat; a PID is reused), and is not a zombie.
_budget_alive() {
	_bst=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	_bst=${_bst##*) }
	# shellcheck disable=SC2086
	set -- "$1" "$2" $_bst
	[ "$3" != Z ] && [ "${22}" = "$2" ]
}

_budget_starttime() {
	_bst=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	_bst=${_bst##*) }
	# shellcheck disable=SC2086
	set -- $_bst
	echo "${20}"
}

# _budget_signal_children PID SIG: signal PID's children (not PID).
_budget_signal_children() {
	for _bc in $(ps -o pid= --ppid "$1" 2>/dev/null); do
		kill "-$2" "$_bc" 2>/dev/null
	done
}

# _budget_watch PID SECONDS DIR: the watchdog (runs detached).
_budget_watch() {
	_wpid=$1 _wdir=$3
	# Hold none of the script's files (CTest's output pipes, a lock, a pipe
	# another process waits on) past it. exec: dash saves no copies then.
	exec </dev/null >/dev/null 2>&1
	for _wfd in /proc/self/fd/*; do
		_wfd=${_wfd##*/}
		case $_wfd in
		[3-9]) eval "exec $_wfd>&-" ;;
		[1-9][0-9] | 1[0-9][0-9] | 2[0-4][0-9] | 25[0-4])
			[ -z "${BASH_VERSION:-}" ] || eval "exec $_wfd>&-"
			;;
		esac
	done 2>/dev/null
	_wstart=$(_budget_starttime "$_wpid") || return 0
	_wend=$(($(date +%s) + $2))
	while _budget_alive "$_wpid" "$_wstart"; do
		if [ "$(date +%s)" -ge "$_wend" ] && [ ! -e "$_wdir/ending" ] && [ ! -e "$_wdir/fired" ]; then
			: >"$_wdir/fired"
			kill -TERM "$_wpid" 2>/dev/null
			for _wsig in TERM KILL; do
				_wi=0
				while [ "$_wi" -lt 3 ] && [ ! -e "$_wdir/term" ] && _budget_alive "$_wpid" "$_wstart"; do
					sleep 1
					_wi=$((_wi + 1))
				done
				if [ -e "$_wdir/term" ] || [ -e "$_wdir/ending" ] ||
					! _budget_alive "$_wpid" "$_wstart"; then
					break
				fi
				echo "SIG$_wsig" >"$_wdir/children"
				_budget_signal_children "$_wpid" "$_wsig"
			done
		fi
		sleep 1
	done
	rm -rf "$_wdir"
}
