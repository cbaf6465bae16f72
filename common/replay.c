/* replay.c: replay guard and a per-sender table (open addressing). */
#include "replay.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

int drv_replay_check(const struct drv_replay_msg *m, const char *self_id, uint64_t highest,
                     int64_t now_wall_ms, int64_t skew_ms)
{
	if (m->target != NULL && (self_id == NULL || strcmp(m->target, self_id) != 0))
		return DRV_ETARGET;
	if (m->seq == 0 || m->expires_at_ms < m->issued_at_ms)
		return DRV_EINVAL;
	if (now_wall_ms > m->expires_at_ms + skew_ms)
		return DRV_EEXPIRED;
	if (m->issued_at_ms > now_wall_ms + skew_ms)
		return DRV_EFUTURE;
	if (m->seq <= highest)
		return DRV_EREPLAY;
	return DRV_OK;
}

struct slot {
	char *sender;
	uint64_t highest;
};

struct drv_replay_table {
	struct slot *slots;
	size_t cap; /* power of two */
	size_t used;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct slot *find(const struct drv_replay_table *t, const char *sender)
{
	size_t i = (size_t)hash_str(sender) & (t->cap - 1);

	while (t->slots[i].sender != NULL && strcmp(t->slots[i].sender, sender) != 0)
		i = (i + 1) & (t->cap - 1);
	return &t->slots[i];
}

int drv_replay_table_new(size_t expected_senders, struct drv_replay_table **out)
{
	struct drv_replay_table *t = calloc(1, sizeof(*t));
	size_t cap = 16;

	if (t == NULL)
		return DRV_ENOMEM;
	while (cap < expected_senders * 2)
		cap *= 2;
	t->slots = calloc(cap, sizeof(*t->slots));
	if (t->slots == NULL) {
		free(t);
		return DRV_ENOMEM;
	}
	t->cap = cap;
	*out = t;
	return DRV_OK;
}

void drv_replay_table_free(struct drv_replay_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->cap; i++)
		free(t->slots[i].sender);
	free(t->slots);
	free(t);
}

uint64_t drv_replay_highest(const struct drv_replay_table *t, const char *sender)
{
	return find(t, sender)->highest;
}

static int grow(struct drv_replay_table *t)
{
	struct drv_replay_table bigger = {.cap = t->cap * 2};

	bigger.slots = calloc(bigger.cap, sizeof(*bigger.slots));
	if (bigger.slots == NULL)
		return DRV_ENOMEM;
	for (size_t i = 0; i < t->cap; i++) {
		if (t->slots[i].sender != NULL)
			*find(&bigger, t->slots[i].sender) = t->slots[i];
	}
	free(t->slots);
	t->slots = bigger.slots;
	t->cap = bigger.cap;
	return DRV_OK;
}

int drv_replay_commit(struct drv_replay_table *t, const char *sender, uint64_t seq)
{
	struct slot *s;

	if ((t->used + 1) * 2 > t->cap && grow(t) != DRV_OK)
		return DRV_ENOMEM;
	s = find(t, sender);
	if (s->sender == NULL) {
		s->sender = strdup(sender);
		if (s->sender == NULL)
			return DRV_ENOMEM;
		t->used++;
	}
	if (seq > s->highest)
		s->highest = seq;
	return DRV_OK;
}
