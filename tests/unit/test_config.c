/* test_config.c: the options-table YAML reader and writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "err.h"

struct conf {
	char *name;
	char *key_file;
	int64_t port;
	bool verbose;
	int64_t poll_ms;
	struct drv_strlist listen;
	struct drv_pathlist_holder {
		struct drv_strlist l;
	} keys;
	struct drv_kvlist labels;
	char *tls_cert;
	char *tls_key;
	char *secret;
};

static int check_name(const void *v, char *why, size_t len)
{
	const char *s = *(char *const *)v;

	/* validators see only values that were set: no NULL check here, so a
	 * refused value (an alias, a syntax error) would crash this test */
	if (strchr(s, ' ') != NULL) {
		snprintf(why, len, "must not contain spaces");
		return DRV_EINVAL;
	}
	return DRV_OK;
}

#define O(f) offsetof(struct conf, f)
static const struct drv_cfg_opt opts[] = {
        {"name", DRV_CFG_STR, O(name), NULL, 0, 32, DRV_CFG_REQUIRED, check_name, "who"},
        {"key_file", DRV_CFG_PATH, O(key_file), "key.pem", 0, 0, 0, NULL, "a path"},
        {"port", DRV_CFG_INT, O(port), "7800", 1, 65535, 0, NULL, "tcp port"},
        {"verbose", DRV_CFG_BOOL, O(verbose), "false", 0, 0, 0, NULL, NULL},
        {"poll_timeout", DRV_CFG_DURATION, O(poll_ms), "25s", 100, 300000, 0, NULL, NULL},
        {"listen", DRV_CFG_STRLIST, O(listen), "tcp://127.0.0.1:1", 0, 4, 0, NULL, NULL},
        {"keys", DRV_CFG_PATHLIST, O(keys.l), NULL, 0, 0, 0, NULL, NULL},
        {"labels", DRV_CFG_KV, O(labels), NULL, 0, 0, 0, NULL, NULL},
        {"tls.cert", DRV_CFG_PATH, O(tls_cert), NULL, 0, 0, 0, NULL, NULL},
        {"tls.key", DRV_CFG_PATH, O(tls_key), NULL, 0, 0, 0, NULL, NULL},
        {"secret", DRV_CFG_STR, O(secret), NULL, 0, 0, DRV_CFG_SECRET, NULL, NULL},
};
#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

static int load(const char *text, struct conf *c, struct drv_cfg_diag *d)
{
	memset(c, 0, sizeof(*c));
	return drv_cfg_load_buffer(opts, N_OPTS, "t.yaml", "/etc/x", text, strlen(text), c, d);
}

static void full_file_is_read(void **state)
{
	(void)state;
	struct conf c;
	struct drv_cfg_diag d;
	const char *text = "name: berry\n"
	                   "key_file: keys/a.key\n"
	                   "port: 9000\n"
	                   "verbose: yes\n"
	                   "poll_timeout: 500ms\n"
	                   "listen: [tcp://a:1, \"tls+tcp://b:2\"]\n"
	                   "keys:\n  - /abs/k1.pub\n  - rel/k2.pub\n"
	                   "labels: {tier: core, zone: \"eu-1\"}\n"
	                   "tls:\n  cert: c.crt\n  key: /k/c.key\n";

	assert_int_equal(load(text, &c, &d), DRV_OK);
	assert_string_equal(c.name, "berry");
	assert_string_equal(c.key_file, "/etc/x/keys/a.key");
	assert_int_equal(c.port, 9000);
	assert_true(c.verbose);
	assert_int_equal(c.poll_ms, 500);
	assert_int_equal(c.listen.n, 2);
	assert_string_equal(c.listen.v[1], "tls+tcp://b:2");
	assert_int_equal(c.keys.l.n, 2);
	assert_string_equal(c.keys.l.v[0], "/abs/k1.pub");
	assert_string_equal(c.keys.l.v[1], "/etc/x/rel/k2.pub");
	assert_string_equal(drv_kvlist_get(&c.labels, "zone"), "eu-1");
	assert_string_equal(c.tls_cert, "/etc/x/c.crt");
	assert_string_equal(c.tls_key, "/k/c.key");
	drv_cfg_free(opts, N_OPTS, &c);
	assert_null(c.name);
}

