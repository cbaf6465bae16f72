/* test_unpack.c: layer application (agent/unpack.c) on real temp dirs, with
 * layers built in memory by libarchive. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
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

#include "err.h"
#include "fsutil.h"
#include "sha256.h"
#include "unpack.h"
#include "unpack_helper.h"

struct ent {
	const char *path;
	char type;        /* f file, d dir, l symlink, h hardlink */
	const char *data; /* content, or link target */
};

static char root[64], outside[64];
static int root_fd;
static char tarbuf[1 << 20];

static size_t mktar(const struct ent *e, size_t n, const char *filter)
{
	struct archive *a = archive_write_new();
	struct archive_entry *ae;
	size_t used = 0;

	archive_write_set_format_pax_restricted(a);
	if (filter != NULL)
		archive_write_add_filter_by_name(a, filter);
	archive_write_set_bytes_in_last_block(a, 1);
	assert_int_equal(archive_write_open_memory(a, tarbuf, sizeof(tarbuf), &used), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		ae = archive_entry_new();
		archive_entry_set_pathname(ae, e[i].path);
		archive_entry_set_mtime(ae, 1000000000, 0);
		switch (e[i].type) {
		case 'd':
			archive_entry_set_filetype(ae, AE_IFDIR);
			archive_entry_set_perm(ae, 0755);
			break;
		case 'l':
			archive_entry_set_filetype(ae, AE_IFLNK);
			archive_entry_set_symlink(ae, e[i].data);
			break;
		case 'h':
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_hardlink(ae, e[i].data);
			break;
		default:
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_perm(ae, 0640);
			archive_entry_set_size(ae, (la_int64_t)strlen(e[i].data));
		}
		assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
		if (e[i].type == 'f')
			archive_write_data(a, e[i].data, strlen(e[i].data));
		archive_entry_free(ae);
	}
	archive_write_close(a);
	archive_write_free(a);
	return used;
}

static int apply(const struct ent *e, size_t n, const char *filter, char *err)
{
	size_t len = mktar(e, n, filter);
	return unpack_layer_mem(tarbuf, len, root_fd, NULL, err, 512);
}

static char *slurp(const char *rel)
{
	static char buf[256];
	char path[256];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	f = fopen(path, "r");
	if (f == NULL)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static bool exists(const char *rel)
{
	char path[256];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	return lstat(path, &st) == 0;
}

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/drv-unpack-XXXXXX");
	snprintf(outside, sizeof(outside), "/tmp/drv-outside-XXXXXX");
	if (mkdtemp(root) == NULL || mkdtemp(outside) == NULL)
		return -1;
	root_fd = open(root, O_RDONLY | O_DIRECTORY);
	return root_fd < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	close(root_fd);
	fs_remove_path(root);
	fs_remove_path(outside);
	return 0;
}

static void clean_paths(void **state)
{
	char out[64];
	(void)state;
	assert_int_equal(unpack_clean_path("./a//b/", out, sizeof(out)), DRV_OK);
	assert_string_equal(out, "a/b");
	assert_int_equal(unpack_clean_path(".", out, sizeof(out)), DRV_OK);
	assert_string_equal(out, "");
	assert_int_equal(unpack_clean_path("...", out, sizeof(out)), DRV_OK);
	assert_string_equal(out, "...");
	assert_int_equal(unpack_clean_path("/etc/passwd", out, sizeof(out)), DRV_EPERM);
	assert_int_equal(unpack_clean_path("a/../../b", out, sizeof(out)), DRV_EPERM);
	assert_int_equal(unpack_clean_path("..", out, sizeof(out)), DRV_EPERM);
	assert_int_equal(unpack_clean_path("a/b/..", out, sizeof(out)), DRV_EPERM);
	assert_int_equal(
	        unpack_clean_path(
	                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	                out, sizeof(out)),
	        DRV_EINVAL);
}

