/*
 * unpack_helper.h: image layers unpacked in a process of their own.
 *
 * `drover-agent unpack-layer [DIGEST]`, exec'd once per layer: the layer on
 * stdin, the release's root directory as fd 3, one result line on stdout
 * ("ok ENTRIES BYTES WHITEOUTS", "error MESSAGE", or "corrupt DIGEST" when
 * the layer hashes to another digest than DIGEST). The agent passes DIGEST
 * for every layer, just fetched or found in the cache: the fetch helper that
 * wrote the cache runs unprivileged and is not trusted. The helper hashes the
 * bytes it unpacks as it reads them, one pass, stdin read once to its end
 * (no window between a check and the unpack for a file that changes), and
 * on a mismatch empties the root before it answers "corrupt"; the agent's
 * process never hashes layers (sha256.h). It runs as root (it keeps the owners of the layer's
 * files) with no_new_privs, and does what unpack_layer_fd does (unpack.h: nothing written outside
 * the root). The agent's own process so never loads libarchive and its decompressors (lazylib.h),
 * and a decompressor bug crashes a helper, not the agent.
 */
#ifndef DRV_AGENT_UNPACK_HELPER_H
#define DRV_AGENT_UNPACK_HELPER_H

#include <stddef.h>

#include "unpack.h"

#define UNPACK_REPLY_MAX 1024

/* Unpack the layer read from layer_fd (a regular file, at its start) onto
 * root_fd in the helper exe (drover-agent, "/proc/self/exe"). As
 * unpack_layer_fd; with a digest (else NULL), the layer is hashed as it is
 * unpacked: DRV_EDECODE for "corrupt" (root_fd emptied by the helper). */
int unpack_helper_run(const char *exe, int layer_fd, int root_fd, const char *digest,
                      struct unpack_stats *stats, char *err, size_t err_size);

/* The helper's side (argv[0] is "unpack-layer"): exit 0 when unpacked. */
int unpack_helper_main(int argc, char **argv);

/* Pure: read a reply line (at most UNPACK_REPLY_MAX bytes, not necessarily
 * terminated). DRV_OK with *stats for "ok ..."; DRV_EPERM for the helper's
 * error (its message in err); DRV_EDECODE for "corrupt ..."; DRV_EIO for
 * anything else. */
int unpack_reply_parse(const char *buf, size_t len, struct unpack_stats *stats, char *err,
                       size_t err_size);

#endif
