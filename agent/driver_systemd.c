/*
 * driver_systemd.c: the systemd driver. Each instance (one release of a
 * service in one slot) is a systemd service unit, drover-<service>.service
 * or drover-<service>@<slot>.service, that the agent writes to
 * /etc/systemd/system (enabled in multi-user.target, so a reboot brings the
 * running releases back before the agent even starts) and drives over D-Bus
 * with sd-bus: Reload, RestartUnit, StopUnit, unit properties. systemd
 * supervises the process: Restart=on-failure, its start limit (5 starts in
 * 10 s) is the crash loop, logs go to the journal (journalctl -u UNIT).
 *
 * The release is the exec driver's (puller_stage: the unpacked image under
 * RELEASES/<service>/<hex>); the unit runs its command from there (or
 * chrooted into it with isolation: chroot, RootDirectory=), as the plan's
 * user with the capabilities it lists, with the plan's `systemd:` options
 * (KillMode, MemoryMax, CPUQuota, TasksMax, ProtectSystem, PrivateTmp,
 * NoNewPrivileges) and TimeoutStopSec from stop_grace.
 *
 * A watcher thread with a D-Bus connection of its own subscribes to the
 * manager's signals and sees every state change of our units
 * (PropertiesChanged of org.freedesktop.systemd1.Unit): a crash (a running
 * service that stops running without being asked) or a unit that gave up
 * (failed) is sent to the coordinator as a STEP_STATUS report through
 * env->notice.
 *
 * An agent restart re-adopts a unit that is active (or starts it again);
 * stop removes the unit file, so the files present are the wanted units.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "atomicfile.h"
#include "clock.h"
#include "driver.h"
#include "err.h"
#include "fsutil.h"
#include "log.h"
#include "privs.h"
#include "proc.h"
#include "relprep.h"

#define UNIT_DIR_DEFAULT "/etc/systemd/system"
#define WANTS_DIR        "multi-user.target.wants"
#define UNIT_PREFIX      "drover-"
#define UNIT_NAME_MAX    (DRIVER_INSTANCE_MAX + 16)
#define UNIT_TEXT_MAX    (256u << 10)
#define GRACE_DEFAULT_MS 10000
#define START_WAIT_MS    10000
#define NOTICES_MAX      16

static const char *const SD_DEST = "org.freedesktop.systemd1";
#define SD_PATH      "/org/freedesktop/systemd1"
#define SD_UNIT_PATH SD_PATH "/unit"
static const char *const SD_MANAGER = "org.freedesktop.systemd1.Manager";
static const char *const SD_UNIT = "org.freedesktop.systemd1.Unit";
static const char *const SD_SERVICE = "org.freedesktop.systemd1.Service";

struct unit {
	struct unit *next;
	char name[DRIVER_INSTANCE_MAX];
	char unit[UNIT_NAME_MAX];
	char service[80], slot[80];
	bool want;
	unsigned restarts_base; /* NRestarts when we (re)started it */
	char active[32], sub[32];
};

struct notice {
	char service[80], slot[80], msg[1024];
};

struct sd_state {
	struct driver_env env;
	char unit_dir[256];
	pthread_mutex_t lock;
	sd_bus *bus; /* calls, under lock; opened on first use */
	struct unit *list;
	/* the watcher: its own connection and thread */
	pthread_t watcher;
	bool watching;
	volatile int stop;
	pthread_mutex_t nlock;
	struct notice notices[NOTICES_MAX];
	size_t n_notices;
};

/* --- names --- */

void driver_systemd_unit(const char *service, const char *slot, char *buf, size_t size)
{
	if (slot != NULL && slot[0] != '\0')
		snprintf(buf, size, UNIT_PREFIX "%s@%s.service", service, slot);
	else
		snprintf(buf, size, UNIT_PREFIX "%s.service", service);
}

static void unit_name(const struct driver_instance *in, char *buf, size_t size)
{
	driver_systemd_unit(in->service, in->slot, buf, size);
}

static void unit_path(const struct sd_state *x, const char *unit, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", x->unit_dir, unit);
}

static void wants_path(const struct sd_state *x, const char *unit, char *buf, size_t size)
{
	snprintf(buf, size, "%s/" WANTS_DIR "/%s", x->unit_dir, unit);
}

static struct unit *find(struct sd_state *x, const char *name)
{
	for (struct unit *u = x->list; u != NULL; u = u->next)
		if (strcmp(u->name, name) == 0)
			return u;
	return NULL;
}

static struct unit *upsert(struct sd_state *x, const struct driver_instance *in)
{
	struct unit *u = find(x, in->name);