static void whiteout_names(void **state)
{
	char t[64];
	(void)state;
	assert_int_equal(unpack_whiteout("a/.wh.b", t, sizeof(t)), 1);
	assert_string_equal(t, "a/b");
	assert_int_equal(unpack_whiteout(".wh.top", t, sizeof(t)), 1);
	assert_string_equal(t, "top");
	assert_int_equal(unpack_whiteout("d/.wh..wh..opq", t, sizeof(t)), 2);
	assert_string_equal(t, "d");
	assert_int_equal(unpack_whiteout(".wh..wh..opq", t, sizeof(t)), 2);
	assert_string_equal(t, "");
	assert_int_equal(unpack_whiteout("a/b.wh.c", t, sizeof(t)), 0);
	assert_int_equal(unpack_whiteout("a/.wh.", t, sizeof(t)), 0);
}

static void basic_layer(void **state)
{
	const struct ent e[] = {{"etc/", 'd', NULL},
	                        {"etc/app.conf", 'f', "x=1\n"},
	                        {"bin/tool", 'f', "#!"},
	                        {"bin/alias", 'l', "tool"},
	                        {"bin/hard", 'h', "bin/tool"},
	                        {"link-dir", 'l', "etc"},
	                        {"link-dir/through", 'f', "in root"}};
	char err[512];
	struct stat a, b;
	(void)state;
	assert_int_equal(apply(e, 7, NULL, err), DRV_OK);
	assert_string_equal(slurp("etc/app.conf"), "x=1\n");
	assert_string_equal(slurp("bin/alias"), "#!");
	assert_string_equal(slurp("etc/through"), "in root");
	assert_int_equal(stat("/tmp", &a), 0);
	char p1[128], p2[128];
	snprintf(p1, sizeof(p1), "%s/bin/tool", root);
	snprintf(p2, sizeof(p2), "%s/bin/hard", root);
	assert_int_equal(stat(p1, &a), 0);
	assert_int_equal(stat(p2, &b), 0);
	assert_int_equal(a.st_ino, b.st_ino);
	assert_int_equal(a.st_mode & 07777, 0640);
}

/* The layer file as the puller has it: fd of a file. */
static int layer_file(const struct ent *e, size_t n)
{
	char path[] = "/tmp/drv-layer-XXXXXX";
	size_t len = mktar(e, n, NULL);
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, tarbuf, len), (ssize_t)len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

/* The same unpack in `drover-agent unpack-layer`, exec'd (unpack_helper.h):
 * the result and the refusals come back over its pipe. */
static void through_the_helper(void **state)
{
	const struct ent ok[] = {{"etc/", 'd', NULL}, {"etc/app.conf", 'f', "x=1\n"}};
	const struct ent dotdot[] = {{"../evil", 'f', "x"}};
	struct unpack_stats st = {0};
	char err[512] = "";
	int fd = layer_file(ok, 2);
	(void)state;
	assert_int_equal(
	        unpack_helper_run(DROVER_AGENT_EXE, fd, root_fd, NULL, &st, err, sizeof(err)),
	        DRV_OK);
	close(fd);
	assert_int_equal(st.entries, 2);
	assert_string_equal(slurp("etc/app.conf"), "x=1\n");
	fd = layer_file(dotdot, 1);
	assert_int_equal(
	        unpack_helper_run(DROVER_AGENT_EXE, fd, root_fd, NULL, &st, err, sizeof(err)),
	        DRV_EPERM);
	close(fd);
	assert_non_null(strstr(err, "refused"));
	assert_int_not_equal(
	        unpack_helper_run("/nonexistent", 0, root_fd, NULL, &st, err, sizeof(err)), DRV_OK);
}

