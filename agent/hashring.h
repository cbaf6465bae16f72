/*
 * hashring.h: bytes handed to a second thread through a small ring of
 * reusable buffers, in order, while the thread that received them goes on.
 *
 * The fetch helper's receiving thread copies each piece libcurl hands it into
 * the ring; the worker writes each full slot to the blob's partial file and
 * hashes it (puller.c, store_slot). The receiving thread then does about what
 * curl does minus the write, and the hash never reads the file back (until
 * the ninth round of issue 18 a worker re-read every byte from the page cache,
 * tailhash.c). The ring is bounded: when every slot is with the worker the
 * feeder waits for one (back-pressure), so a slow disk or hash slows the
 * transfer instead of growing memory. The caller compares the digest itself
 * after hashring_sync, before the blob gets its final name.
 */
#ifndef DROVER_AGENT_HASHRING_H
#define DROVER_AGENT_HASHRING_H

#include <stddef.h>
#include <stdint.h>

/* Takes len bytes (the puller: writes and hashes them); nonzero on failure.
 * Called on the worker, one slot at a time, in the order the bytes were fed. */
typedef int (*hashring_fn)(void *arg, const void *data, size_t len);

struct hashring;

struct hashring_stats {
	uint64_t handed;    /* bytes in slots handed to the worker */
	uint64_t hashed;    /* bytes given to fn */
	uint64_t waits;     /* times the feeder waited for a free slot */
	int feeder_waiting; /* the feeder is waiting for a free slot now */
};

/* A ring of slots buffers of slot_size bytes each (at most slots * slot_size
 * bytes held) and its worker calling fn(arg, ...). */
int hashring_new(hashring_fn fn, void *arg, size_t slots, size_t slot_size, struct hashring **out);

/* Copy len bytes into the ring; a full slot goes to the worker. Blocks while
 * every slot is with the worker. DRV_OK, or DRV_EIO once fn has failed (the
 * bytes are then dropped: the hash is no good until hashring_sync). */
int hashring_feed(struct hashring *r, const void *data, size_t len);

/* Hand over the slot being filled and wait until every byte fed has been
 * hashed; the caller may then use or reset what fn hashes into. DRV_OK, or
 * DRV_EIO when fn failed since the last sync (the failure is then cleared). */
int hashring_sync(struct hashring *r);

void hashring_get_stats(struct hashring *r, struct hashring_stats *st);

/* Stop the worker (after the slot it is hashing) and free; NULL is fine. */
void hashring_free(struct hashring *r);

#endif