	if (u == NULL) {
		u = calloc(1, sizeof(*u));
		if (u == NULL)
			return NULL;
		snprintf(u->name, sizeof(u->name), "%s", in->name);
		snprintf(u->service, sizeof(u->service), "%s", in->service);
		snprintf(u->slot, sizeof(u->slot), "%s", in->slot ? in->slot : "");
		u->next = x->list;
		x->list = u;
	}
	unit_name(in, u->unit, sizeof(u->unit));
	return u;
}

/* --- D-Bus --- */

static int bus_err(char *err, size_t size, const char *what, const char *unit, int r,
                   const sd_bus_error *e)
{
	snprintf(err, size, "systemd: %s %s: %s", what, unit ? unit : "",
	         e != NULL && sd_bus_error_is_set(e) ? e->message : strerror(-r));
	return DRV_EIO;
}

/* Locked. */
static int bus_get(struct sd_state *x, char *err, size_t size)
{
	int r;

	if (x->bus != NULL)
		return DRV_OK;
	r = sd_bus_open_system(&x->bus);
	if (r < 0) {
		x->bus = NULL;
		snprintf(err, size,
		         "driver systemd: cannot reach systemd on the system bus: %s "
		         "(is systemd PID 1 here?)",
		         strerror(-r));
		return DRV_EIO;
	}
	return DRV_OK;
}

/* A Manager method on unit (NULL: none) with mode (NULL: none). job: the
 * job object it returned (RestartUnit, StopUnit), when not NULL. */
static int manager_call_job(struct sd_state *x, const char *method, const char *unit,
                            const char *mode, char *job, size_t job_size, char *err, size_t size)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	const char *path = NULL;
	int r;

	if (unit == NULL)
		r = sd_bus_call_method(x->bus, SD_DEST, SD_PATH, SD_MANAGER, method, &e, &reply,
		                       "");
	else if (mode == NULL)
		r = sd_bus_call_method(x->bus, SD_DEST, SD_PATH, SD_MANAGER, method, &e, &reply,
		                       "s", unit);
	else
		r = sd_bus_call_method(x->bus, SD_DEST, SD_PATH, SD_MANAGER, method, &e, &reply,
		                       "ss", unit, mode);
	if (r >= 0 && job != NULL)
		snprintf(job, job_size, "%s",
		         sd_bus_message_read(reply, "o", &path) >= 0 && path ? path : "");
	sd_bus_message_unref(reply);
	if (r < 0) {
		bus_err(err, size, method, unit, r, &e);
		sd_bus_error_free(&e);
		return DRV_EIO;
	}
	return DRV_OK;
}

static int manager_call(struct sd_state *x, const char *method, const char *unit, const char *mode,
                        char *err, size_t size)
{
	return manager_call_job(x, method, unit, mode, NULL, 0, err, size);
}

/* True while the job object exists (queued or running). */
static bool job_pending(struct sd_state *x, const char *job)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	char *state = NULL;
	int r;

	if (job[0] == '\0')
		return false;
	r = sd_bus_get_property_string(x->bus, SD_DEST, job, "org.freedesktop.systemd1.Job",
	                               "State", &e, &state);
	sd_bus_error_free(&e);
	free(state);
	return r >= 0;
}

/* ActiveState, SubState, MainPID and NRestarts of unit (locked). */
struct unit_props {
	char active[32], sub[32], result[32];
	uint32_t main_pid, n_restarts;
};

static int unit_props(struct sd_state *x, const char *unit, struct unit_props *p)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	char *path = NULL, *s = NULL;
	int r;

	memset(p, 0, sizeof(*p));
	r = sd_bus_path_encode(SD_UNIT_PATH, unit, &path);
	if (r < 0)
		return DRV_ENOMEM;
	r = sd_bus_get_property_string(x->bus, SD_DEST, path, SD_UNIT, "ActiveState", &e, &s);
	if (r >= 0) {
		snprintf(p->active, sizeof(p->active), "%s", s);
		free(s);
		s = NULL;
		if (sd_bus_get_property_string(x->bus, SD_DEST, path, SD_UNIT, "SubState", &e,
		                               &s) >= 0)
			snprintf(p->sub, sizeof(p->sub), "%s", s);
		free(s);
		s = NULL;
		if (sd_bus_get_property_string(x->bus, SD_DEST, path, SD_SERVICE, "Result", &e,
		                               &s) >= 0)
			snprintf(p->result, sizeof(p->result), "%s", s);
		free(s);
		sd_bus_get_property_trivial(x->bus, SD_DEST, path, SD_SERVICE, "MainPID", &e, 'u',
		                            &p->main_pid);
		sd_bus_get_property_trivial(x->bus, SD_DEST, path, SD_SERVICE, "NRestarts", &e, 'u',
		                            &p->n_restarts);
	}
	sd_bus_error_free(&e);
	free(path);
	return r < 0 ? DRV_EIO : DRV_OK;
}