static void helper_replies(void **state)
{
	struct unpack_stats st = {0};
	char err[64];
	(void)state;
	assert_int_equal(unpack_reply_parse("ok 3 100 1\n", 11, &st, err, sizeof(err)), DRV_OK);
	assert_int_equal(st.entries, 3);
	assert_int_equal(st.bytes, 100);
	assert_int_equal(st.whiteouts, 1);
	assert_int_equal(unpack_reply_parse("error bad entry\n", 16, &st, err, sizeof(err)),
	                 DRV_EPERM);
	assert_string_equal(err, "bad entry");
	assert_int_equal(unpack_reply_parse("corrupt sha256:ab\n", 18, &st, err, sizeof(err)),
	                 DRV_EDECODE);
	assert_string_equal(err, "the layer hashes to sha256:ab");
	assert_int_equal(unpack_reply_parse("ok 3 100", 8, &st, err, sizeof(err)), DRV_EIO);
	assert_int_equal(unpack_reply_parse("ok 1 2 3 4", 10, &st, err, sizeof(err)), DRV_EIO);
	assert_int_equal(unpack_reply_parse("", 0, &st, err, sizeof(err)), DRV_EIO);
}

/* The digest of the layer file at fd (left at its start). */
static void file_digest(int fd, char out[DRV_DIGEST_STR])
{
	static char buf[1 << 20];
	ssize_t n = pread(fd, buf, sizeof(buf), 0);

	assert_true(n > 0);
	assert_int_equal(drv_sha256_buf(buf, (size_t)n, out), DRV_OK);
}

/* A cached layer is verified by the helper (the agent's process does not
 * hash layers): with its digest it is unpacked; with another, nothing of it
 * is and the result says so (DRV_EDECODE). */
static void verified_in_the_helper(void **state)
{
	const struct ent ok[] = {{"etc/", 'd', NULL}, {"etc/app.conf", 'f', "x=1\n"}};
	const struct ent other[] = {{"etc/", 'd', NULL}, {"etc/other.conf", 'f', "y=2\n"}};
	struct unpack_stats st = {0};
	char err[512] = "", dg[DRV_DIGEST_STR], wrong[DRV_DIGEST_STR];
	int fd = layer_file(ok, 2);
	(void)state;
	file_digest(fd, dg);
	assert_int_equal(
	        unpack_helper_run(DROVER_AGENT_EXE, fd, root_fd, dg, &st, err, sizeof(err)),
	        DRV_OK);
	close(fd);
	assert_int_equal(st.entries, 2);
	assert_string_equal(slurp("etc/app.conf"), "x=1\n");
	fd = layer_file(other, 2);
	file_digest(fd, wrong);
	wrong[7] = wrong[7] == '0' ? '1' : '0';
	assert_int_equal(
	        unpack_helper_run(DROVER_AGENT_EXE, fd, root_fd, wrong, &st, err, sizeof(err)),
	        DRV_EDECODE);
	close(fd);
	assert_non_null(strstr(err, "hashes to sha256:"));
	assert_int_not_equal(faccessat(root_fd, "etc/other.conf", F_OK, 0), 0);
	/* the helper emptied the root: what an earlier layer put there too */
	assert_false(exists("etc"));
}

static bool root_empty(void)
{
	DIR *d = opendir(root);
	struct dirent *de;
	bool empty = true;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			empty = false;
	closedir(d);
	return empty;
}

/* A gzip layer followed by bytes libarchive never needs (after the end of
 * the gzip stream): at the file's start. */
static int layer_file_trailing(const struct ent *e, size_t n, const char *trailer)
{
	char path[] = "/tmp/drv-layer-XXXXXX";
	size_t len = mktar(e, n, "gzip");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, tarbuf, len), (ssize_t)len);
	assert_int_equal(write(fd, trailer, strlen(trailer)), (ssize_t)strlen(trailer));
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

/* One pass (unpack_layer_fd with a digest): the bytes libarchive reads are
 * hashed as it reads them, and what it leaves unread after the archive's
 * end too; a mismatch leaves nothing in the root and says "corrupt". */
