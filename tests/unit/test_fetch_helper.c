/*
 * test_fetch_helper.c: the agent's side of the fetch helper
 * (agent/fetch_helper.c) with a stand-in helper: the cache directory holds
 * a shell script named "fetch", and the helper executable is /bin/sh, so
 * what fetch_helper_run execs (`sh fetch --reference ...` in the cache) is
 * that script, with the credentials, descriptors and directory the real
 * helper gets. It reports what it sees in an ERROR frame. Needs root (the
 * drop to another user); skipped otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "clock.h"
#include "err.h"
#include "fetch_helper.h"
#include "puller.h"

static char dir[64], cache[128], secret[128], exe[128];

/* The stand-in: say (in one ERROR frame) who we are, whether no_new_privs
 * is set, whether the secret can be read, which descriptors are open and
 * where we are; then do what $1 of the script's environment file says. */
static const char script[] =
        "#!/bin/sh\n"
        "exec 2>/dev/null\n"
        "if [ -f mode.hang ]; then echo $$ > pid; sleep 30; fi\n"
        "nnp=$(awk '/^NoNewPrivs/ { print $2 }' /proc/self/status)\n"
        "if cat \"$(cat secret.path)\" >/dev/null 2>&1; then s=read; else s=denied; fi\n"
        "fds=$(ls /proc/$$/fd | sort -n | tr '\\n' ,)\n"
        "msg=\"uid=$(id -u) gid=$(id -g) groups=$(id -G) nnp=$nnp secret=$s fds=$fds cwd=$(pwd)\"\n"
        "if [ -f mode.done ]; then msg='D1 2 3 4 5 6 7 1'; printf '\\000\\000\\000\\020%s' "
        "\"$msg\"; "
        "exit 0; fi\n"
        "len=$((${#msg} + 1))\n"
        "printf \"\\\\000\\\\000\\\\000\\\\$(printf %03o $len)E%s\" \"$msg\"\n"
        "exit 1\n";

static int setup(void **state)
{
	FILE *f;
	(void)state;
	if (geteuid() != 0 || getpwnam("nobody") == NULL)
		return 0;
	snprintf(dir, sizeof(dir), "/tmp/test_fetch_helper.XXXXXX");
	assert_non_null(mkdtemp(dir));
	chmod(dir, 0755);
	snprintf(cache, sizeof(cache), "%s/cache", dir);
	snprintf(secret, sizeof(secret), "%s/agent.key", dir);
	assert_int_equal(mkdir(cache, 0700), 0);
	f = fopen(secret, "w");
	assert_non_null(f);
	fputs("secret\n", f);
	fclose(f);
	chmod(secret, 0600);
	char p[256];
	snprintf(p, sizeof(p), "%s/fetch", cache);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(script, f);
	fclose(f);
	chmod(p, 0755);
	snprintf(p, sizeof(p), "%s/secret.path", cache);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(secret, f);
	fclose(f);
	for (const char *d = "blobs"; d; d = NULL) {
		snprintf(p, sizeof(p), "%s/%s", cache, d);
		mkdir(p, 0700);
	}
	snprintf(p, sizeof(p), "%s/blobs/sha256", cache);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/partial", cache);
	mkdir(p, 0700);
	/* the helper's executable in a directory its user cannot search: it is
	 * opened before the drop, as the agent's own binary may lie anywhere */
	snprintf(p, sizeof(p), "%s/private", dir);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(exe, sizeof(exe), "%s/private/sh", dir);
	snprintf(p, sizeof(p), "cp /bin/sh %s", exe);
	assert_int_equal(system(p), 0);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	if (dir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			return -1;
	}
	return 0;
}

static void mode(const char *m, bool on)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/mode.%s", cache, m);
	if (on)
		fclose(fopen(p, "w"));
	else
		unlink(p);
}

static struct fetch_helper_cfg cfg_for(const struct stop_token *cancel)
{
	return (struct fetch_helper_cfg){
	        .exe = exe, .cache = cache, .user = "nobody", .stall_s = 5, .cancel = cancel};
}

