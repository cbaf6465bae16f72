/*
 * agent_init.c: `drover-agent init`: writes DIR/agent.yaml. The agent's own
 * key pair is made on its first start, not here.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_cmds.h"
#include "agent_conf.h"
#include "atomicfile.h"
#include "err.h"
#include "keys.h"

struct init_opts {
	char dir[PATH_MAX];
	const char *id, *tls_ca, *token_file;
	struct drv_strlist urls; /* --coordinator, repeated for the nodes of a group */
	struct drv_strlist keys;
	struct drv_kvlist labels;
};

/* An absolute path for a file given on the command line (must exist). */
static int add_abs(struct drv_strlist *l, const char *path)
{
	char abs[PATH_MAX];

	if (realpath(path, abs) == NULL) {
		fprintf(stderr, "drover-agent init: %s: %s\n", path, strerror(errno));
		return DRV_ENOENT;
	}
	return drv_strlist_add(l, abs);
}

static int add_label(struct init_opts *o, const char *kv)
{
	const char *eq = strchr(kv, '=');
	char key[64];

	if (eq == NULL || eq == kv || (size_t)(eq - kv) >= sizeof(key)) {
		fprintf(stderr, "drover-agent init: --label wants K=V, got '%s'\n", kv);
		return DRV_EINVAL;
	}
	memcpy(key, kv, (size_t)(eq - kv));
	key[eq - kv] = '\0';
	return drv_kvlist_add(&o->labels, key, eq + 1);
}

static int parse(int argc, char **argv, struct init_opts *o)
{
	static const struct option longopts[] = {
	        {"dir", required_argument, NULL, 'd'},
	        {"coordinator", required_argument, NULL, 'c'},
	        {"coordinator-key", required_argument, NULL, 'k'},
	        {"id", required_argument, NULL, 'i'},
	        {"label", required_argument, NULL, 'l'},
	        {"tls-ca", required_argument, NULL, 't'},
	        {"enroll-token-file", required_argument, NULL, 'e'},
	        {NULL, 0, NULL, 0},
	};
	const char *dir = NULL;
	int ch, rc = DRV_OK;

	optind = 1;
	while (rc == DRV_OK && (ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd': dir = optarg; break;
		case 'c': rc = drv_strlist_add(&o->urls, optarg); break;
		case 'k': rc = add_abs(&o->keys, optarg); break;
		case 'i': o->id = optarg; break;
		case 'l': rc = add_label(o, optarg); break;
		case 't': o->tls_ca = optarg; break;
		case 'e': o->token_file = optarg; break;
		default: rc = DRV_EINVAL;
		}
	}
	if (rc != DRV_OK)
		return rc;
	if (dir == NULL || o->urls.n == 0 || o->keys.n == 0 || o->id == NULL || optind != argc) {
		fprintf(stderr,
		        "drover-agent init: --dir, --coordinator, --coordinator-key and --id "
		        "are required\n");
		return DRV_EINVAL;
	}
	if (drv_mkdirs(dir, 0700) != DRV_OK || realpath(dir, o->dir) == NULL) {
		fprintf(stderr, "drover-agent init: cannot create %s: %s\n", dir, strerror(errno));
		return DRV_EIO;
	}
	return DRV_OK;
}

static int set_str(char **field, const char *value)
{
	char *v = value ? strdup(value) : NULL;

	if (value != NULL && v == NULL)
		return DRV_ENOMEM;
	free(*field);
	*field = v;
	return DRV_OK;
}

static int set_abs(char **field, const char *path)
{
	char abs[PATH_MAX];

	if (path == NULL)
		return DRV_OK;
	if (realpath(path, abs) == NULL) {
		fprintf(stderr, "drover-agent init: %s: %s\n", path, strerror(errno));
		return DRV_ENOENT;
	}
	return set_str(field, abs);
}

static int fill(const struct init_opts *o, struct agent_conf *c)
{
	int rc = set_str(&c->id, o->id);

	for (size_t i = 0; rc == DRV_OK && i < o->urls.n; i++)
		rc = drv_strlist_add(&c->coordinator, o->urls.v[i]);
	if (rc == DRV_OK)
		rc = set_abs(&c->tls_ca, o->tls_ca);
	if (rc == DRV_OK)
		rc = set_abs(&c->enroll_token_file, o->token_file);
	for (size_t i = 0; rc == DRV_OK && i < o->keys.n; i++)
		rc = drv_strlist_add(&c->coordinator_keys, o->keys.v[i]);
	for (size_t i = 0; rc == DRV_OK && i < o->labels.n; i++)
		rc = drv_kvlist_add(&c->labels, o->labels.v[i].key, o->labels.v[i].value);
	return rc;
}

static int write_config(const struct init_opts *o)
{
	struct agent_conf c;
	struct drv_cfg_diag diag;
	const struct drv_cfg_opt *opts;
	char path[PATH_MAX + 16], *text = NULL;
	size_t n;
	int rc;

	snprintf(path, sizeof(path), "%s/agent.yaml", o->dir);
	if (access(path, F_OK) == 0) {
		fprintf(stderr, "drover-agent init: %s exists\n", path);
		return DRV_EEXIST;
	}
	rc = agent_conf_defaults(o->dir, &c);
	if (rc == DRV_OK)
		rc = fill(o, &c);
	opts = agent_conf_options(&n);
	if (rc == DRV_OK)
		rc = drv_cfg_format(opts, n, &c,
		                    "# drover-agent configuration, written by "
		                    "drover-agent init.\n",
		                    &text);
	agent_conf_free(&c);
	if (rc == DRV_OK)
		rc = drv_write_atomic(path, text, strlen(text), 0600);
	free(text);
	if (rc == DRV_OK && (rc = agent_conf_load(path, &c, &diag)) != DRV_OK) {
		drv_cfg_diag_print(&diag);
		unlink(path);
	}
	if (rc == DRV_OK) {
		agent_conf_free(&c);
		printf("drover-agent: wrote %s\n  run: drover-agent --config %s\n", path, path);
	}
	return rc;
}

int agent_cmd_init(int argc, char **argv)
{
	struct init_opts o = {0};
	int rc = parse(argc, argv, &o);

	if (rc == DRV_OK)
		rc = write_config(&o);
	drv_strlist_free(&o.keys);
	drv_strlist_free(&o.urls);
	drv_kvlist_free(&o.labels);
	return rc == DRV_OK ? 0 : rc == DRV_EINVAL ? 2 : 1;
}