static void hashed_while_unpacking(void **state)
{
	const struct ent ok[] = {{"etc/", 'd', NULL}, {"etc/app.conf", 'f', "x=1\n"}};
	const struct ent bad[] = {{"bin/", 'd', NULL}, {"bin/evil", 'f', "rm -rf /\n"}};
	struct unpack_stats st = {0};
	char err[512] = "", dg[DRV_DIGEST_STR], tar_only[DRV_DIGEST_STR], got[DRV_DIGEST_STR];
	size_t len;
	int fd;
	(void)state;

	/* a good layer unpacks, trailing bytes and all */
	fd = layer_file_trailing(ok, 2, "trailing bytes after the end");
	file_digest(fd, dg);
	assert_int_equal(unpack_layer_fd(fd, root_fd, dg, got, &st, err, sizeof(err)), DRV_OK);
	close(fd);
	assert_string_equal(got, "");
	assert_int_equal(st.entries, 2);
	assert_string_equal(slurp("etc/app.conf"), "x=1\n");

	/* the digest of the archive alone: the trailing bytes make it corrupt */
	len = mktar(bad, 2, "gzip");
	assert_int_equal(drv_sha256_buf(tarbuf, len, tar_only), DRV_OK);
	fd = layer_file_trailing(bad, 2, "X");
	file_digest(fd, dg);
	assert_string_not_equal(dg, tar_only);
	assert_int_equal(unpack_layer_fd(fd, root_fd, tar_only, got, &st, err, sizeof(err)),
	                 DRV_EDECODE);
	assert_string_equal(got, dg);
	assert_non_null(strstr(err, "hashes to"));
	assert_true(root_empty());

	/* the same through the helper: "corrupt", nothing left */
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(
	        unpack_helper_run(DROVER_AGENT_EXE, fd, root_fd, tar_only, &st, err, sizeof(err)),
	        DRV_EDECODE);
	close(fd);
	assert_non_null(strstr(err, "hashes to sha256:"));
	assert_true(root_empty());

	/* a layer whose bytes do not match its digest: one byte of a file's
	 * data changed (a valid tar still, unpacked, then thrown away) */
	fd = layer_file(ok, 2);
	file_digest(fd, dg);
	assert_int_equal(pwrite(fd, "Y", 1, 1024), 1);
	assert_int_equal(unpack_layer_fd(fd, root_fd, dg, got, &st, err, sizeof(err)), DRV_EDECODE);
	close(fd);
	assert_string_not_equal(got, "");
	assert_true(root_empty());
}

static void escapes_refused(void **state)
{
	char err[512], target[128];
	const struct ent dotdot[] = {{"../evil", 'f', "x"}};
	const struct ent abs[] = {{"/tmp/drv-evil", 'f', "x"}};
	const struct ent uplink[] = {{"up", 'l', "../../../../.."}, {"up/tmp/evil", 'f', "x"}};
	const struct ent hard[] = {{"h", 'h', "../../etc/passwd"}};
	(void)state;
	assert_int_equal(apply(dotdot, 1, NULL, err), DRV_EPERM);
	assert_non_null(strstr(err, "refused"));
	assert_int_equal(apply(abs, 1, NULL, err), DRV_EPERM);
	assert_false(access("/tmp/drv-evil", F_OK) == 0);
	struct ent out[] = {{"out", 'l', outside}, {"out/pwned", 'f', "x"}};
	assert_int_equal(apply(out, 2, NULL, err), DRV_EPERM);
	assert_non_null(strstr(err, "out/pwned"));
	snprintf(target, sizeof(target), "%s/pwned", outside);
	assert_false(access(target, F_OK) == 0);
	assert_int_equal(apply(uplink, 2, NULL, err), DRV_EPERM);
	assert_int_equal(apply(hard, 1, NULL, err), DRV_EPERM);
}