/* --- the unit file --- */

struct buf {
	char *p;
	size_t len, cap;
	bool bad;
};

static void bput(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bput(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->bad)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= b->cap - b->len)
		b->bad = true;
	else
		b->len += (size_t)n;
}

/* s as one quoted word of a unit file: "..." with \ " escaped, % doubled
 * (specifiers) and, for command lines, $ doubled (no variable expansion).
 * Control characters cannot be written: false. */
static bool bquote(struct buf *b, const char *s, bool command)
{
	bput(b, "\"");
	for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
		if (*c < 0x20 || *c == 0x7f)
			return false;
		if (*c == '\\' || *c == '"')
			bput(b, "\\%c", *c);
		else if (*c == '%')
			bput(b, "%%%%");
		else if (*c == '$' && command)
			bput(b, "$$");
		else
			bput(b, "%c", *c);
	}
	bput(b, "\"");
	return true;
}

/* A path setting (WorkingDirectory=, RootDirectory=) takes no quotes: only
 * paths of plain characters are written. */
static bool bpath(struct buf *b, const char *s)
{
	if (s[0] != '/' || strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                             "0123456789/._+:,=@-") != strlen(s))
		return false;
	bput(b, "%s", s);
	return true;
}

/* The program's real path beneath root (symlinks resolved inside it), for
 * ExecStart= of a service that is not chrooted. */
static int program_path(const char *root, const char *cmd, char *out, size_t out_size, char *err,
                        size_t size)
{
	size_t root_len;
	int fd, rc = relprep_program(root, cmd, O_PATH, &fd, out, out_size, &root_len, err, size);

	if (rc == DRV_OK)
		close(fd);
	return rc;
}

struct env_out {
	struct buf *b;
	bool ok;
};

/* One Environment= line (a relprep_env callback); a value a unit file
 * cannot hold makes the unit invalid, reported once the list is done. */
static int env_line(const char *key, const char *value, void *arg)
{
	struct env_out *eo = arg;
	char kv[8192];

	if (snprintf(kv, sizeof(kv), "%s=%s", key, value) >= (int)sizeof(kv)) {
		eo->ok = false;
		return DRV_OK;
	}
	bput(eo->b, "Environment=");
	if (!bquote(eo->b, kv, false))
		eo->ok = false;
	bput(eo->b, "\n");
	return DRV_OK;
}

static const char *opt(const char *s, const char *dflt)
{
	return s != NULL && s[0] != '\0' ? s : dflt;
}