#define DIGEST "sha256:0000000000000000000000000000000000000000000000000000000000000000"

/* The helper runs as the user, without groups, with no_new_privs, with only
 * stdin/stdout/stderr open, in the cache; it cannot read a root-only file.
 * The cache's directories are handed to it. */
static void drops_privileges(void **state)
{
	struct fetch_helper_cfg cfg = cfg_for(NULL);
	struct passwd *pw = getpwnam("nobody");
	struct fetch_done d;
	struct stat st;
	char err[1024], want[256];
	/* not O_CLOEXEC: must not reach the helper all the same */
	int leak = dup2(open("/dev/null", O_RDONLY), 77);
	(void)state;
	if (geteuid() != 0 || pw == NULL)
		skip();
	assert_int_equal(fetch_helper_run(&cfg, "127.0.0.1:9/x/y:1", DIGEST, &d, err, sizeof(err)),
	                 DRV_EIO);
	close(leak);
	snprintf(want, sizeof(want), "uid=%u gid=%u groups=%u nnp=1 secret=denied", pw->pw_uid,
	         pw->pw_gid, pw->pw_gid);
	if (strstr(err, want) == NULL)
		fail_msg("helper saw: %s (want %s)", err, want);
	/* 0, 1, 2, the one ls opens to list them and the shell's own (10) */
	if (strstr(err, " fds=0,1,2,") == NULL || strstr(err, ",77,") != NULL)
		fail_msg("open descriptors: %s", err);
	snprintf(want, sizeof(want), "cwd=%s", cache);
	assert_non_null(strstr(err, want));
	assert_int_equal(stat(cache, &st), 0);
	assert_int_equal(st.st_uid, pw->pw_uid);
	assert_int_equal(st.st_mode & 0777, 0750);
}

static void done_frame(void **state)
{
	struct fetch_helper_cfg cfg = cfg_for(NULL);
	struct fetch_done d;
	char err[1024] = "";
	(void)state;
	if (geteuid() != 0)
		skip();
	mode("done", true);
	int rc = fetch_helper_run(&cfg, "r", DIGEST, &d, err, sizeof(err));
	mode("done", false);
	if (rc != DRV_OK)
		fail_msg("%s", err);
	assert_int_equal(d.bytes_fetched, 1);
	assert_int_equal(d.fetch_ms, 5);
	assert_true(d.no_new_privs);
}

static struct stop_token tok;

static void *cancel_soon(void *arg)
{
	(void)arg;
	poll(NULL, 0, 300);
	stop_token_set(&tok);
	return NULL;
}

/* A cancel kills the helper at once (it would sleep 30 s), not after the
 * SIGKILL backstop. (That the real helper gets SIGTERM unblocked although
 * the agent blocks it is it_hostile_registry's "agent stops within 1 s":
 * the shell standing in here clears its signal mask itself.) */
static void cancel_kills(void **state)
{
	struct fetch_helper_cfg cfg = cfg_for(&tok);
	struct fetch_done d;
	char err[1024] = "", p[256];
	pthread_t t;
	int64_t t0 = drv_mono_ms();
	FILE *f;
	int pid = 0;
	(void)state;
	if (geteuid() != 0)
		skip();
	mode("hang", true);
	pthread_create(&t, NULL, cancel_soon, NULL);
	int rc = fetch_helper_run(&cfg, "r", DIGEST, &d, err, sizeof(err));
	pthread_join(t, NULL);
	mode("hang", false);
	assert_int_equal(rc, DRV_ECANCELED);
	assert_non_null(strstr(err, "cancelled"));
	assert_true(drv_mono_ms() - t0 < 300 + FETCH_KILL_MS);
	snprintf(p, sizeof(p), "%s/pid", cache);
	f = fopen(p, "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%d", &pid), 1);
	fclose(f);
	/* the sleeping child of the script may outlive it; the script is gone */
	assert_int_equal(kill(pid, 0), -1);
	assert_int_equal(errno, ESRCH);
}

