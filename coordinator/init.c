/*
 * init.c: `droverd init`: a new coordinator directory.
 *
 * Writes DIR/droverd.yaml, the signing key pair (coordinator.key 0600,
 * coordinator.pub), a self-signed TLS certificate and key for tls+tcp://
 * (made with the openssl command; agents pin the certificate), the database
 * with the admin token's hash (tokens.h), DIR/admin.token (0600), and with
 * --enroll-token an enrollment token in DIR/enroll.token (0600).
 *
 * With --postgres DSN the node joins an HA group (docs/ha.md): no SQLite
 * file; the config names the group's PostgreSQL store (so it is written
 * 0600), this node's name and API URL; the schema is migrated and the admin
 * token made in the shared database (`admin`, or `admin-NODE` once a node
 * before this one took that name); an API beyond loopback gets HTTPS.
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
#include "ha_lease.h"
#include "http_server.h"
#include "keys.h"
#include "store.h"
#include "secret.h"
#include "tokens.h"

/* The token init makes lets the first hosts enroll; it expires like any other
 * (droverd enroll-token create makes more). */
#define INIT_TOKEN_TTL_MS (24 * 3600 * 1000LL)
#define DSN_MAX           1024 /* store.postgres.dsn's limit in dconf.c */

extern char **environ;

struct init_opts {
	char dir[PATH_MAX];
	struct drv_strlist listen;
	const char *api;
	int enroll_token;
	int api_tls;      /* --api-tls: the API serves HTTPS with api.crt/api.key */
	char *pg_dsn;     /* --postgres: the HA group's store (NULL: SQLite) */
	const char *node; /* --node: ha.node (NULL: the host name) */
	char node_buf[HA_NODE_MAX + 1];
	char url[300]; /* ha.url: this node's API URL */
};

/* --postgres -: the DSN is the first line of standard input (a password
 * stays out of the process list). */
static int read_dsn_stdin(struct init_opts *o)
{
	char line[DSN_MAX + 2];
	size_t n;

	if (fgets(line, sizeof(line), stdin) == NULL) {
		fprintf(stderr, "droverd init: --postgres -: no DSN on standard input\n");
		return DRV_EINVAL;
	}
	n = strcspn(line, "\r\n");
	if (n > DSN_MAX) {
		fprintf(stderr, "droverd init: --postgres -: the DSN is over %d bytes\n", DSN_MAX);
		return DRV_EINVAL;
	}
	line[n] = '\0';
	free(o->pg_dsn);
	o->pg_dsn = strdup(line);
	explicit_bzero(line, sizeof(line));
	return o->pg_dsn != NULL ? DRV_OK : DRV_ENOMEM;
}

/* A node of a group: its DSN, its name, HTTPS when the API leaves loopback
 * (dconf.c refuses a group's plain API beyond it), and the URL the others
 * redirect changes to while it leads. */
static int ha_prepare(struct init_opts *o)
{
	const char *api = o->api ? o->api : DRV_API_DEFAULT_LISTEN;
	char host[64];
	uint16_t port;

	if (strcmp(o->pg_dsn, "-") == 0 && read_dsn_stdin(o) != DRV_OK)
		return DRV_EINVAL;
	if (o->pg_dsn[0] == '\0' || strlen(o->pg_dsn) > DSN_MAX) {
		fprintf(stderr, "droverd init: --postgres: the DSN must be 1 to %d bytes\n",
		        DSN_MAX);
		return DRV_EINVAL;
	}
	if (o->node == NULL) {
		gethostname(o->node_buf, sizeof(o->node_buf) - 1);
		o->node = o->node_buf;
	}
	if (o->node[0] == '\0' || strlen(o->node) > HA_NODE_MAX ||
	    o->node[strspn(o->node, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                            "0123456789.-_")] != '\0') {
		fprintf(stderr,
		        "droverd init: --node: 1 to %d letters, digits, '.', '-' or '_' (got "
		        "\"%s\")\n",
		        HA_NODE_MAX, o->node);
		return DRV_EINVAL;
	}
	if (drv_http_parse_listen(api, host, &port) != DRV_OK) {
		fprintf(stderr, "droverd init: --api %s: expected HOST:PORT\n", api);
		return DRV_EINVAL;
	}
	if (!o->api_tls && !drv_http_listen_is_loopback(api)) {
		o->api_tls = 1;
		fprintf(stderr,
		        "droverd init: %s is beyond loopback: the API serves HTTPS "
		        "(api.crt), as a node of a group must\n",
		        api);
	}
	/* a wildcard address is no place to send a client to: the host's name */
	if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0) {
		host[sizeof(host) - 1] = '\0';
		gethostname(host, sizeof(host) - 1);
	}
	snprintf(o->url, sizeof(o->url), "%s://%s%s%s:%u", o->api_tls ? "https" : "http",
	         strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", port);
	return DRV_OK;
}

