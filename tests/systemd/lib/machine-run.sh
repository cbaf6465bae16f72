#!/bin/bash
# machine-run.sh DIR ROOTFS NETNS NAME [NSPAWN-ARG...]: boot one machine
# (systemd as PID 1) with systemd-nspawn, and boot it again after a reboot.
# Run by machine.sh inside a private mount namespace (unshare -m), so that
# every mount made here (the tmpfs nspawn wants on /run/systemd/nspawn, the
# overlay root) disappears with the last process of the namespace: the host
# keeps no mount even after a SIGKILL.
#
# DIR/upper, DIR/work: the machine's writable layer over ROOTFS (kept across
#   reboots, so a reboot finds what was installed)
# DIR/nspawn.pid: the current systemd-nspawn process
# The machine joins the network namespace /run/netns/NETNS (made by net.sh,
# its eth0 already addressed). Exit status: the last nspawn's; 133 (a reboot
# asked from inside) starts it again.
set -u
dir=$1 rootfs=$2 netns=$3 name=$4
shift 4
mount --make-rprivate / || exit 1
mkdir -p /run/systemd/nspawn "$dir/upper" "$dir/work" "$dir/root" || exit 1
# systemd-nspawn refuses to start when /run/systemd/nspawn is not writable
# in its own way; a private tmpfs is enough.
mount -t tmpfs -o mode=0755 drv-nspawn /run/systemd/nspawn || exit 1
mount -t overlay drv-machine \
	-o "lowerdir=$rootfs,upperdir=$dir/upper,workdir=$dir/work" "$dir/root" || exit 1
boots=0
while :; do
	boots=$((boots + 1))
	echo "---- machine-run: boot $boots of $name" >&2
	systemd-nspawn -q -b -D "$dir/root" -M "$name" --hostname="$name" \
		--register=no --keep-unit --network-namespace-path="/run/netns/$netns" \
		"$@" </dev/null &
	echo $! >"$dir/nspawn.pid"
	wait $!
	rc=$?
	rm -f "$dir/nspawn.pid"
	echo "---- machine-run: $name exited $rc" >&2
	# 133: the machine asked for a reboot (systemctl reboot inside)
	[ "$rc" = 133 ] || exit "$rc"
done
