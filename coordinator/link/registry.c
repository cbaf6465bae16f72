/* registry.c: agents by id, in an open-addressing hash table. */
#include "registry.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

struct registry {
	struct agent_rt **slots;
	size_t cap; /* power of two */
	size_t used;
};

static uint64_t hash_id(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct agent_rt **slot_of(struct agent_rt **slots, size_t cap, const char *id)
{
	size_t i = (size_t)hash_id(id) & (cap - 1);

	while (slots[i] != NULL && strcmp(slots[i]->id, id) != 0)
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

int registry_new(struct registry **out)
{
	struct registry *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return DRV_ENOMEM;
	r->cap = 64;
	r->slots = calloc(r->cap, sizeof(*r->slots));
	if (r->slots == NULL) {
		free(r);
		return DRV_ENOMEM;
	}
	*out = r;
	return DRV_OK;
}

void registry_free(struct registry *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->cap; i++)
		free(r->slots[i]);
	free(r->slots);
	free(r);
}

struct agent_rt *registry_get(struct registry *r, const char *id)
{
	return *slot_of(r->slots, r->cap, id);
}

static int grow(struct registry *r)
{
	size_t cap = r->cap * 2;
	struct agent_rt **slots = calloc(cap, sizeof(*slots));

	if (slots == NULL)
		return DRV_ENOMEM;
	for (size_t i = 0; i < r->cap; i++) {
		if (r->slots[i] != NULL)
			*slot_of(slots, cap, r->slots[i]->id) = r->slots[i];
	}
	free(r->slots);
	r->slots = slots;
	r->cap = cap;
	return DRV_OK;
}

int registry_add(struct registry *r, const char *id, struct agent_rt **out)
{
	struct agent_rt **slot, *a;

	if (strlen(id) > DRV_AGENT_ID_MAX)
		return DRV_EINVAL;
	if (registry_get(r, id) != NULL)
		return DRV_EEXIST;
	if ((r->used + 1) * 2 > r->cap && grow(r) != DRV_OK)
		return DRV_ENOMEM;
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return DRV_ENOMEM;
	strcpy(a->id, id);
	slot = slot_of(r->slots, r->cap, id);
	*slot = a;
	r->used++;
	*out = a;
	return DRV_OK;
}

size_t registry_count(const struct registry *r)
{
	return r->used;
}

void registry_foreach(struct registry *r, registry_fn fn, void *arg)
{
	for (size_t i = 0; i < r->cap; i++) {
		if (r->slots[i] != NULL)
			fn(arg, r->slots[i]);
	}
}
