/* privs.c: resolving and dropping to a service's or hook's credentials. */
#include "privs.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "caps.h"
#include "err.h"

#define CAP_MAX_NR 64

int privs_cap_number(const char *name)
{
	return drv_cap_number(name);
}

static bool numeric(const char *s, unsigned long *out)
{
	char *end;

	if (s[0] < '0' || s[0] > '9')
		return false;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return *end == '\0' && errno == 0 && *out < 0x7fffffffUL;
}

static int lookup_user(const char *name, uid_t *uid, gid_t *gid, bool *known, char *err,
                       size_t size)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	unsigned long n;

	*known = false;
	if (numeric(name, &n)) {
		*uid = (uid_t)n;
		*gid = (gid_t)n;
		if (getpwuid_r(*uid, &pw, buf, sizeof(buf), &res) == 0 && res != NULL) {
			*gid = res->pw_gid;
			*known = true;
		}
		return DRV_OK;
	}
	if (getpwnam_r(name, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
		return snprintf(err, size, "user '%s' does not exist on this host%s", name,
		                strcmp(name, PRIVS_DEFAULT_USER) == 0
		                        ? " (the drover-agent package creates it; or name a user"
		                          " in the plan)"
		                        : ""),
		       DRV_ENOENT;
	*uid = res->pw_uid;
	*gid = res->pw_gid;
	*known = true;
	return DRV_OK;
}

static int lookup_group(const char *name, gid_t *gid, char *err, size_t size)
{
	struct group gr, *res = NULL;
	char buf[8192];
	unsigned long n;

	if (numeric(name, &n)) {
		*gid = (gid_t)n;
		return DRV_OK;
	}
	if (getgrnam_r(name, &gr, buf, sizeof(buf), &res) != 0 || res == NULL)
		return snprintf(err, size, "group '%s' does not exist on this host", name),
		       DRV_ENOENT;
	*gid = res->gr_gid;
	return DRV_OK;
}

static int resolve_caps(char *const *caps, size_t n, uint64_t *out, char *err, size_t size)
{
	uint64_t bits = 0;

	for (size_t i = 0; i < n; i++) {
		int nr = privs_cap_number(caps[i]);
		if (nr < 0)
			return snprintf(err, size, "unknown capability '%s'", caps[i]), DRV_EINVAL;
		bits |= 1ULL << nr;
	}
	*out = bits;
	return DRV_OK;
}

void privs_root(struct privs *out)
{
	memset(out, 0, sizeof(*out));
	out->all_caps = true;
	snprintf(out->user, sizeof(out->user), "root");
}

bool privs_is_root(const struct privs *p)
{
	return p->change_ids ? p->uid == 0 : geteuid() == 0;
}

int privs_resolve(const char *user, const char *group, const char *default_user, char *const *caps,
                  size_t n_caps, bool no_new_privs, struct privs *out, char *err, size_t size)
{
	struct privs p = {.change_ids = true, .no_new_privs = no_new_privs};
	bool is_default = user == NULL || user[0] == '\0', known;
	const char *name = is_default ? default_user : user;
	int rc;

	rc = resolve_caps(caps, n_caps, &p.caps, err, size);
	if (rc != DRV_OK)
		return rc;
	if (geteuid() != 0) {
		/* Nothing to switch to: run as the agent's own user, or refuse. */
		if (!is_default)
			return snprintf(err, size,
			                "cannot run as user '%s': the agent does not run as root",
			                name),
			       DRV_EPERM;
		p.change_ids = false;
		p.caps = 0;
		snprintf(p.user, sizeof(p.user), "uid %u", (unsigned)geteuid());
		*out = p;
		return DRV_OK;
	}
	rc = lookup_user(name, &p.uid, &p.gid, &known, err, size);
	if (rc == DRV_OK && group != NULL && group[0] != '\0')
		rc = lookup_group(group, &p.gid, err, size);
	if (rc != DRV_OK)
		return rc;
	p.all_caps = p.uid == 0 && n_caps == 0;
	snprintf(p.user, sizeof(p.user), "%.40s (uid %u)", name, (unsigned)p.uid);
	*out = p;
	return DRV_OK;
}

/* --- in the child --- */

static int capset_all(uint64_t bits)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2];

	for (int i = 0; i < 2; i++) {
		uint32_t v = (uint32_t)(bits >> (32 * i));
		data[i].effective = data[i].permitted = data[i].inheritable = v;
	}
	return syscall(SYS_capset, &hdr, data) < 0 ? errno : 0;
}

/* Drop from the bounding set every capability not kept (needs CAP_SETPCAP). */
static int limit_bounding(uint64_t keep)
{
	for (int cap = 0; cap < CAP_MAX_NR; cap++) {
		if (keep & (1ULL << cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
			if (errno == EINVAL) /* past the kernel's last capability */
				break;
			return errno;
		}
	}
	return 0;
}

static int raise_ambient(uint64_t keep)
{
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return errno;
	for (int cap = 0; cap < CAP_MAX_NR; cap++) {
		if ((keep & (1ULL << cap)) &&
		    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
			return errno;
	}
	return 0;
}

static int set_ids(const struct privs *p)
{
	if (p->caps != 0 && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return errno;
	if (setgroups(0, NULL) < 0)
		return errno;
	if (setresgid(p->gid, p->gid, p->gid) < 0)
		return errno;
	if (setresuid(p->uid, p->uid, p->uid) < 0)
		return errno;
	return 0;
}

int privs_apply(const struct privs *p)
{
	int e = 0;

	if (!p->all_caps && geteuid() == 0)
		e = limit_bounding(p->caps);
	if (e == 0 && p->change_ids)
		e = set_ids(p);
	if (e == 0 && !p->all_caps && (p->change_ids || geteuid() == 0))
		e = capset_all(p->caps);
	if (e == 0 && !p->all_caps && p->caps != 0 && p->uid != 0)
		e = raise_ambient(p->caps);
	if (e == 0 && p->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		e = errno;
	return e;
}