static void whiteouts_across_layers(void **state)
{
	char err[512];
	const struct ent l1[] = {{"a/keep", 'f', "k"},
	                         {"a/gone", 'f', "g"},
	                         {"a/dir/deep", 'f', "d"},
	                         {"o/old", 'f', "o"}};
	const struct ent l2[] = {{"a/.wh.gone", 'f', ""},
	                         {"a/.wh.dir", 'f', ""},
	                         {"o/new", 'f', "n"},
	                         {"o/.wh..wh..opq", 'f', ""},
	                         {"a/.wh.missing", 'f', ""}};
	(void)state;
	assert_int_equal(apply(l1, 4, "gzip", err), DRV_OK);
	assert_int_equal(apply(l2, 5, "zstd", err), DRV_OK);
	assert_true(exists("a/keep"));
	assert_false(exists("a/gone"));
	assert_false(exists("a/dir"));
	assert_false(exists("o/old"));
	assert_string_equal(slurp("o/new"), "n"); /* same layer as the opaque marker: kept */
	assert_false(exists("a/.wh.gone"));
}

static void replace_kinds(void **state)
{
	char err[512];
	const struct ent l1[] = {{"x/inner", 'f', "1"}, {"y", 'f', "file"}};
	const struct ent l2[] = {{"x", 'f', "now a file"}, {"y/", 'd', NULL}, {"y/z", 'f', "z"}};
	(void)state;
	assert_int_equal(apply(l1, 2, NULL, err), DRV_OK);
	assert_int_equal(apply(l2, 3, NULL, err), DRV_OK);
	assert_string_equal(slurp("x"), "now a file");
	assert_string_equal(slurp("y/z"), "z");
}

static void bad_streams(void **state)
{
	char err[512];
	const struct ent e[] = {{"f", 'f', "0123456789"}};
	size_t len;
	(void)state;
	assert_int_equal(unpack_layer_mem("not a tar at all, not at all......", 34, root_fd, NULL,
	                                  err, sizeof(err)),
	                 DRV_EDECODE);
	len = mktar(e, 1, "gzip");
	assert_int_not_equal(unpack_layer_mem(tarbuf, len / 2, root_fd, NULL, err, sizeof(err)),
	                     DRV_OK);
}

static void write_files(void **state)
{
	char err[512];
	const struct ent e[] = {{"cfg", 'l', "/etc"}};
	(void)state;
	assert_int_equal(unpack_write_file(root_fd, "/etc/berrys/flags.json", "{}", 2, 0600, err,
	                                   sizeof(err)),
	                 DRV_OK);
	assert_string_equal(slurp("etc/berrys/flags.json"), "{}");
	assert_int_equal(unpack_write_file(root_fd, "../x", "", 0, 0644, err, sizeof(err)),
	                 DRV_EPERM);
	assert_int_equal(apply(e, 1, NULL, err), DRV_OK);
	assert_int_equal(unpack_write_file(root_fd, "cfg/x", "", 0, 0644, err, sizeof(err)),
	                 DRV_EPERM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(clean_paths),
	        cmocka_unit_test(whiteout_names),
	        cmocka_unit_test_setup_teardown(basic_layer, setup, teardown),
	        cmocka_unit_test_setup_teardown(through_the_helper, setup, teardown),
	        cmocka_unit_test(helper_replies),
	        cmocka_unit_test_setup_teardown(verified_in_the_helper, setup, teardown),
	        cmocka_unit_test_setup_teardown(hashed_while_unpacking, setup, teardown),
	        cmocka_unit_test_setup_teardown(escapes_refused, setup, teardown),
	        cmocka_unit_test_setup_teardown(whiteouts_across_layers, setup, teardown),
	        cmocka_unit_test_setup_teardown(replace_kinds, setup, teardown),
	        cmocka_unit_test_setup_teardown(bad_streams, setup, teardown),
	        cmocka_unit_test_setup_teardown(write_files, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
