/*
 * plan_systemd.c: a service's `systemd:` mapping (driver systemd): unit
 * options the agent writes into the service's unit. Every field is
 * optional; `defaults.systemd` and the service's own are merged field by
 * field, like `failure`.
 *
 *   systemd:
 *     kill_mode: control-group | mixed | process    (default control-group)
 *     memory_max: 256M           bytes, or a number with K, M, G, T (1024-based)
 *     cpu_quota: 50%             of one CPU; above 100% for several
 *     tasks_max: 64
 *     protect_system: full       no | yes | full | strict (default full)
 *     private_tmp: true          (default true)
 *     no_new_privileges: true    (default true, false with keep_setid)
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "plan_int.h"

static const char *const kill_modes[] = {"control-group", "mixed", "process", NULL};
static const char *const protect_names[] = {"full", "no", "yes", "strict", NULL};

#define MEMORY_MIN   (1ull << 20) /* 1 MiB: less cannot run anything */
#define MEMORY_LIMIT (1ull << 50)
#define CPU_MAX_PCT  100000u /* 1000 CPUs */

void plan_systemd_defaults(struct drv_plan_systemd *sd)
{
	memset(sd, 0, sizeof(*sd));
	sd->private_tmp = -1;
	sd->no_new_privileges = -1;
}

/* "256M" -> bytes; 0 when malformed. */
static unsigned long long parse_size(const char *s)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (s[0] < '0' || s[0] > '9')
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return 0;
	switch (*end) {
	case 'K': shift = 10; break;
	case 'M': shift = 20; break;
	case 'G': shift = 30; break;
	case 'T': shift = 40; break;
	case '\0': break;
	default: return 0;
	}
	if (*end != '\0' && end[1] != '\0')
		return 0;
	if (v > (MEMORY_LIMIT >> shift))
		return 0;
	return v << shift;
}

static void read_memory(struct vctx *c, const json_t *v, const char *path,
                        struct drv_plan_systemd *sd)
{
	json_t *m = json_object_get(v, "memory_max");
	char p[DRV_YJ_PATH_MAX];
	unsigned long long b = 0;

	if (m == NULL || json_is_null(m))
		return;
	plan_pjoin(p, path, "memory_max");
	if (json_is_integer(m) && json_integer_value(m) > 0)
		b = (unsigned long long)json_integer_value(m);
	else if (json_is_string(m))
		b = parse_size(json_string_value(m));
	if (b < MEMORY_MIN || b > MEMORY_LIMIT) {
		plan_verr(c, p,
		          "must be a size from 1M to 1024T (bytes, or a number with K, M, G, T)");
		return;
	}
	sd->memory_max = b;
}

static void read_cpu(struct vctx *c, const json_t *v, const char *path, struct drv_plan_systemd *sd)
{
	json_t *q = json_object_get(v, "cpu_quota");
	char p[DRV_YJ_PATH_MAX], *end;
	const char *s;
	unsigned long pct;

	if (q == NULL || json_is_null(q))
		return;
	plan_pjoin(p, path, "cpu_quota");
	s = json_string_value(q);
	if (s == NULL || s[0] < '0' || s[0] > '9' ||
	    (errno = 0, pct = strtoul(s, &end, 10), errno != 0) || strcmp(end, "%") != 0 ||
	    pct == 0 || pct > CPU_MAX_PCT) {
		plan_verr(c, p, "must be a percentage of one CPU, 1%% to %u%% (\"50%%\")",
		          CPU_MAX_PCT);
		return;
	}
	sd->cpu_quota = (uint32_t)pct;
}

static void read_bool(struct vctx *c, const json_t *v, const char *path, const char *key, int *out)
{
	json_t *b = json_object_get(v, key);
	char p[DRV_YJ_PATH_MAX];

	if (b == NULL || json_is_null(b))
		return;
	if (!json_is_boolean(b)) {
		plan_pjoin(p, path, key);
		plan_verr(c, p, "must be true or false");
		return;
	}
	*out = json_is_true(b) ? 1 : 0;
}

void plan_systemd_read(struct vctx *c, const json_t *v, const char *path,
                       struct drv_plan_systemd *sd)
{
	static const char *const keys[] = {
	        "kill_mode",      "memory_max",  "cpu_quota",         "tasks_max",
	        "protect_system", "private_tmp", "no_new_privileges", NULL};
	int e;

	if (v == NULL || json_is_null(v))
		return;
	if (!plan_want_object(c, v, path))
		return;
	plan_check_keys(c, v, path, keys);
	e = sd->kill_mode;
	if (plan_read_enum(c, v, path, "kill_mode", kill_modes, &e) == 1)
		sd->kill_mode = e;
	e = sd->protect_system;
	if (plan_read_enum(c, v, path, "protect_system", protect_names, &e) == 1)
		sd->protect_system = e;
	read_memory(c, v, path, sd);
	read_cpu(c, v, path, sd);
	plan_read_uint(c, v, path, "tasks_max", 1, 1000000, &sd->tasks_max);
	read_bool(c, v, path, "private_tmp", &sd->private_tmp);
	read_bool(c, v, path, "no_new_privileges", &sd->no_new_privileges);
}

const char *plan_systemd_kill_mode(const struct drv_plan_systemd *sd)
{
	return kill_modes[sd->kill_mode];
}

const char *plan_systemd_protect(const struct drv_plan_systemd *sd)
{
	return protect_names[sd->protect_system];
}
