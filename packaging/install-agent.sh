#!/bin/sh
# install-agent.sh: install and start drover-agent on a host without the
# Debian package. Installs the binary and the systemd unit, writes the agent's
# configuration with `drover-agent init`, and enables and starts the service
# when systemd is the init system. Safe to run again: it replaces the binary
# and unit, and rewrites the configuration from the flags given.
#
#   install-agent.sh --coordinator tls+tcp://coord.example:7700 \
#       --coordinator-key coordinator.pub --coordinator-cert tls.crt \
#       --id web-1 --label tier=ui [--enroll-token TOKEN]
#
# By default the binary and the unit template are taken from beside this
# script (the layout of the drover-agent-*-install.tar.gz bundle that
# `make package` builds). --root installs into another tree (tests, images):
# nothing is started then.
set -eu

PROG=install-agent.sh
CONF_DIR=/etc/drover/agent
STATE_DIR=/var/lib/drover/agent
UNIT=drover-agent.service

usage()
{
	cat <<EOF
usage: $PROG --coordinator URL --coordinator-key FILE --id NAME
                        [--coordinator-cert FILE] [--label K=V]... [--enroll-token TOKEN]
                        [--binary FILE] [--unit FILE] [--prefix DIR] [--root DIR]
                        [--no-start]

  --coordinator URL       where droverd listens for agents (tls+tcp://HOST:PORT)
  --coordinator-key FILE  the coordinator's public key (coordinator.pub)
  --coordinator-cert FILE its TLS certificate (tls.crt), pinned for tls+tcp://
  --id NAME               this host's agent id, as plans name it
  --label K=V             a label plans can select on (repeatable)
  --enroll-token TOKEN    accepted at once by the coordinator (else: pending
                          until 'drover agents accept NAME')
  --binary FILE           drover-agent to install (default: beside this script)
  --unit FILE             unit or unit template (default: beside this script)
  --prefix DIR            install the binary in DIR/sbin (default /usr/local)
  --root DIR              install into the tree DIR instead of / (starts nothing)
  --no-start              enable the service but do not start it
EOF
}

die()
{
	echo "$PROG: $*" >&2
	exit 1
}

usage_error()
{
	echo "$PROG: $*" >&2
	usage >&2
	exit 2
}

here=$(cd "$(dirname "$0")" && pwd)
coordinator="" key="" cert="" id="" token="" root="" prefix=/usr/local start=yes
binary="" unit=""
labels_file=$(mktemp)
trap 'rm -f "$labels_file"' EXIT

need_arg()
{
	[ "$2" -ge 2 ] || usage_error "$1 needs a value"
}

while [ $# -gt 0 ]; do
	case "$1" in
	--coordinator) need_arg "$1" $# && coordinator=$2 && shift ;;
	--coordinator-key) need_arg "$1" $# && key=$2 && shift ;;
	--coordinator-cert) need_arg "$1" $# && cert=$2 && shift ;;
	--id) need_arg "$1" $# && id=$2 && shift ;;
	--label)
		need_arg "$1" $#
		case "$2" in
		?*=*) printf '%s\n' "$2" >>"$labels_file" ;;
		*) usage_error "--label wants K=V, got '$2'" ;;
		esac
		shift
		;;
	--enroll-token) need_arg "$1" $# && token=$2 && shift ;;
	--binary) need_arg "$1" $# && binary=$2 && shift ;;
	--unit) need_arg "$1" $# && unit=$2 && shift ;;
	--prefix) need_arg "$1" $# && prefix=$2 && shift ;;
	--root) need_arg "$1" $# && root=$2 && shift ;;
	--no-start) start=no ;;
	-h | --help)
		usage
		exit 0
		;;
	*) usage_error "unknown argument '$1'" ;;
	esac
	shift
done