/* The unit file of in, run as pv, into b. */
static int unit_text(const struct driver_instance *in, const struct privs *pv, struct buf *b,
                     char *err, size_t size)
{
	const Drover__ServiceSpec *sp = in->spec;
	const Drover__SystemdOptions *so = sp->systemd;
	bool chroot_on = sp->isolation == DROVER__ISOLATION__ISOLATION_CHROOT, ok = true;
	char root[4200], prog[4300];
	struct relprep_image ic;
	size_t argc;
	int rc = DRV_OK;

	snprintf(prog, sizeof(prog), "%s/rootfs", in->release_dir);
	/* the real path: RELEASES may be reached through a link (/etc/drover/agent) */
	if (realpath(prog, root) == NULL)
		return snprintf(err, size, "release root %.300s: %s", prog, strerror(errno)),
		       DRV_ENOENT;
	relprep_image_load(in->release_dir, &ic);
	argc = sp->n_command ? sp->n_command : json_array_size(ic.argv);
	if (argc == 0) {
		relprep_image_free(&ic);
		return snprintf(err, size, "%s: no command (none in the plan or the image)",
		                in->name),
		       DRV_EINVAL;
	}
	for (size_t i = 0; i < argc; i++) {
		const char *a = sp->n_command ? sp->command[i]
		                              : json_string_value(json_array_get(ic.argv, i));
		if (a == NULL)
			a = "";
		if (i == 0 && !chroot_on) {
			rc = program_path(root, a, prog, sizeof(prog), err, size);
			if (rc != DRV_OK)
				break;
			a = prog;
		} else if (i == 0 && (a[0] != '/' || relprep_has_dotdot(a))) {
			rc = (snprintf(err, size,
			               "command '%s' must be an absolute path without '..'", a),
			      DRV_EINVAL);
			break;
		}
		if (i == 0)
			bput(b,
			     "# Written by drover-agent (driver systemd) for %s %s; removed when\n"
			     "# the release stops. Do not edit: the next deployment rewrites it.\n"
			     "[Unit]\nDescription=drover service %s (version %s%s%s)\n"
			     "After=network.target\n"
			     "StartLimitIntervalSec=10s\nStartLimitBurst=5\n\n[Service]\nType="
			     "exec\n"
			     "ExecStart=",
			     in->name, sp->version ? sp->version : "", in->service,
			     sp->version ? sp->version : "",
			     in->slot && in->slot[0] ? ", slot " : "", in->slot ? in->slot : "");
		else
			bput(b, " ");
		if (!bquote(b, a, true)) {
			rc = (snprintf(err, size, "command argument %zu has a control character",
			               i),
			      DRV_EINVAL);
			break;
		}
	}
	if (rc != DRV_OK) {
		relprep_image_free(&ic);
		return rc;
	}
	bput(b, "\n");
	const char *wdir = ic.workdir && ic.workdir[0] == '/' && !relprep_has_dotdot(ic.workdir)
	                           ? ic.workdir
	                           : "/";
	char wd[4400];
	if (chroot_on) {
		bput(b, "RootDirectory=");
		ok = bpath(b, root);
		snprintf(wd, sizeof(wd), "%s", wdir);
		bput(b, "\n");
	} else {
		snprintf(wd, sizeof(wd), "%s%s", root, strcmp(wdir, "/") == 0 ? "" : wdir);
	}
	bput(b, "WorkingDirectory=");
	if (!ok || !bpath(b, wd)) {
		relprep_image_free(&ic);
		return snprintf(err, size,
		                "%s: the release path or working directory '%.200s' has characters "
		                "a unit file cannot hold",
		                in->name, wd),
		       DRV_EINVAL;
	}
	bput(b, "\n");
	/* environment: PATH, HOME, the image's, the plan's, then drover's */
	struct env_out eo = {.b = b, .ok = ok};
	relprep_env(sp, in->service, in->slot, &ic, root, env_line, &eo);
	ok = eo.ok;
	relprep_image_free(&ic);
	if (!ok)
		return snprintf(err, size,
		                "%s: an environment variable has a control character or "
		                "is too long",
		                in->name),
		       DRV_EINVAL;
	/* who */
	if (pv->change_ids)
		bput(b, "User=%u\nGroup=%u\n", (unsigned)pv->uid, (unsigned)pv->gid);
	if (!pv->all_caps) {
		/* names checked by privs_resolve: CAP_[A-Z_]+ */
		bput(b, "CapabilityBoundingSet=");
		for (size_t c = 0; c < sp->n_capabilities; c++)
			bput(b, " %s", sp->capabilities[c]);
		bput(b, "\nAmbientCapabilities=");
		for (size_t c = 0; c < sp->n_capabilities; c++)
			bput(b, " %s", sp->capabilities[c]);
		bput(b, "\n");
	}
	/* sandbox and limits */
	bput(b, "NoNewPrivileges=%s\n",
	     opt(so ? so->no_new_privileges : NULL, sp->keep_setid ? "no" : "yes"));
	bput(b, "ProtectSystem=%s\n", opt(so ? so->protect_system : NULL, "full"));
	bput(b, "PrivateTmp=%s\n", opt(so ? so->private_tmp : NULL, "yes"));
	bput(b, "KillMode=%s\n", opt(so ? so->kill_mode : NULL, "control-group"));
	bput(b, "TimeoutStopSec=%ums\n", sp->stop_grace_ms ? sp->stop_grace_ms : GRACE_DEFAULT_MS);
	if (so != NULL && so->memory_max > 0)
		bput(b, "MemoryMax=%llu\n", (unsigned long long)so->memory_max);
	if (so != NULL && so->cpu_quota > 0)
		bput(b, "CPUQuota=%u%%\n", so->cpu_quota); /* no specifiers here */
	if (so != NULL && so->tasks_max > 0)
		bput(b, "TasksMax=%u\n", so->tasks_max);
	bput(b, "Restart=on-failure\nRestartSec=1s\n\n[Install]\nWantedBy=multi-user.target\n");
	if (b->bad)
		return snprintf(err, size, "%s: the unit file would be too large", in->name),
		       DRV_EINVAL;
	return DRV_OK;
}

/* The option values are checked here too: they come from the network. */
static bool opt_ok(const char *s, const char *const *allowed)
{
	if (s == NULL || s[0] == '\0')
		return true;
	for (size_t i = 0; allowed[i] != NULL; i++)
		if (strcmp(s, allowed[i]) == 0)
			return true;
	return false;
}