/* The pull's deadline: a helper that does not end its pull by then is
 * killed FETCH_KILL_MS later, and the step says so. */
static void deadline_kills(void **state)
{
	struct fetch_helper_cfg cfg = cfg_for(NULL);
	struct fetch_done d;
	char err[1024] = "";
	int64_t t0 = drv_mono_ms();
	(void)state;
	if (geteuid() != 0)
		skip();
	cfg.deadline_ms = t0 + 300;
	mode("hang", true);
	int rc = fetch_helper_run(&cfg, "r", DIGEST, &d, err, sizeof(err));
	mode("hang", false);
	assert_int_equal(rc, DRV_ETIMEDOUT);
	assert_non_null(strstr(err, "step deadline"));
	assert_true(drv_mono_ms() - t0 >= 300 + FETCH_KILL_MS);
	assert_true(drv_mono_ms() - t0 < 20000);
	cfg.deadline_ms = drv_mono_ms() - 1; /* already past: not even started */
	assert_int_equal(fetch_helper_run(&cfg, "r", DIGEST, &d, err, sizeof(err)), DRV_ETIMEDOUT);
}

static void write_file(const char *path, mode_t mode)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("x\n", f);
	fclose(f);
	chmod(path, mode);
}

/* The helper's user owns blobs/: a link it plants as blobs/sha256 must not
 * make the agent (root) chown/chmod, or GC empty, the directory it points
 * at; a hard link in partial/ must not hand its file over. */
static void planted_links_ignored(void **state)
{
	struct fetch_helper_cfg cfg = cfg_for(NULL);
	const char *hex = "1111111111111111111111111111111111111111111111111111111111111111";
	char victim[256], vfile[400], vhex[400], sha[256], real[256], part[400], err[1024];
	struct fetch_done d;
	char rel[256];
	struct puller_config pc = {.cache_dir = cache, .releases_dir = rel};
	struct puller *p = NULL;
	struct stat st;
	(void)state;
	if (geteuid() != 0)
		skip();
	snprintf(rel, sizeof(rel), "%s/releases", dir);
	snprintf(victim, sizeof(victim), "%s/victim", dir);
	snprintf(vfile, sizeof(vfile), "%s/shadow", victim);
	snprintf(vhex, sizeof(vhex), "%s/%s", victim, hex);
	snprintf(sha, sizeof(sha), "%s/blobs/sha256", cache);
	snprintf(real, sizeof(real), "%s/blobs/sha256.real", cache);
	assert_int_equal(mkdir(victim, 0700), 0);
	write_file(vfile, 0600);
	write_file(vhex, 0600);
	/* a hard link to a root file in partial/ */
	snprintf(part, sizeof(part), "%s/partial/%s", cache, hex);
	assert_int_equal(link(vfile, part), 0);
	fetch_helper_run(&cfg, "r", DIGEST, &d, err, sizeof(err));
	assert_int_equal(stat(vfile, &st), 0);
	assert_int_equal(st.st_uid, 0);
	unlink(part);
	/* blobs/sha256 replaced by a link to the victim */
	assert_int_equal(rename(sha, real), 0);
	assert_int_equal(symlink(victim, sha), 0);
	assert_int_not_equal(fetch_helper_run(&cfg, "r", DIGEST, &d, err, sizeof(err)), DRV_OK);
	assert_non_null(strstr(err, "cannot hand the cache"));
	assert_int_equal(stat(victim, &st), 0);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(puller_new(&pc, &p), DRV_OK);
	assert_int_equal(puller_gc(p, NULL, NULL, 0), DRV_OK);
	puller_free(p);
	assert_int_equal(access(vfile, F_OK), 0);
	assert_int_equal(access(vhex, F_OK), 0);
	unlink(sha);
	assert_int_equal(rename(real, sha), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(drops_privileges),      cmocka_unit_test(done_frame),
	        cmocka_unit_test(cancel_kills),          cmocka_unit_test(deadline_kills),
	        cmocka_unit_test(planted_links_ignored),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
