/*
 * deploy_hosts.h: which agents a plan runs on. A service's (or hook's)
 * `hosts` is a list of agent ids or a label selector; it resolves against
 * the accepted agents (core_agents_brief_json), and every listed id must be an
 * accepted agent, every selector must match at least one.
 *
 * For each service host the agent's reported releases tell whether it runs
 * a previous release of the service (rollback re-activates it, without it
 * rollback stops the service), in which blue-green slot, and which version
 * (the "from_version" operators see).
 *
 * The result ("targets", a new JSON reference owned by the caller):
 *   {"services": [[{"agent", "prev": bool, "slot", "from"}, ...] per service],
 *    "pre": [[agent, ...] per hook], "migrations": [...], "post": [...],
 *    "traffic": [[agent, ...] per service (traffic hook hosts, else [])]}
 * and, when a service is blue-green across host sets (strategy.sets),
 *   "sets": [{SET: [hosts as in services]} per service (null without sets)]
 * with services[i] both sets' hosts until deploy_hosts_choose_sets picks one.
 */
#ifndef DRV_DEPLOY_HOSTS_H
#define DRV_DEPLOY_HOSTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "plan.h"

/* The status an agent outside the plan's environment is given before
 * resolution: it is no candidate, and a list that names it says so. */
#define DEPLOY_HOSTS_OUTSIDE "outside the plan's environment"

struct deploy_hosts_err {
	char field[160];
	int line;
	char message[256];
};

/* agents (core_agents_brief_json) by id: a new JSON object id -> agent (the first
 * of an id), for deploy_hosts_find; NULL when out of memory. One lookup per
 * host instead of a scan of the fleet per host (10,000 hosts: 10^8 string
 * compares before it). */
json_t *deploy_hosts_index(const json_t *agents);

/* The agent of that id in byid (deploy_hosts_index), or NULL. */
const json_t *deploy_hosts_find(const json_t *byid, const char *id);

/* The agent's reported release of service (one with a digest): the running
 * one if there are two (blue-green), else the other; NULL when none or
 * when agent is NULL. */
const json_t *deploy_hosts_release(const json_t *agent, const char *service);

/* Whether h names or selects the agent, whatever its status. */
bool deploy_hosts_selects(const struct drv_plan_hosts *h, const json_t *agent);

/* DRV_ENOENT (err says where) when hosts are unknown or a selector matches
 * no accepted agent; DRV_ENOMEM. agents is borrowed. */
int deploy_hosts_resolve(const struct drv_plan *p, const json_t *agents, json_t **out,
                         struct deploy_hosts_err *err);

/* Agents before this version ignore the `user`, `group` and `capabilities`
 * of services and hooks and run them all as root (docs/security.md). */
#define DEPLOY_HOSTS_PRIVS_VERSION "0.2.0"

/* Whether version ("MAJOR.MINOR.PATCH", from the agent's Hello) is older
 * than min; an empty or unreadable version is older. */
bool deploy_hosts_version_older(const char *version, const char *min);

/* DRV_EPERM (err names the field, the agent and its version) when a service
 * or hook that is not to run as root would go to an agent older than
 * DEPLOY_HOSTS_PRIVS_VERSION: that agent would run it as root. targets is
 * deploy_hosts_resolve's result for p; agents is borrowed. */
int deploy_hosts_check_privs(const struct drv_plan *p, const json_t *agents, const json_t *targets,
                             struct deploy_hosts_err *err);

/* One deployment per service at a time: where two deployments (plan and
 * targets each) would both act on the same service on the same agent.
 * The first such service and agent go to service/agent (truncated to
 * their caps) and true is returned; false when they touch nothing in
 * common. Services are the same when their names are, whatever the plan
 * or environment. */
bool deploy_hosts_overlap(const struct drv_plan *a, const json_t *ta, const struct drv_plan *b,
                          const json_t *tb, char *service, size_t service_cap, char *agent,
                          size_t agent_cap);

/*
 * Blue-green across host sets: every service with strategy.sets goes to
 * the set that is not live (live: an object service name -> live set name;
 * no entry: no set was ever live, the first set goes). In targets,
 * services[i] becomes that set's hosts and two arrays are added:
 *   "live": [[agent, ...] per service: the other set, whose traffic moves],
 *   "choice": [{"set": index in strategy.sets, "first": bool,
 *               "live": name (absent when first)} per service, else null].
 * Targets chosen before are left as they are. DRV_ESTATE (why says it)
 * when the live set is none of the service's sets (renamed): which set is
 * idle cannot be told. DRV_ENOMEM.
 */
int deploy_hosts_choose_sets(const struct drv_plan *p, json_t *targets, const json_t *live,
                             char *why, size_t why_cap);

#endif
