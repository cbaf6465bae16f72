/*
 * init.c: `droverd init`: a new coordinator directory.
 *
 * Writes DIR/droverd.yaml, the signing key pair (coordinator.key 0600,
 * coordinator.pub), a self-signed TLS certificate and key for tls+tcp://
 * (made with the openssl command; agents pin the certificate), the database
 * with the admin token's hash (tokens.h), DIR/admin.token (0600), and with
 * --enroll-token an enrollment token in DIR/enroll.token (0600).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atomicfile.h"
#include "clock.h"
#include "commands.h"
#include "dconf.h"
#include "err.h"
#include "http_server.h"
#include "keys.h"
#include "store.h"
#include "secret.h"
#include "tokens.h"

/* The token init makes lets the first hosts enroll; it expires like any other
 * (droverd enroll-token create makes more). */
#define INIT_TOKEN_TTL_MS (24 * 3600 * 1000LL)

extern char **environ;

struct init_opts {
	char dir[PATH_MAX];
	struct drv_strlist listen;
	const char *api;
	int enroll_token;
	int api_tls; /* --api-tls: the API serves HTTPS with api.crt/api.key */
};

static int parse(int argc, char **argv, struct init_opts *o)
{
	static const struct option longopts[] = {
	        {"dir", required_argument, NULL, 'd'}, {"listen", required_argument, NULL, 'l'},
	        {"api", required_argument, NULL, 'a'}, {"enroll-token", no_argument, NULL, 'e'},
	        {"api-tls", no_argument, NULL, 't'},   {NULL, 0, NULL, 0},
	};
	const char *dir = NULL;
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd': dir = optarg; break;
		case 'l':
			if (drv_strlist_add(&o->listen, optarg) != DRV_OK)
				return DRV_ENOMEM;
			break;
		case 'a': o->api = optarg; break;
		case 'e': o->enroll_token = 1; break;
		case 't': o->api_tls = 1; break;
		default: return DRV_EINVAL;
		}
	}
	if (dir == NULL || optind != argc) {
		fprintf(stderr, "droverd init: --dir DIR is required\n");
		return DRV_EINVAL;
	}
	if (drv_mkdirs(dir, 0700) != DRV_OK || realpath(dir, o->dir) == NULL) {
		fprintf(stderr, "droverd init: cannot create %s: %s\n", dir, strerror(errno));
		return DRV_EIO;
	}
	return DRV_OK;
}

/* Run a command, its output to our stderr; DRV_OK if it exits 0. */
static int run(char *const argv[])
{
	pid_t pid;
	int status;

	if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ) != 0)
		return DRV_ESYS;
	if (waitpid(pid, &status, 0) != pid)
		return DRV_ESYS;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? DRV_OK : DRV_EIO;
}

/* A self-signed P-256 certificate (CN=droverd) valid for ten years, for
 * droverd, localhost, this host's name and, when given, the API's address
 * (api: HOST:PORT; an IP address goes in as IP:, a name as DNS:). */
static int make_tls(const char *cert, const char *key, const char *api)
{
	char host[256] = "localhost", san[768], api_host[64] = "", extra[96] = "";
	uint16_t port;
	char *argv[] = {"openssl",
	                "req",
	                "-x509",
	                "-newkey",
	                "ec",
	                "-pkeyopt",
	                "ec_paramgen_curve:prime256v1",
	                "-nodes",
	                "-days",
	                "3650",
	                "-subj",
	                "/CN=droverd",
	                "-addext",
	                san,
	                "-keyout",
	                (char *)key,
	                "-out",
	                (char *)cert,
	                NULL};
	mode_t old;
	int rc;

	gethostname(host, sizeof(host) - 1);
	if (api != NULL && drv_http_parse_listen(api, api_host, &port) == DRV_OK)
		snprintf(extra, sizeof(extra), ",%s:%s",
		         strchr(api_host, ':') ||
		                         strspn(api_host, "0123456789.") == strlen(api_host)
		                 ? "IP"
		                 : "DNS",
		         api_host);
	snprintf(san, sizeof(san), "subjectAltName=DNS:droverd,DNS:localhost,IP:127.0.0.1,DNS:%s%s",
	         host, extra);
	old = umask(077);
	rc = run(argv);
	umask(old);
	if (rc != DRV_OK) {
		fprintf(stderr, "droverd init: openssl could not make the TLS certificate%s\n",
		        rc == DRV_ESYS ? " (is the openssl command installed?)" : "");
		return rc;
	}
	chmod(cert, 0644);
	return DRV_OK;
}

static int make_enroll_token(struct store *s, const char *path)
{
	char tok[DRV_SECRET_MAX];
	int rc;

	rc = store_enroll_token_create(
	        s, &(struct store_token){"init", drv_wall_ms() + INIT_TOKEN_TTL_MS, 0, NULL},
	        drv_wall_ms(), tok, sizeof(tok));
	if (rc == DRV_OK)
		rc = drv_secret_write_file(path, tok);
	memset(tok, 0, sizeof(tok));
	if (rc != DRV_OK)
		fprintf(stderr, "droverd init: cannot make %s: %s\n", path, drv_strerror(rc));
	return rc;
}

