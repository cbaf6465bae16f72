/*
 * driver.h: runtime drivers behind one ops table (prepare, start, stop,
 * status, plus a supervision tick). A driver runs "instances": one release of
 * one service in one slot ("svc", or "svc@green" for a blue-green slot), so
 * two releases of a service can run side by side.
 *
 * Drivers: exec (driver_exec.c, the agent supervises the process itself),
 * container (driver_container.c, Docker Engine API over a unix socket, e.g.
 * Podman's) and systemd (driver_systemd.c, a unit per instance over D-Bus).
 * driver_find() is the registry.
 */
#ifndef DRV_AGENT_DRIVER_H
#define DRV_AGENT_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drover.pb-c.h"
#include "stop_token.h"

struct puller;
struct puller_stats;

#define DRIVER_INSTANCE_MAX 140

/* One release of one service in one slot. */
struct driver_instance {
	const char *service;
	const char *slot;               /* "" when not blue-green */
	char name[DRIVER_INSTANCE_MAX]; /* "svc" or "svc@slot" */
	const Drover__ServiceSpec *spec;
	const char *reference;   /* image reference */
	const char *digest;      /* pinned digest */
	const char *release_dir; /* exec: RELEASES/svc/<hex>; set by prepare */
	/* prepare adds the bytes it fetched and found cached (NULL: not counted) */
	struct puller_stats *pull_stats;
	int64_t deadline_ms; /* prepare must end by then (monotonic, drv_mono_ms); 0 = none */
};

enum driver_state {
	DRIVER_STOPPED, /* not running, not wanted */
	DRIVER_RUNNING,
	DRIVER_STARTING, /* wanted, between restarts (crashed, waiting for its backoff) */
	DRIVER_FAILED,   /* wanted, but crash-looping or gone */
};

struct driver_status {
	enum driver_state state;
	int pid;                /* exec: the process; 0 otherwise */
	unsigned restarts;      /* since the last start by the runtime */
	int64_t alive_since_ms; /* wall clock its process started; 0 unknown */
	char detail[256];
};

/* What drivers share with the runtime. */
struct driver_env {
	const char *state_dir;
	const char *log_dir;
	const char *docker_socket;
	struct puller *puller;
	unsigned long log_max_bytes;     /* exec logs rotate past this; 0 = 10 MiB */
	unsigned log_keep;               /* rotated files kept (NAME.log.1 .. .N); 0 = 3 */
	const struct stop_token *cancel; /* set: the agent is stopping; may be NULL */
	/* Crash loops and re-adoption outcomes are worth a report. */
	void (*notice)(const char *service, const char *slot, const char *msg, void *arg);
	void *notice_arg;
};

struct driver_ops {
	const char *name;
	int (*init)(const struct driver_env *env, void **state);
	void (*fini)(void *state);
	/* Get the image ready (pull/unpack or pull into the engine). With
	 * local_only, use only what is on the host already (fast rollback).
	 * Sets in->release_dir when the driver uses one (malloc'd in *dir_out). */
	int (*prepare)(void *state, struct driver_instance *in, bool local_only, char **dir_out,
	               char *err, size_t err_size);
	/* Start it (replacing a stale instance of the same name). */
	int (*start)(void *state, const struct driver_instance *in, char *err, size_t err_size);
	/* Stop it: SIGTERM (or the engine's stop) then kill after grace_ms. */
	int (*stop)(void *state, const struct driver_instance *in, uint32_t grace_ms, char *err,
	            size_t err_size);
	/* What is really there. */
	int (*status)(void *state, const struct driver_instance *in, struct driver_status *out);
	/* After an agent restart: take over an instance that should be running
	 * (re-adopt it, or start it again if it is gone). */
	int (*adopt)(void *state, const struct driver_instance *in, char *err, size_t err_size);
	/* on_config: reload (may be NULL: the driver restarts instead): the
	 * running instance in->name takes in->spec's files and gets SIGHUP. */
	int (*reload)(void *state, const struct driver_instance *in, char *err, size_t err_size);
	/* Called every ~200 ms by the supervisor thread (may be NULL). */
	void (*tick)(void *state);
	/* Forget images of the driver's own store that no release in `digests`
	 * (the kept current, previous and staged ones) uses (may be NULL). */
	void (*gc)(void *state, char *const *digests, size_t n);
};

extern const struct driver_ops driver_exec_ops;
extern const struct driver_ops driver_container_ops;
extern const struct driver_ops driver_systemd_ops;

/* The registry's size: every Driver value below it may have a driver
 * (driver.c's table is declared with it, so a driver added beyond it does
 * not compile). */
#define DRIVER_SLOTS (DROVER__DRIVER__DRIVER_SYSTEMD + 1)

/* The driver for a spec's Driver value; NULL if unknown. */
const struct driver_ops *driver_find(Drover__Driver d);

/* The systemd driver's unit of a service's instance: "drover-SVC.service",
 * or "drover-SVC@SLOT.service" when slot is not empty (its output is in
 * the journal under that name). */
void driver_systemd_unit(const char *service, const char *slot, char *buf, size_t size);

/* Fill in->name from service and slot. */
void driver_instance_name(struct driver_instance *in);

#endif