static void defaults_apply(void **state)
{
	(void)state;
	struct conf c;
	struct drv_cfg_diag d;

	assert_int_equal(load("name: x\n", &c, &d), DRV_OK);
	assert_string_equal(c.key_file, "/etc/x/key.pem");
	assert_int_equal(c.port, 7800);
	assert_false(c.verbose);
	assert_int_equal(c.poll_ms, 25000);
	assert_int_equal(c.listen.n, 1);
	assert_int_equal(c.keys.l.n, 0);
	assert_null(c.tls_cert);
	drv_cfg_free(opts, N_OPTS, &c);
}

static bool has(const struct drv_cfg_diag *d, const char *needle)
{
	for (size_t i = 0; i < d->n; i++) {
		if (strstr(d->msg[i], needle) != NULL)
			return true;
	}
	return false;
}

static void every_error_reported_with_line(void **state)
{
	(void)state;
	struct conf c;
	struct drv_cfg_diag d;
	const char *text = "port: 70000\n"               /* 1 */
	                   "verbose: maybe\n"            /* 2 */
	                   "poll_timeout: 1fortnight\n"  /* 3 */
	                   "colour: blue\n"              /* 4 */
	                   "tls:\n  cert: a\n  pem: b\n" /* 5-7 */
	                   "port: 1\n"                   /* 8 */
	                   "labels: [a, b]\n"            /* 9 */
	                   "listen: {a: b}\n";           /* 10 */

	assert_int_equal(load(text, &c, &d), DRV_EINVAL);
	assert_true(has(&d, "t.yaml:1: port: 70000 is out of range"));
	assert_true(has(&d, "t.yaml:2: verbose: expected true or false"));
	assert_true(has(&d, "t.yaml:3: poll_timeout: expected a duration"));
	assert_true(has(&d, "t.yaml:4: unknown option 'colour'"));
	assert_true(has(&d, "t.yaml:7: unknown option 'tls.pem'"));
	assert_true(has(&d, "t.yaml:8: port: set twice (first on line 1)"));
	assert_true(has(&d, "t.yaml:9: labels: expected a mapping"));
	assert_true(has(&d, "t.yaml:10: listen: expected a list"));
	assert_true(has(&d, "t.yaml: missing required option 'name'"));
	assert_null(c.tls_cert); /* freed on failure */
}

static void validator_and_length(void **state)
{
	(void)state;
	struct conf c;
	struct drv_cfg_diag d;

	assert_int_equal(load("name: two words\n", &c, &d), DRV_EINVAL);
	assert_true(has(&d, "t.yaml:1: name: must not contain spaces"));
	assert_int_equal(load("name: abcdefghijabcdefghijabcdefghijabc\n", &c, &d), DRV_EINVAL);
	assert_true(has(&d, "longer than 32"));
	assert_int_equal(load("name: x\nlisten: [a, b, c, d, e]\n", &c, &d), DRV_EINVAL);
	assert_true(has(&d, "more than 4 entries"));
}

static void syntax_errors_and_aliases(void **state)
{
	(void)state;
	struct conf c;
	struct drv_cfg_diag d;

	assert_int_equal(load("name: x\n  port: [1\n", &c, &d), DRV_EINVAL);
	assert_true(has(&d, "YAML syntax error"));
	assert_int_equal(load("name: &a x\nsecret: *a\n", &c, &d), DRV_EINVAL);
	assert_true(has(&d, "t.yaml:1: anchors and aliases"));
	assert_int_equal(load("- a\n- b\n", &c, &d), DRV_EINVAL);
	assert_true(has(&d, "must be a mapping"));
	assert_int_equal(load("name: *a\n", &c, &d), DRV_EINVAL);
	assert_int_equal(load("name: deb  poll: &5s\n", &c, &d), DRV_EINVAL);
	assert_int_equal(load("name: x\n---\nname: y\n", &c, &d), DRV_EINVAL);
	assert_true(has(&d, "only one YAML document"));
	assert_int_equal(load("", &c, &d), DRV_EINVAL); /* empty: name missing */
	assert_true(has(&d, "missing required option 'name'"));
}

