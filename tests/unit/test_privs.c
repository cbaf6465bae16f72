/* test_privs.c: agent/privs.c: capability names, resolving users, groups
 * and capability lists, and dropping to them in a forked child (as root). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "err.h"
#include "privs.h"

static void cap_names(void **state)
{
	(void)state;
	assert_int_equal(privs_cap_number("CAP_NET_BIND_SERVICE"), 10);
	assert_int_equal(privs_cap_number("net_bind_service"), 10);
	assert_int_equal(privs_cap_number("CAP_CHOWN"), 0);
	assert_int_equal(privs_cap_number("CAP_CHECKPOINT_RESTORE"), 40);
	assert_int_equal(privs_cap_number("CAP_FLY"), -1);
	assert_int_equal(privs_cap_number(""), -1);
}

static void resolve(void **state)
{
	char *caps[] = {"CAP_NET_BIND_SERVICE", "CAP_KILL", NULL}, *bad[] = {"CAP_FLY", NULL};
	struct privs p;
	char err[300];

	(void)state;
	if (geteuid() != 0)
		skip();
	assert_int_equal(privs_resolve("1234", "", "nobody", caps, 2, true, &p, err, sizeof(err)),
	                 DRV_OK);
	assert_true(p.change_ids);
	assert_int_equal(p.uid, 1234);
	assert_int_equal(p.gid, 1234); /* no such user: its own number */
	assert_int_equal(p.caps, (1ULL << 10) | (1ULL << 5));
	assert_false(p.all_caps);
	assert_true(p.no_new_privs);
	assert_int_equal(
	        privs_resolve("1234", "77", "nobody", NULL, 0, false, &p, err, sizeof(err)),
	        DRV_OK);
	assert_int_equal(p.gid, 77);
	assert_false(p.no_new_privs);
	/* root without a list keeps everything; with one only that */
	assert_int_equal(privs_resolve("root", "", "nobody", NULL, 0, true, &p, err, sizeof(err)),
	                 DRV_OK);
	assert_true(p.all_caps && privs_is_root(&p));
	assert_int_equal(privs_resolve("0", "", "nobody", caps, 1, true, &p, err, sizeof(err)),
	                 DRV_OK);
	assert_false(p.all_caps);
	/* "" is the default user */
	assert_int_equal(privs_resolve("", "", "root", NULL, 0, true, &p, err, sizeof(err)),
	                 DRV_OK);
	assert_int_equal(p.uid, 0);
	assert_int_equal(
	        privs_resolve("no-such-user-x", "", "root", NULL, 0, true, &p, err, sizeof(err)),
	        DRV_ENOENT);
	assert_non_null(strstr(err, "user 'no-such-user-x' does not exist"));
	assert_int_equal(privs_resolve("1234", "no-such-group-x", "root", NULL, 0, true, &p, err,
	                               sizeof(err)),
	                 DRV_ENOENT);
	assert_non_null(strstr(err, "group 'no-such-group-x'"));
	assert_int_equal(privs_resolve("1234", "", "root", bad, 1, true, &p, err, sizeof(err)),
	                 DRV_EINVAL);
	assert_non_null(strstr(err, "CAP_FLY"));
}

/* The child's /proc/self/status line for key, e.g. "CapEff". */
static void status_line(const char *key, char *out, size_t size)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");

	out[0] = '\0';
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, key, strlen(key)) == 0 && line[strlen(key)] == ':') {
			snprintf(out, size, "%s", line + strlen(key) + 2);
			out[strcspn(out, "\n")] = '\0';
		}
	}
	if (f != NULL)
		fclose(f);
}

/* In a child: apply p, then exit 0 when ids and sets are as expected. */
static int child_check(const struct privs *p, const char *capeff, const char *capamb)
{
	pid_t pid = fork();
	int status = 0;

	if (pid == 0) {
		char v[64];
		if (privs_apply(p) != 0)
			_exit(10);
		if (getuid() != p->uid || geteuid() != p->uid || getgid() != p->gid ||
		    getgroups(0, NULL) != 0)
			_exit(11);
		status_line("CapEff", v, sizeof(v));
		if (strcmp(v, capeff) != 0)
			_exit(12);
		status_line("CapAmb", v, sizeof(v));
		if (strcmp(v, capamb) != 0)
			_exit(13);
		status_line("CapBnd", v, sizeof(v));
		if (strcmp(v, capeff) != 0)
			_exit(14);
		status_line("NoNewPrivs", v, sizeof(v));
		if (strcmp(v, "1") != 0)
			_exit(15);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

static void apply(void **state)
{
	char *caps[] = {"CAP_NET_BIND_SERVICE", NULL};
	struct privs p;
	char err[300];

	(void)state;
	if (geteuid() != 0)
		skip();
	assert_int_equal(privs_resolve("4321", "4321", "root", NULL, 0, true, &p, err, sizeof(err)),
	                 DRV_OK);
	assert_int_equal(child_check(&p, "0000000000000000", "0000000000000000"), 0);
	assert_int_equal(privs_resolve("4321", "4321", "root", caps, 1, true, &p, err, sizeof(err)),
	                 DRV_OK);
	assert_int_equal(child_check(&p, "0000000000000400", "0000000000000400"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(cap_names),
	        cmocka_unit_test(resolve),
	        cmocka_unit_test(apply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