static int check_options(const Drover__SystemdOptions *so, char *err, size_t size)
{
	static const char *const kill[] = {"control-group", "mixed", "process", NULL};
	static const char *const protect[] = {"no", "yes", "full", "strict", NULL};
	static const char *const yesno[] = {"yes", "no", NULL};

	if (so == NULL)
		return DRV_OK;
	if (!opt_ok(so->kill_mode, kill) || !opt_ok(so->protect_system, protect) ||
	    !opt_ok(so->private_tmp, yesno) || !opt_ok(so->no_new_privileges, yesno) ||
	    so->cpu_quota > 100000 || so->tasks_max > 1000000)
		return snprintf(err, size,
		                "driver systemd: invalid unit options in the instruction"),
		       DRV_EINVAL;
	return DRV_OK;
}

/* --- notices (delivered outside every lock: the receiver asks for status) --- */

static void queue_notice(struct sd_state *x, const char *service, const char *slot, const char *msg)
{
	pthread_mutex_lock(&x->nlock);
	if (x->n_notices < NOTICES_MAX) {
		struct notice *n = &x->notices[x->n_notices++];
		snprintf(n->service, sizeof(n->service), "%s", service);
		snprintf(n->slot, sizeof(n->slot), "%s", slot);
		snprintf(n->msg, sizeof(n->msg), "%s", msg);
	}
	pthread_mutex_unlock(&x->nlock);
}

static void flush_notices(struct sd_state *x)
{
	struct notice batch[NOTICES_MAX];
	size_t n;

	pthread_mutex_lock(&x->nlock);
	n = x->n_notices;
	memcpy(batch, x->notices, n * sizeof(batch[0]));
	x->n_notices = 0;
	pthread_mutex_unlock(&x->nlock);
	for (size_t i = 0; i < n; i++)
		if (x->env.notice != NULL)
			x->env.notice(batch[i].service, batch[i].slot, batch[i].msg,
			              x->env.notice_arg);
}

/* --- the watcher: unit state changes by D-Bus signal --- */

static int on_changed(sd_bus_message *m, void *arg, sd_bus_error *ret)
{
	struct sd_state *x = arg;
	const char *iface = NULL, *path = sd_bus_message_get_path(m);
	char *unit = NULL, active[32] = "", sub[32] = "", msg[1024] = "";
	int r;

	(void)ret;
	if (path == NULL || sd_bus_path_decode(path, SD_UNIT_PATH, &unit) <= 0)
		return 0;
	if (strncmp(unit, UNIT_PREFIX, strlen(UNIT_PREFIX)) != 0 ||
	    sd_bus_message_read(m, "s", &iface) < 0 || strcmp(iface, SD_UNIT) != 0) {
		free(unit);
		return 0;
	}
	r = sd_bus_message_enter_container(m, 'a', "{sv}");
	while (r > 0 && sd_bus_message_enter_container(m, 'e', "sv") > 0) {
		const char *key = NULL, *val = NULL;
		if (sd_bus_message_read(m, "s", &key) < 0)
			break;
		if ((strcmp(key, "ActiveState") == 0 || strcmp(key, "SubState") == 0) &&
		    sd_bus_message_read(m, "v", "s", &val) >= 0) {
			snprintf(key[0] == 'A' ? active : sub, sizeof(active), "%s", val);
		} else {
			sd_bus_message_skip(m, "v");
		}
		sd_bus_message_exit_container(m);
	}
	pthread_mutex_lock(&x->lock);
	for (struct unit *u = x->list; u != NULL; u = u->next) {
		if (strcmp(u->unit, unit) != 0)
			continue;
		bool was_running = strcmp(u->sub, "running") == 0;
		if (active[0])
			snprintf(u->active, sizeof(u->active), "%s", active);
		if (sub[0])
			snprintf(u->sub, sizeof(u->sub), "%s", sub);
		if (!u->want)
			break;
		/* systemd 252 shows a crashed service as failed for a moment
		 * before its automatic restart: any end of a running service is
		 * a crash here, "gave up" only a failure that follows no run */
		if (was_running && strcmp(u->sub, "running") != 0 &&
		    strcmp(u->active, "deactivating") != 0)
			snprintf(msg, sizeof(msg),
			         "%s exited (unit %s %s/%s); systemd restarts it "
			         "(Restart=on-failure, up to 5 starts in 10 s)",
			         u->name, u->unit, u->active, u->sub);
		else if (strcmp(u->active, "failed") == 0 && sub[0])
			snprintf(msg, sizeof(msg),
			         "%s failed: systemd gave up on unit %s (crash loop or start "
			         "failure; "
			         "journalctl -u %s)",
			         u->name, u->unit, u->unit);
		if (msg[0]) {
			drv_warn("systemd", "unit state changed",
			         "instance=%s unit=%s active=%s sub=%s", u->name, u->unit,
			         u->active, u->sub);
			queue_notice(x, u->service, u->slot, msg);
		}
		break;
	}
	pthread_mutex_unlock(&x->lock);
	free(unit);
	flush_notices(x);
	return 0;
}