static int parse(int argc, char **argv, struct init_opts *o)
{
	static const struct option longopts[] = {
	        {"dir", required_argument, NULL, 'd'},  {"listen", required_argument, NULL, 'l'},
	        {"api", required_argument, NULL, 'a'},  {"enroll-token", no_argument, NULL, 'e'},
	        {"api-tls", no_argument, NULL, 't'},    {"postgres", required_argument, NULL, 'p'},
	        {"node", required_argument, NULL, 'n'}, {NULL, 0, NULL, 0},
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
		case 'p':
			free(o->pg_dsn);
			o->pg_dsn = strdup(optarg);
			if (o->pg_dsn == NULL)
				return DRV_ENOMEM;
			break;
		case 'n': o->node = optarg; break;
		default: return DRV_EINVAL;
		}
	}
	if (dir == NULL || optind != argc) {
		fprintf(stderr, "droverd init: --dir DIR is required\n");
		return DRV_EINVAL;
	}
	if (o->node != NULL && o->pg_dsn == NULL) {
		fprintf(stderr,
		        "droverd init: --node names a node of an HA group: give --postgres\n");
		return DRV_EINVAL;
	}
	if (o->pg_dsn != NULL && ha_prepare(o) != DRV_OK)
		return DRV_EINVAL;
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

/* Named `init` (in a group's shared database `init-NODE`). */
static int make_enroll_token(const struct init_opts *o, struct store *s, const char *path)
{
	char tok[DRV_SECRET_MAX], name[HA_NODE_MAX + 8] = "init";
	int rc;

	if (o->pg_dsn != NULL)
		snprintf(name, sizeof(name), "init-%s", o->node);
	rc = store_enroll_token_create(
	        s, &(struct store_token){name, drv_wall_ms() + INIT_TOKEN_TTL_MS, 0, NULL},
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
	if (o->pg_dsn != NULL && rc == DRV_OK) {
		free(c.pg_dsn);
		c.pg_dsn = strdup(o->pg_dsn);
		c.ha_node = strdup(o->node);
		c.ha_url = strdup(o->url);
		if (c.pg_dsn == NULL || c.ha_node == NULL || c.ha_url == NULL)
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
		rc = drv_write_atomic(path, text, strlen(text), o->pg_dsn != NULL ? 0600 : 0644);
	if (text != NULL)
		explicit_bzero(text, strlen(text)); /* the DSN may hold a password */
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

/* The SQLite file, or the group's PostgreSQL database (migrated here: the
 * first node of a group makes its schema). */
static int open_store(const struct init_opts *o, const char *sqlite, struct store **s)
{
	size_t n = o->pg_dsn ? strlen(DRV_SQL_PG_PREFIX) + strlen(o->pg_dsn) + 1 : 0;
	char *target;
	int rc;

	if (o->pg_dsn == NULL)
		return store_open(sqlite, s);
	target = malloc(n);
	if (target == NULL)
		return DRV_ENOMEM;
	snprintf(target, n, "%s%s", DRV_SQL_PG_PREFIX, o->pg_dsn);
	rc = store_open(target, s);
	explicit_bzero(target, n);
	free(target);
	if (rc != DRV_OK)
		fprintf(stderr,
		        "droverd init: cannot open the PostgreSQL store (--postgres): %s; is the "
		        "server up, and may this user create tables in the database?\n",
		        drv_strerror(rc));
	return rc;
}

/* The first node of a group makes `admin`; a node joining later
 * `admin-NODE`, so every node's directory holds a token of its own. */
static int admin_token(const struct init_opts *o, struct store *s)
{
	char name[HA_NODE_MAX + 8];
	int rc = drv_token_init_admin(store_db(s), o->dir);

	if (rc == DRV_EEXIST && o->pg_dsn != NULL) {
		snprintf(name, sizeof(name), "admin-%s", o->node);
		rc = drv_token_init_admin_named(store_db(s), o->dir, name);
		if (rc == DRV_EEXIST)
			fprintf(stderr,
			        "droverd init: the group's database already holds the tokens admin "
			        "and "
			        "%s: give this node another --node, or revoke %s "
			        "(droverd token revoke)\n",
			        name, name);
		else if (rc == DRV_OK)
			fprintf(stderr,
			        "droverd init: the group's database holds `admin` already: "
			        "this node's admin.token is %s\n",
			        name);
	}
	if (rc != DRV_OK && rc != DRV_EEXIST)
		fprintf(stderr, "droverd init: admin token: %s\n", drv_strerror(rc));
	return rc;
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
	if (access(p[0], F_OK) == 0 || (o->pg_dsn == NULL && access(p[3], F_OK) == 0)) {
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
		rc = open_store(o, p[3], &s);
	if (rc == DRV_OK)
		rc = admin_token(o, s);
	if (rc == DRV_OK && o->enroll_token) {
		char tok[PATH_MAX + 32];
		snprintf(tok, sizeof(tok), "%s/enroll.token", o->dir);
		rc = make_enroll_token(o, s, tok);
	}
	store_close(s);
	if (rc == DRV_OK)
		rc = write_config(o, p[0]);
	if (rc == DRV_OK)
		rc = check_config(p[0]);
	if (rc == DRV_OK && o->pg_dsn != NULL)
		printf("droverd: initialized %s, node %s of the HA group on PostgreSQL\n"
		       "  run:    droverd --config %s (it follows until it holds the lease)\n"
		       "  agents: add %s to each agent's coordinator_keys, and this node's link\n"
		       "          address to its coordinator list (docs/ha.md)\n"
		       "  cli:    %s (drover --coordinator URL,URL,...%s%s)\n",
		       o->dir, o->node, p[0], p[2], o->url, o->api_tls ? " --cacert " : "",
		       o->api_tls ? p[6] : "");
	else if (rc == DRV_OK)
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
	if (o.pg_dsn != NULL)
		explicit_bzero(o.pg_dsn, strlen(o.pg_dsn));
	free(o.pg_dsn);
	return rc == DRV_OK ? 0 : rc == DRV_EINVAL ? 2 : 1;
}
