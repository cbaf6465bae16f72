/*
 * fetch_helper.h: registry pulls in a short-lived, unprivileged process.
 *
 * Everything a registry (or whoever sits between it and us) controls, the
 * HTTP and TLS stream, token and error documents, manifests before they are
 * checked against their digest, is handled by `drover-agent fetch`, exec'd
 * once per pull: it runs as an unprivileged user (FETCH_USER, else the
 * services' user), with no_new_privs, no capabilities, no supplementary
 * groups, no open file but its stdin (/dev/null), stdout (the pipe below) and
 * stderr (the agent's log), and its working directory in the blob cache,
 * the one place it may write (the cache's directories belong to its user;
 * the agent's key, state and releases stay out of its reach). It downloads
 * the image's blobs into the cache, each verified by sha256 as it streams,
 * and says how it went in one frame (fetch_proto.h).
 *
 * The agent trusts none of it: it then reads the image from the cache as if
 * offline, hashing the manifest (and index) against the pinned digest and the
 * config against the manifest, and every layer again while it unpacks it
 * (puller.c). A cancelled step or a stopping agent kills the helper.
 */
#ifndef DRV_AGENT_FETCH_HELPER_H
#define DRV_AGENT_FETCH_HELPER_H

#include <stddef.h>
#include <stdint.h>

#include "fetch_proto.h"
#include "stop_token.h"

#define FETCH_USER    "drover-fetch"
#define FETCH_KILL_MS 2000 /* SIGTERM, then SIGKILL after this long */

struct fetch_helper_cfg {
	const char *exe;   /* the drover-agent binary ("/proc/self/exe") */
	const char *cache; /* the blob cache: the helper's working directory */
	const char *user;  /* NULL: FETCH_USER if it exists, else drover-svc */
	int insecure;
	long stall_s;
	const struct stop_token *cancel;
	int64_t deadline_ms; /* monotonic (drv_mono_ms); 0 = none: the pull's deadline */
};

/* Run one pull in the helper. DRV_OK with *done filled (the helper's own
 * account: untrusted, for statistics); else err says what failed. */
int fetch_helper_run(const struct fetch_helper_cfg *cfg, const char *reference, const char *digest,
                     struct fetch_done *done, char *err, size_t err_size);

/* `drover-agent fetch --reference REF --digest D [--insecure] [--stall-s N]
 * [--within-ms N]` (the pull ends N ms after the helper starts; the agent
 * kills the helper FETCH_KILL_MS after the deadline if it has not):
 * the helper's side (argv[0] is "fetch"). Exit 0 when the blobs are in the
 * cache, 1 when not (the frame says why), 2 on usage. */
int fetch_helper_main(int argc, char **argv);

#endif