static void nul_byte_refused(void **state)
{
	(void)state;
	struct conf c;
	struct drv_cfg_diag d;
	const char text[] = "name: \"a\\0b\"\n";

	memset(&c, 0, sizeof(c));
	assert_int_equal(
	        drv_cfg_load_buffer(opts, N_OPTS, "t", NULL, text, sizeof(text) - 1, &c, &d),
	        DRV_EINVAL);
	assert_true(has(&d, "NUL"));
}

static void format_round_trips(void **state)
{
	(void)state;
	struct conf c, c2;
	struct drv_cfg_diag d;
	char *text;
	const char *in = "name: \"q\\\"uote\"\nport: 1\npoll_timeout: 90s\n"
	                 "listen: [tcp://a:1]\nlabels: {a: b}\ntls: {cert: /c}\n";

	assert_int_equal(load(in, &c, &d), DRV_OK);
	assert_int_equal(drv_cfg_format(opts, N_OPTS, &c, "# header\n", &text), DRV_OK);
	assert_non_null(strstr(text, "# header\n"));
	assert_non_null(strstr(text, "# tcp port\nport: 1\n"));
	assert_non_null(strstr(text, "poll_timeout: 90s\n"));
	assert_non_null(strstr(text, "tls:\n  cert: \"/c\"\n  # key:\n"));
	assert_int_equal(load(text, &c2, &d), DRV_OK);
	assert_string_equal(c2.name, "q\"uote");
	assert_int_equal(c2.poll_ms, 90000);
	assert_string_equal(c2.listen.v[0], "tcp://a:1");
	assert_string_equal(drv_kvlist_get(&c2.labels, "a"), "b");
	assert_string_equal(c2.tls_cert, "/c");
	free(text);
	drv_cfg_free(opts, N_OPTS, &c);
	drv_cfg_free(opts, N_OPTS, &c2);
}

static void file_secret_must_be_private(void **state)
{
	(void)state;
	char dir[] = "/tmp/drv-cfg-XXXXXX", path[256];
	struct conf c = {0};
	struct drv_cfg_diag d;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/a.yaml", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("name: x\nsecret: hunter2\nkey_file: k\n", f);
	fclose(f);
	chmod(path, 0644);
	assert_int_equal(drv_cfg_load_file(opts, N_OPTS, path, &c, &d), DRV_EPERM);
	assert_true(has(&d, "can be read by group or others"));
	chmod(path, 0600);
	assert_int_equal(drv_cfg_load_file(opts, N_OPTS, path, &c, &d), DRV_OK);
	assert_string_equal(c.secret, "hunter2");
	assert_true(strncmp(c.key_file, dir, strlen(dir)) == 0);
	drv_cfg_free(opts, N_OPTS, &c);
	unlink(path);
	assert_int_equal(drv_cfg_load_file(opts, N_OPTS, path, &c, &d), DRV_ENOENT);
	assert_true(has(&d, "a.yaml: "));
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(full_file_is_read),
	        cmocka_unit_test(defaults_apply),
	        cmocka_unit_test(every_error_reported_with_line),
	        cmocka_unit_test(validator_and_length),
	        cmocka_unit_test(syntax_errors_and_aliases),
	        cmocka_unit_test(nul_byte_refused),
	        cmocka_unit_test(format_round_trips),
	        cmocka_unit_test(file_secret_must_be_private),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
