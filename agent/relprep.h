/*
 * relprep.h: what the exec and systemd drivers both do to a release before
 * a service runs from it. The release is the puller's (RELEASES/<service>/
 * <hex>, its image unpacked in rootfs/); these functions get it (the
 * drivers' prepare op), make it the service's (owner and mode, setuid bits,
 * the instruction's files), read the image's configuration, resolve the
 * command inside it and list the environment the service gets. Both
 * drivers then start the service their own way (fork/exec or a unit file).
 */
#ifndef DRV_AGENT_RELPREP_H
#define DRV_AGENT_RELPREP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "driver.h"
#include "privs.h"

struct puller;

/* The drivers' prepare op over the puller: stage the release, or with
 * local_only only find it on this host (a rollback). *dir_out: malloc'd. */
int relprep_stage(struct puller *p, struct driver_instance *in, bool local_only, char **dir_out,
                  char *err, size_t size);

/* The release is readable by the service's group only (0750 root:GID), its
 * setuid/setgid files keep their bits only with keep_setid (a release an
 * older agent unpacked without a setid list is stripped now), and the
 * instruction's files are written into its root, owned by the service. */
int relprep_secure(const char *release_dir, const Drover__ServiceSpec *sp, const struct privs *pv,
                   char *err, size_t size);

/* The image's Entrypoint+Cmd, Env and WorkingDir (RELEASE/image-config.json).
 * argv is always an array (maybe empty); env and workdir may be NULL. */
struct relprep_image {
	json_t *root, *argv, *env;
	const char *workdir;
};

void relprep_image_load(const char *release_dir, struct relprep_image *ic);
void relprep_image_free(struct relprep_image *ic);

/* True when s has a ".." path component. */
bool relprep_has_dotdot(const char *s);

/* Open the program cmd inside root as if root were "/" (symlinks resolve
 * inside it, ".." is refused), with open flags (O_PATH or O_RDONLY...):
 * on success *fd and its real path (beneath root's real path, which is
 * *root_len bytes of real). err names what is wrong. */
int relprep_program(const char *root, const char *cmd, int flags, int *fd, char *real,
                    size_t real_size, size_t *root_len, char *err, size_t size);

/* The service's environment in order (a later key wins): PATH, HOME, the
 * image's, the plan's, then DROVER_SERVICE, DROVER_VERSION, DROVER_SLOT,
 * DROVER_PORT and (not chrooted) DROVER_ROOT=root. fn's first error ends
 * the list and is returned. */
typedef int (*relprep_env_fn)(const char *key, const char *value, void *arg);
int relprep_env(const Drover__ServiceSpec *sp, const char *service, const char *slot,
                const struct relprep_image *ic, const char *root, relprep_env_fn fn, void *arg);

#endif
