/*
 * tailhash.h: the SHA-256 of a file computed on a second thread while the
 * file is being written, by reading back what was written.
 *
 * The puller received, wrote and hashed every 16 KiB piece on one thread;
 * SHA-256 was about a third of a pull's CPU, on top of what curl does. Here
 * the receiving thread only writes, as curl does, and a worker follows it:
 * it reads the new bytes back (pread, from the page cache) and hashes them.
 * So the hash can run beside the transfer when a second core is free, and
 * the digest covers the bytes in the file, the very bytes that are renamed
 * into the cache once the caller has compared it.
 */
#ifndef DROVER_AGENT_TAILHASH_H
#define DROVER_AGENT_TAILHASH_H

#include <stdint.h>

#include "sha256.h"

struct tailhash;

/* Start a worker hashing fd's bytes from offset from on into h, which must
 * hold the hash of the bytes before from. The caller keeps fd and h, and
 * may use or reset h only while the worker is idle (after tailhash_wait). */
int tailhash_new(int fd, struct drv_sha256 *h, uint64_t from, struct tailhash **out);

/* The file holds written bytes now (more than at the last call, or as
 * many). The worker reads them when it gets to them. */
void tailhash_written(struct tailhash *t, uint64_t written);

/* Wait until every byte written so far is hashed. DRV_OK, or DRV_EIO with
 * errno set when a read back failed or came up short (the hash is then
 * incomplete: the caller must not trust it until tailhash_rewind). */
int tailhash_wait(struct tailhash *t);

/* Start over at offset from, after the caller truncated the file and reset
 * h (both while the worker was idle, i.e. after tailhash_wait). Clears a
 * read failure. */
void tailhash_rewind(struct tailhash *t, uint64_t from);

/* Stop the worker (it ends its current read) and free; NULL is fine. */
void tailhash_free(struct tailhash *t);

#endif