static void *watch_main(void *arg)
{
	struct sd_state *x = arg;
	sd_bus *bus = NULL;
	sd_bus_slot *slot = NULL;
	int r;

	r = sd_bus_open_system(&bus);
	if (r >= 0)
		r = sd_bus_match_signal(bus, &slot, SD_DEST, NULL,
		                        "org.freedesktop.DBus.Properties", "PropertiesChanged",
		                        on_changed, x);
	if (r >= 0)
		r = sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MANAGER, "Subscribe", NULL, NULL,
		                       "");
	if (r < 0) {
		drv_error("systemd", "cannot watch units", "error=\"%s\"", strerror(-r));
		sd_bus_slot_unref(slot);
		sd_bus_flush_close_unref(bus);
		return NULL;
	}
	while (!x->stop) {
		r = sd_bus_process(bus, NULL);
		if (r < 0) {
			drv_error("systemd", "lost the bus; unit changes are no longer seen",
			          "error=\"%s\"", strerror(-r));
			break;
		}
		if (r == 0)
			sd_bus_wait(bus, 300000);
	}
	sd_bus_slot_unref(slot);
	sd_bus_flush_close_unref(bus);
	return NULL;
}

/* Locked: the bus for calls, and the watcher once. */
static int ready(struct sd_state *x, char *err, size_t size)
{
	int rc = bus_get(x, err, size);

	if (rc == DRV_OK && !x->watching) {
		if (pthread_create(&x->watcher, NULL, watch_main, x) != 0)
			return snprintf(err, size, "driver systemd: cannot start the watcher"),
			       DRV_ESYS;
		x->watching = true;
	}
	return rc;
}

/* --- ops --- */

static int init(const struct driver_env *env, void **state)
{
	struct sd_state *x = calloc(1, sizeof(*x));
	const char *dir = getenv("DROVER_SYSTEMD_UNIT_DIR"); /* tests */

	if (x == NULL)
		return DRV_ENOMEM;
	x->env = *env;
	snprintf(x->unit_dir, sizeof(x->unit_dir), "%s",
	         dir != NULL && dir[0] == '/' ? dir : UNIT_DIR_DEFAULT);
	pthread_mutex_init(&x->lock, NULL);
	pthread_mutex_init(&x->nlock, NULL);
	*state = x;
	return DRV_OK;
}

static void fini(void *state)
{
	struct sd_state *x = state;
	struct unit *u, *next;

	if (x == NULL)
		return;
	x->stop = 1;
	if (x->watching)
		pthread_join(x->watcher, NULL);
	for (u = x->list; u != NULL; u = next) {
		next = u->next;
		free(u);
	}
	sd_bus_flush_close_unref(x->bus);
	pthread_mutex_destroy(&x->lock);
	pthread_mutex_destroy(&x->nlock);
	free(x);
}

static int prepare(void *state, struct driver_instance *in, bool local_only, char **dir_out,
                   char *err, size_t size)
{
	struct sd_state *x = state;

	return relprep_stage(x->env.puller, in, local_only, dir_out, err, size);
}