[ -n "$coordinator" ] || usage_error "--coordinator is required"
[ -n "$key" ] || usage_error "--coordinator-key is required"
[ -n "$id" ] || usage_error "--id is required"
case "$prefix" in
/*) ;;
*) usage_error "--prefix must be an absolute path" ;;
esac
[ -z "$root" ] || [ -d "$root" ] || die "--root $root is not a directory"
root=${root%/}

if [ -z "$binary" ]; then
	binary="$here/drover-agent"
	[ -x "$binary" ] || binary=$(command -v drover-agent || true)
fi
if [ -z "$binary" ] || [ ! -x "$binary" ]; then
	die "no drover-agent binary: give --binary FILE"
fi
if [ -z "$unit" ]; then
	for u in "$here/drover-agent.service.in" "$here/drover-agent.service"; do
		[ -f "$u" ] && unit=$u && break
	done
fi
if [ -z "$unit" ] || [ ! -f "$unit" ]; then
	die "no unit file: give --unit FILE"
fi
[ -r "$key" ] || die "cannot read the coordinator key $key"
[ -z "$cert" ] || [ -r "$cert" ] || die "cannot read the coordinator certificate $cert"
[ -n "$root" ] || [ "$(id -u)" = 0 ] || die "run as root (or give --root DIR)"

sbin="$prefix/sbin"
done_list=""
did()
{
	echo "$PROG: $*"
	done_list="$done_list
  - $*"
}

# 1. the binary
install -d -m 0755 "$root$sbin"
install -m 0755 "$binary" "$root$sbin/drover-agent.new"
mv -f "$root$sbin/drover-agent.new" "$root$sbin/drover-agent"
did "installed $sbin/drover-agent ($("$root$sbin/drover-agent" --version))"

# 2. the unit, pointed at that binary; local units belong in /etc/systemd/system
install -d -m 0755 "$root/etc/systemd/system"
sed -e "s|@sbindir@|$sbin|g" -e "s|^ExecStart=/usr/sbin/|ExecStart=$sbin/|" "$unit" \
	>"$root/etc/systemd/system/$UNIT.new"
chmod 0644 "$root/etc/systemd/system/$UNIT.new"
mv -f "$root/etc/systemd/system/$UNIT.new" "$root/etc/systemd/system/$UNIT"
did "installed /etc/systemd/system/$UNIT"

# 3. directories and links: what packaging/tmpfiles/drover-agent.conf makes
#    for the package (state, cache, releases and logs beside the config are
#    links into /var)
install -d -m 0755 "$root/etc/drover" "$root/var/lib/drover"
install -d -m 0711 "$root$STATE_DIR" "$root$STATE_DIR/releases"
install -d -m 0700 "$root$CONF_DIR" "$root$STATE_DIR/state" "$root$STATE_DIR/cache"
install -d -m 0750 "$root/var/log/drover-agent"
chmod 0700 "$root$CONF_DIR"
for l in state:../../../var/lib/drover/agent/state cache:../../../var/lib/drover/agent/cache \
	releases:../../../var/lib/drover/agent/releases logs:../../../var/log/drover-agent; do
	name=${l%%:*}
	[ -e "$root$CONF_DIR/$name" ] || [ -L "$root$CONF_DIR/$name" ] ||
		ln -s "${l#*:}" "$root$CONF_DIR/$name"
done
did "created $CONF_DIR (0700), $STATE_DIR and /var/log/drover-agent"

# 3b. drover-svc, the user services run as unless a plan names another
if grep -q '^drover-svc:' "$root/etc/passwd" 2>/dev/null; then
	:
elif [ -z "$root" ] && command -v useradd >/dev/null 2>&1; then
	useradd --system --user-group --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin --comment "drover services" drover-svc
	did "created the service user drover-svc"
elif command -v systemd-sysusers >/dev/null 2>&1; then
	echo 'u drover-svc - "drover services" /nonexistent /usr/sbin/nologin' |
		systemd-sysusers ${root:+--root="$root"} -
	did "created the service user drover-svc"
else
	echo "$PROG: warning: cannot create the user drover-svc; create it, or services need user: in their plans" >&2
fi

# 4. the configuration. Keys, certificate and token are copied beside it so
#    that it does not depend on files the operator may delete.
c="$root$CONF_DIR"
install -m 0644 "$key" "$c/coordinator.pub"
set -- init --dir "$c" --coordinator "$coordinator" --coordinator-key "$c/coordinator.pub" --id "$id"
if [ -n "$cert" ]; then
	install -m 0644 "$cert" "$c/coordinator.crt"
	set -- "$@" --tls-ca "$c/coordinator.crt"
fi
while IFS= read -r l; do
	set -- "$@" --label "$l"
done <"$labels_file"
if [ -n "$token" ]; then
	(umask 077 && printf '%s\n' "$token" >"$c/enroll.token")
	set -- "$@" --enroll-token-file "$c/enroll.token"
fi
# init does not overwrite a config: set the old one aside (the agent's key,
# its identity, stays), and put it back if init fails.
[ ! -f "$c/agent.yaml" ] || mv -f "$c/agent.yaml" "$c/agent.yaml.old"
if ! "$root$sbin/drover-agent" "$@" >/dev/null; then
	[ ! -f "$c/agent.yaml.old" ] || mv -f "$c/agent.yaml.old" "$c/agent.yaml"
	die "'drover-agent init' failed; the binary and unit are installed, the agent is not (re)configured"
fi
rm -f "$c/agent.yaml.old"
[ -f "$c/agent.yaml" ] || die "'drover-agent init' wrote no $CONF_DIR/agent.yaml"
# init saw the --root prefix; the paths are for the installed system
if [ -n "$root" ]; then
	sed -i "s|\"$root/|\"/|g" "$c/agent.yaml"
fi
chmod 0600 "$c/agent.yaml"
did "wrote $CONF_DIR/agent.yaml (id $id)"

# 5. the service
systemd_running()
{
	[ -z "$root" ] && [ -d /run/systemd/system ] &&
		[ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]
}
if systemd_running; then
	systemctl daemon-reload
	systemctl enable "$UNIT" >/dev/null 2>&1
	if [ "$start" = yes ]; then
		systemctl restart "$UNIT"
		did "enabled and (re)started $UNIT"
	else
		did "enabled $UNIT (not started: --no-start)"
	fi
elif command -v systemctl >/dev/null 2>&1; then
	systemctl --root="${root:-/}" enable "$UNIT" >/dev/null 2>&1 ||
		die "systemctl --root=${root:-/} enable $UNIT failed"
	did "enabled $UNIT (systemd is not running here: nothing started)"
else
	echo "$PROG: no systemd: start the agent with your init system:" >&2
	echo "  $sbin/drover-agent --config $CONF_DIR/agent.yaml" >&2
fi

echo "$PROG: done:$done_list"
if [ -z "$token" ]; then
	echo "$PROG: the agent is pending until an operator runs: drover agents accept $id"
fi
