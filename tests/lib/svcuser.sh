# shellcheck shell=bash
# svcuser.sh: the unprivileged user that services run as by default
# (drover-svc, agent/privs.h). The drover-agent package creates it; tests and
# the demo run from the build tree, so they make it here (as root, once per
# machine; a lock keeps parallel tests from racing useradd).
#
#   svcuser_ensure    create drover-svc unless it exists (no-op when not root)

DROVER_SVC_USER=drover-svc

svcuser_ensure() {
	getent passwd "$DROVER_SVC_USER" >/dev/null && return 0
	((EUID == 0)) || return 0
	(
		flock -w 30 9 || exit 1
		getent passwd "$DROVER_SVC_USER" >/dev/null && exit 0
		useradd --system --user-group --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin --comment "drover services" "$DROVER_SVC_USER"
	) 9>"${TMPDIR:-/tmp}/.drover-svc-user.lock" || {
		echo "svcuser: cannot create the user $DROVER_SVC_USER" >&2
		return 1
	}
}
