/*
 * privs.h: the credentials a service or hook runs with, and dropping to them
 * in a forked child.
 *
 * The parent resolves names (getpwnam is not safe after fork) into a
 * struct privs; the child, after its chroot and chdir and just before exec,
 * calls privs_apply: bounding set reduced to the kept capabilities,
 * supplementary groups cleared, gid and uid set (real, effective, saved),
 * permitted/effective/inheritable set to the kept capabilities and those
 * raised as ambient capabilities (so they survive the exec of an ordinary
 * binary), then no_new_privs (setuid binaries and file capabilities grant
 * nothing). Root with no capability list keeps every capability: the plan
 * asked for root.
 */
#ifndef DRV_AGENT_PRIVS_H
#define DRV_AGENT_PRIVS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PRIVS_DEFAULT_USER "drover-svc" /* made by the drover-agent package */
#define PRIVS_NAME_MAX     64

struct privs {
	bool change_ids; /* set uid/gid (false: keep the agent's own) */
	uid_t uid;
	gid_t gid;
	bool all_caps; /* keep every capability (root without a list) */
	uint64_t caps; /* bit (1 << CAP_X) for each capability kept */
	bool no_new_privs;
	char user[PRIVS_NAME_MAX]; /* for messages: "drover-svc (uid 999)" */
};

/*
 * Resolve user/group names or numeric ids on this host. user "" means
 * default_user. caps are names such as "CAP_NET_BIND_SERVICE".
 * no_new_privs is asked for by the caller (services: unless keep_setid).
 * An agent that does not run as root can only run things as itself: the
 * default user then means the agent's user, and any other user is refused.
 * DRV_OK and *out, or DRV_ENOENT / DRV_EINVAL / DRV_EPERM with err set.
 */
int privs_resolve(const char *user, const char *group, const char *default_user, char *const *caps,
                  size_t n_caps, bool no_new_privs, struct privs *out, char *err, size_t size);

/* The credentials of root with every capability (hooks without a user). */
void privs_root(struct privs *out);

/* True when p runs as uid 0. */
bool privs_is_root(const struct privs *p);

/* In a forked child: drop to p. Only async-signal-safe system calls.
 * 0, or the errno of the step that failed. */
int privs_apply(const struct privs *p);

/* "CAP_NET_BIND_SERVICE" -> 10; -1 when unknown. */
int privs_cap_number(const char *name);

#endif