/* Write and enable the unit file (locked). */
static int install_unit(struct sd_state *x, const struct driver_instance *in, const char *unit,
                        char *err, size_t size)
{
	char upath[512], wpath[600], wdir[512];
	struct buf b = {.cap = UNIT_TEXT_MAX};
	struct privs pv;
	int rc;

	if (in->release_dir == NULL)
		return snprintf(err, size, "%s: no release directory (not prepared)", in->name),
		       DRV_EINVAL;
	rc = check_options(in->spec->systemd, err, size);
	if (rc == DRV_OK)
		rc = privs_resolve(in->spec->user, in->spec->group, PRIVS_DEFAULT_USER,
		                   in->spec->capabilities, in->spec->n_capabilities,
		                   !in->spec->keep_setid, &pv, err, size);
	if (rc == DRV_OK)
		rc = relprep_secure(in->release_dir, in->spec, &pv, err, size);
	if (rc != DRV_OK)
		return rc;
	b.p = malloc(b.cap);
	if (b.p == NULL)
		return DRV_ENOMEM;
	rc = unit_text(in, &pv, &b, err, size);
	unit_path(x, unit, upath, sizeof(upath));
	if (rc == DRV_OK && drv_write_atomic(upath, b.p, b.len, 0644) != DRV_OK)
		rc = (snprintf(err, size, "cannot write %s: %s", upath, strerror(errno)), DRV_EIO);
	free(b.p);
	if (rc != DRV_OK)
		return rc;
	snprintf(wdir, sizeof(wdir), "%s/" WANTS_DIR, x->unit_dir);
	wants_path(x, unit, wpath, sizeof(wpath));
	if ((mkdir(wdir, 0755) < 0 && errno != EEXIST) ||
	    ((unlink(wpath) < 0 && errno != ENOENT) || symlink(upath, wpath) < 0))
		return snprintf(err, size, "cannot enable %s (%s): %s", unit, wpath,
		                strerror(errno)),
		       DRV_EIO;
	return manager_call(x, "Reload", NULL, NULL, err, size);
}

/* Wait (locked) until unit is active, or its start job is over and it is
 * failed/inactive (between the stop and the start of a restart it is
 * inactive too): DRV_OK when active. The job is looked at before the unit:
 * a state read while the job still ran, followed by "no job" read after it
 * ended, would call a unit that just became active "did not start". */
static int wait_started(struct sd_state *x, struct unit *u, const char *job, char *err, size_t size)
{
	int64_t until = drv_mono_ms() + START_WAIT_MS;
	struct unit_props p;
	bool pending;

	for (;;) {
		pending = job_pending(x, job);
		if (unit_props(x, u->unit, &p) == DRV_OK) {
			snprintf(u->active, sizeof(u->active), "%s", p.active);
			snprintf(u->sub, sizeof(u->sub), "%s", p.sub);
			if (strcmp(p.active, "active") == 0) {
				u->restarts_base = p.n_restarts;
				return DRV_OK;
			}
			if ((strcmp(p.active, "failed") == 0 ||
			     strcmp(p.active, "inactive") == 0) &&
			    !pending)
				return snprintf(err, size,
				                "unit %s did not start: %s (%s; journalctl -u %s)",
				                u->unit, p.active, p.result, u->unit),
				       DRV_EIO;
		}
		if (drv_mono_ms() >= until)
			return snprintf(err, size, "unit %s: still %s after %d s", u->unit,
			                p.active, START_WAIT_MS / 1000),
			       DRV_ETIMEDOUT;
		usleep(50000);
	}
}

static int start(void *state, const struct driver_instance *in, char *err, size_t size)
{
	struct sd_state *x = state;
	char job[256] = "";
	struct unit *u;
	int rc;

	pthread_mutex_lock(&x->lock);
	rc = ready(x, err, size);
	u = rc == DRV_OK ? upsert(x, in) : NULL;
	if (rc == DRV_OK && u == NULL)
		rc = DRV_ENOMEM;
	if (rc == DRV_OK) {
		u->want = false; /* our own restart is not a crash */
		rc = install_unit(x, in, u->unit, err, size);
	}
	if (rc == DRV_OK) {
		manager_call(x, "ResetFailedUnit", u->unit, NULL, err, size);
		rc = manager_call_job(x, "RestartUnit", u->unit, "replace", job, sizeof(job), err,
		                      size);
	}
	if (rc == DRV_OK)
		rc = wait_started(x, u, job, err, size);
	if (u != NULL)
		u->want = rc == DRV_OK;
	if (rc == DRV_OK)
		drv_info("systemd", "service started", "instance=%s unit=%s", in->name, u->unit);
	pthread_mutex_unlock(&x->lock);
	return rc;
}