static int write_config(const struct init_opts *o, const char *path)
{
	struct droverd_conf c;
	const struct drv_cfg_opt *opts;
	char *text = NULL, *api = NULL;
	size_t n;
	int rc;

	rc = dconf_defaults(o->dir, &c);
	if (rc != DRV_OK)
		return rc;
	if (o->listen.n > 0) {
		drv_strlist_free(&c.listen);
		for (size_t i = 0; i < o->listen.n && rc == DRV_OK; i++)
			rc = drv_strlist_add(&c.listen, o->listen.v[i]);
	}
	if (o->api_tls && rc == DRV_OK) {
		char cert[PATH_MAX + 16], key[PATH_MAX + 16];
		snprintf(cert, sizeof(cert), "%s/api.crt", o->dir);
		snprintf(key, sizeof(key), "%s/api.key", o->dir);
		c.api_tls_cert = strdup(cert);
		c.api_tls_key = strdup(key);
		if (c.api_tls_cert == NULL || c.api_tls_key == NULL)
			rc = DRV_ENOMEM;
	}
	if (o->api != NULL && rc == DRV_OK) {
		api = strdup(o->api);
		if (api == NULL)
			rc = DRV_ENOMEM;
		else {
			free(c.api);
			c.api = api;
		}
	}
	opts = dconf_options(&n);
	if (rc == DRV_OK)
		rc = drv_cfg_format(opts, n, &c,
		                    "# droverd configuration, written by droverd init.\n", &text);
	if (rc == DRV_OK)
		rc = drv_write_atomic(path, text, strlen(text), 0644);
	free(text);
	dconf_free(&c);
	return rc;
}

static int check_config(const char *path)
{
	struct droverd_conf c;
	struct drv_cfg_diag d;
	int rc = dconf_load(path, &c, &d);

	if (rc != DRV_OK) {
		drv_cfg_diag_print(&d);
		return rc;
	}
	dconf_free(&c);
	return DRV_OK;
}

static int init_dir(struct init_opts *o)
{
	char p[8][PATH_MAX + 32];
	struct drv_keypair kp;
	struct store *s = NULL;
	int rc;

	snprintf(p[0], sizeof(p[0]), "%s/droverd.yaml", o->dir);
	snprintf(p[1], sizeof(p[1]), "%s/coordinator.key", o->dir);
	snprintf(p[2], sizeof(p[2]), "%s/coordinator.pub", o->dir);
	snprintf(p[3], sizeof(p[3]), "%s/droverd.db", o->dir);
	snprintf(p[4], sizeof(p[4]), "%s/tls.crt", o->dir);
	snprintf(p[5], sizeof(p[5]), "%s/tls.key", o->dir);
	snprintf(p[6], sizeof(p[6]), "%s/api.crt", o->dir);
	snprintf(p[7], sizeof(p[7]), "%s/api.key", o->dir);
	if (access(p[0], F_OK) == 0 || access(p[3], F_OK) == 0) {
		fprintf(stderr, "droverd init: %s is already initialized\n", o->dir);
		return DRV_EEXIST;
	}
	rc = drv_keypair_load_or_create(p[1], p[2], &kp);
	drv_keypair_wipe(&kp);
	if (rc != DRV_OK) {
		fprintf(stderr, "droverd init: signing key %s: %s\n", p[1], drv_strerror(rc));
		return rc;
	}
	rc = make_tls(p[4], p[5], NULL);
	if (rc == DRV_OK)
		rc = make_tls(p[6], p[7], o->api ? o->api : DRV_API_DEFAULT_LISTEN);
	if (rc == DRV_OK)
		rc = store_open(p[3], &s);
	if (rc == DRV_OK) {
		rc = drv_token_init_admin(store_db(s), o->dir);
		if (rc != DRV_OK)
			fprintf(stderr, "droverd init: admin token: %s\n", drv_strerror(rc));
	}
	if (rc == DRV_OK && o->enroll_token) {
		char tok[PATH_MAX + 32];
		snprintf(tok, sizeof(tok), "%s/enroll.token", o->dir);
		rc = make_enroll_token(s, tok);
	}
	store_close(s);
	if (rc == DRV_OK)
		rc = write_config(o, p[0]);
	if (rc == DRV_OK)
		rc = check_config(p[0]);
	if (rc == DRV_OK)
		printf("droverd: initialized %s\n"
		       "  run:    droverd --config %s\n"
		       "  agents: copy %s (and %s for tls+tcp://) to each host\n"
		       "  cli:    %s is the API's certificate (%s; drover --cacert)\n",
		       o->dir, p[0], p[2], p[4], p[6],
		       o->api_tls ? "HTTPS is on" : "HTTPS with --api-tls");
	return rc;
}

int droverd_cmd_init(int argc, char **argv)
{
	struct init_opts o = {0};
	int rc;

	if (drv_crypto_init() != DRV_OK)
		return 1;
	rc = parse(argc, argv, &o);
	if (rc == DRV_OK)
		rc = init_dir(&o);
	drv_strlist_free(&o.listen);
	return rc == DRV_OK ? 0 : rc == DRV_EINVAL ? 2 : 1;
}
