# shellcheck shell=bash
# ports.sh: ports on 127.0.0.1 for the tests that run daemons there (source
# me; link_lib.sh and agent_lib.sh do).
#
#   pick_port [NOT...]   a free port in 20000-32599, reserved for this test
#   pick_run N           a base B with B+1..B+N free and reserved
#   port_release         drop this test's reservations (the libs' cleanup)
#
# "Nothing listens there now" alone is not enough: tests run side by side
# (ctest -j, and other checkouts on the same machine) and pick from the same
# range, and a port is bound only later, by a daemon or a service that a
# deployment starts many seconds after the pick (it_deploy_example's
# web-dashboard once found its port taken by another test's daemon:
# "Address already in use", and the deployment rolled back). So a test
# reserves each port it picks in PORT_DIR, one file per port naming the
# test's shell; a reservation whose shell is gone is free again. The range is
# below the kernel's ephemeral ports, so no outgoing connection takes them.

PORT_DIR=${DROVER_PORT_DIR:-/tmp/drover-test-ports}
PORT_OWNER=$$

# port_listening PORT: something accepts connections on 127.0.0.1:PORT.
port_listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# port_claim PORT: reserve PORT for this test; fails if another live test
# holds it or something listens there.
port_claim() {
	local f=$PORT_DIR/$1
	mkdir -p "$PORT_DIR" 2>/dev/null || return 1
	(
		flock 9 || exit 1
		if [[ -e $f ]]; then
			owner=$(cat "$f" 2>/dev/null) || owner=
			[[ $owner == "$PORT_OWNER" ]] && exit 1 # picked already: a second port
			if [[ $owner =~ ^[0-9]+$ ]] && kill -0 "$owner" 2>/dev/null; then exit 1; fi
		fi
		port_listening "$1" && exit 1
		echo "$PORT_OWNER" >"$f"
	) 9>>"$PORT_DIR/.lock"
}

port_unclaim() { rm -f "$PORT_DIR/$1"; }

port_release() {
	local f
	[[ -d $PORT_DIR ]] || return 0
	for f in "$PORT_DIR"/[0-9]*; do
		[[ -f $f && $(cat "$f" 2>/dev/null) == "$PORT_OWNER" ]] && rm -f "$f"
	done
	return 0
}

pick_port() {
	local p i
	for ((i = 0; i < 500; i++)); do
		p=$((20000 + RANDOM % 12600))
		[[ " $* " == *" $p "* ]] && continue
		if port_claim "$p"; then
			echo "$p"
			return 0
		fi
	done
	echo "${TEST_NAME:-test}: FAIL: no free port in 20000-32599" >&2
	exit 1
}

pick_run() {
	local n=$1 b i k try
	for ((try = 0; try < 50; try++)); do
		b=$((20000 + RANDOM % (12600 - n)))
		for ((i = 1; i <= n; i++)); do
			port_claim $((b + i)) && continue
			for ((k = 1; k < i; k++)); do port_unclaim $((b + k)); done
			continue 2
		done
		echo "$b"
		return 0
	done
	echo "${TEST_NAME:-test}: FAIL: no $n free ports in a row in 20000-32599" >&2
	exit 1
}
