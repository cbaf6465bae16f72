/*
 * bench_pull.c: time the agent's image puller on one image.
 *
 *   bench_pull REFERENCE DIGEST WORKDIR [--insecure] [--unpack] [--fetch-exe AGENT]
 *
 * Empties WORKDIR/cache, pulls every blob of the image (verified by sha256
 * while streaming, stored in the content-addressed cache) and prints one
 * JSON line: {"fetch_ms":..,"bytes":..,"blobs":..,"unpack_ms":..}. With
 * --unpack it also unpacks the image into WORKDIR/releases (timed apart).
 * With --fetch-exe (the drover-agent binary) the registry pull runs in the
 * unprivileged fetch helper and is then verified from the cache, as the
 * agent does it (agent/fetch_helper.h).
 * tests/bench/bench_pull.sh compares it with curl on the same blobs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "fsutil.h"
#include "puller.h"

int main(int argc, char **argv)
{
	struct puller_stats st = {0};
	struct puller *p;
	char cache[4096], rel[4096], err[1024] = "", *dir = NULL;
	int insecure = 0, unpack = 0, rc;
	const char *fetch_exe = NULL;
	int64_t t0, fetch_ms, unpack_ms = 0;

	if (argc < 4) {
		fprintf(stderr, "usage: bench_pull REFERENCE DIGEST WORKDIR [--insecure] [--unpack]"
		                " [--fetch-exe AGENT]\n");
		return 2;
	}
	for (int i = 4; i < argc; i++) {
		insecure |= strcmp(argv[i], "--insecure") == 0;
		unpack |= strcmp(argv[i], "--unpack") == 0;
		if (strcmp(argv[i], "--fetch-exe") == 0 && i + 1 < argc)
			fetch_exe = argv[++i];
	}
	snprintf(cache, sizeof(cache), "%s/cache", argv[3]);
	snprintf(rel, sizeof(rel), "%s/releases", argv[3]);
	fs_remove_path(cache);
	fs_remove_path(rel);
	struct puller_config cfg = {.cache_dir = cache,
	                            .releases_dir = rel,
	                            .insecure = insecure,
	                            .fetch_exe = fetch_exe};
	if (puller_new(&cfg, &p) != DRV_OK)
		return 1;
	t0 = drv_mono_ms();
	rc = puller_fetch(p, argv[1], argv[2], 0, &st, err, sizeof(err));
	fetch_ms = drv_mono_ms() - t0;
	if (rc == DRV_OK && unpack) {
		t0 = drv_mono_ms();
		rc = puller_stage(p, "bench", argv[1], argv[2], 0, &dir, NULL, err, sizeof(err));
		unpack_ms = drv_mono_ms() - t0;
		free(dir);
	}
	puller_free(p);
	if (rc != DRV_OK) {
		fprintf(stderr, "bench_pull: %s\n", err);
		return 1;
	}
	printf("{\"fetch_ms\":%lld,\"bytes\":%llu,\"blobs\":%u,\"unpack_ms\":%lld}\n",
	       (long long)fetch_ms, st.bytes_fetched, st.blobs_fetched, (long long)unpack_ms);
	return 0;
}