static int stop(void *state, const struct driver_instance *in, uint32_t grace_ms, char *err,
                size_t size)
{
	struct sd_state *x = state;
	char unit[UNIT_NAME_MAX], upath[512], wpath[600];
	struct unit_props p;
	struct unit *u;
	int64_t until;
	int rc;

	unit_name(in, unit, sizeof(unit));
	pthread_mutex_lock(&x->lock);
	if ((u = find(x, in->name)) != NULL)
		u->want = false;
	rc = ready(x, err, size);
	if (rc == DRV_OK)
		rc = manager_call(x, "StopUnit", unit, "replace", err, size);
	if (rc != DRV_OK && strstr(err, "not loaded") != NULL)
		rc = DRV_OK; /* nothing to stop */
	until = drv_mono_ms() + (grace_ms ? grace_ms : GRACE_DEFAULT_MS) + 5000;
	while (rc == DRV_OK && unit_props(x, unit, &p) == DRV_OK &&
	       strcmp(p.active, "inactive") != 0 && strcmp(p.active, "failed") != 0) {
		if (drv_mono_ms() >= until) {
			rc = (snprintf(err, size, "unit %s still %s after the grace period", unit,
			               p.active),
			      DRV_ETIMEDOUT);
			break;
		}
		usleep(50000);
	}
	unit_path(x, unit, upath, sizeof(upath));
	wants_path(x, unit, wpath, sizeof(wpath));
	if (rc == DRV_OK) {
		unlink(wpath);
		unlink(upath);
		manager_call(x, "Reload", NULL, NULL, err, size);
		manager_call(x, "ResetFailedUnit", unit, NULL, err, size);
		drv_info("systemd", "service stopped", "instance=%s unit=%s", in->name, unit);
	}
	pthread_mutex_unlock(&x->lock);
	return rc;
}

static int status(void *state, const struct driver_instance *in, struct driver_status *out)
{
	struct sd_state *x = state;
	char unit[UNIT_NAME_MAX], upath[512], err[256];
	struct unit_props p;
	struct unit *u;
	bool wanted;

	memset(out, 0, sizeof(*out));
	unit_name(in, unit, sizeof(unit));
	unit_path(x, unit, upath, sizeof(upath));
	pthread_mutex_lock(&x->lock);
	u = find(x, in->name);
	wanted = (u != NULL && u->want) || access(upath, F_OK) == 0;
	if (ready(x, err, sizeof(err)) != DRV_OK || unit_props(x, unit, &p) != DRV_OK) {
		out->state = wanted ? DRIVER_FAILED : DRIVER_STOPPED;
		snprintf(out->detail, sizeof(out->detail), "unit %.100s: %.140s", unit,
		         x->bus ? "no such unit" : err);
		pthread_mutex_unlock(&x->lock);
		return DRV_OK;
	}
	if (strcmp(p.active, "active") == 0 || strcmp(p.active, "reloading") == 0) {
		out->state = DRIVER_RUNNING;
		out->pid = (int)p.main_pid;
	} else if (strcmp(p.active, "activating") == 0) {
		out->state = DRIVER_STARTING;
	} else if (strcmp(p.active, "failed") == 0) {
		out->state = DRIVER_FAILED;
	} else {
		out->state = wanted ? DRIVER_FAILED : DRIVER_STOPPED;
	}
	out->restarts = u != NULL && p.n_restarts >= u->restarts_base
	                        ? p.n_restarts - u->restarts_base
	                        : p.n_restarts;
	snprintf(out->detail, sizeof(out->detail), "unit %.120s: %.20s/%.20s%s%.20s, %u restarts",
	         unit, p.active, p.sub, p.result[0] ? ", result " : "", p.result, p.n_restarts);
	pthread_mutex_unlock(&x->lock);
	return DRV_OK;
}

static int adopt(void *state, const struct driver_instance *in, char *err, size_t size)
{
	struct sd_state *x = state;
	char upath[512];
	struct unit_props p;
	struct unit *u;
	int rc;

	pthread_mutex_lock(&x->lock);
	rc = ready(x, err, size);
	u = rc == DRV_OK ? upsert(x, in) : NULL;
	if (rc == DRV_OK && u == NULL)
		rc = DRV_ENOMEM;
	if (rc != DRV_OK) {
		pthread_mutex_unlock(&x->lock);
		return rc;
	}
	unit_path(x, u->unit, upath, sizeof(upath));
	if (access(upath, F_OK) == 0 && unit_props(x, u->unit, &p) == DRV_OK &&
	    (strcmp(p.active, "active") == 0 || strcmp(p.active, "activating") == 0)) {
		u->want = true;
		u->restarts_base = p.n_restarts;
		snprintf(u->active, sizeof(u->active), "%s", p.active);
		snprintf(u->sub, sizeof(u->sub), "%s", p.sub);
		drv_info("systemd", "re-adopted", "instance=%s unit=%s pid=%u", in->name, u->unit,
		         p.main_pid);
		pthread_mutex_unlock(&x->lock);
		return DRV_OK;
	}
	pthread_mutex_unlock(&x->lock);
	queue_notice(x, in->service, in->slot ? in->slot : "",
	             "unit was not running when the agent started; starting it again");
	flush_notices(x);
	return start(state, in, err, size);
}

const struct driver_ops driver_systemd_ops = {
        .name = "systemd",
        .init = init,
        .fini = fini,
        .prepare = prepare,
        .start = start,
        .stop = stop,
        .status = status,
        .adopt = adopt,
};
