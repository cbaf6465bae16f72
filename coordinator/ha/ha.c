/* ha.c: the process-wide leadership state (ha.h). */
#include "ha.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

static pthread_mutex_t ha_mu = PTHREAD_MUTEX_INITIALIZER;
/* Until a store says otherwise, a node is alone: leader with epoch 1. */
static atomic_bool ha_leader = true;
static _Atomic uint64_t ha_epoch = 1;
static _Atomic uint64_t ha_seen = 1;
static atomic_bool ha_grouped = false;
static atomic_bool ha_held = false;
static char ha_url[DRV_HA_URL_MAX + 1];
static struct {
	drv_ha_change_fn fn;
	void *arg;
} ha_watch[DRV_HA_WATCH_MAX];
static size_t ha_nwatch;

bool drv_ha_is_leader(void)
{
	return atomic_load(&ha_leader) && !atomic_load(&ha_held);
}

void drv_ha_hold(bool held)
{
	atomic_store(&ha_held, held);
}

uint64_t drv_ha_epoch(void)
{
	return atomic_load(&ha_leader) ? atomic_load(&ha_epoch) : 0;
}

bool drv_ha_grouped(void)
{
	return atomic_load(&ha_grouped);
}

void drv_ha_set_grouped(bool grouped)
{
	atomic_store(&ha_grouped, grouped);
}

uint64_t drv_ha_wire_epoch(void)
{
	return atomic_load(&ha_grouped) ? drv_ha_epoch() : 0;
}

uint64_t drv_ha_seen_epoch(void)
{
	return atomic_load(&ha_seen);
}

void drv_ha_leader_url(char *buf, size_t n)
{
	if (n == 0)
		return;
	pthread_mutex_lock(&ha_mu);
	strncpy(buf, ha_url, n - 1);
	buf[n - 1] = '\0';
	pthread_mutex_unlock(&ha_mu);
}

void drv_ha_view(struct drv_ha_view *v)
{
	pthread_mutex_lock(&ha_mu);
	v->grouped = atomic_load(&ha_grouped);
	v->resuming = atomic_load(&ha_leader) && atomic_load(&ha_held);
	v->leader = atomic_load(&ha_leader) && !v->resuming;
	v->epoch = v->leader && v->grouped ? atomic_load(&ha_epoch) : 0;
	snprintf(v->leader_url, sizeof(v->leader_url), "%s", v->leader ? "" : ha_url);
	pthread_mutex_unlock(&ha_mu);
}

int drv_ha_watch(drv_ha_change_fn fn, void *arg)
{
	int rc = DRV_OK;

	pthread_mutex_lock(&ha_mu);
	if (ha_nwatch == DRV_HA_WATCH_MAX) {
		rc = DRV_ETOOBIG;
	} else {
		ha_watch[ha_nwatch].fn = fn;
		ha_watch[ha_nwatch++].arg = arg;
	}
	pthread_mutex_unlock(&ha_mu);
	return rc;
}

void drv_ha_set(bool leader, uint64_t epoch, const char *leader_url)
{
	bool changed;
	size_t n;

	pthread_mutex_lock(&ha_mu);
	changed = atomic_load(&ha_leader) != leader || (leader && atomic_load(&ha_epoch) != epoch);
	if (epoch > atomic_load(&ha_seen))
		atomic_store(&ha_seen, epoch);
	if (leader)
		atomic_store(&ha_epoch, epoch);
	atomic_store(&ha_leader, leader);
	strncpy(ha_url, leader_url != NULL && !leader ? leader_url : "", sizeof(ha_url) - 1);
	ha_url[sizeof(ha_url) - 1] = '\0';
	n = ha_nwatch;
	pthread_mutex_unlock(&ha_mu);
	/* Watchers are only added, never removed while running: index 0..n is stable. */
	for (size_t i = 0; changed && i < n; i++)
		ha_watch[i].fn(ha_watch[i].arg, leader, leader ? epoch : 0);
}

void drv_ha_reset(void)
{
	pthread_mutex_lock(&ha_mu);
	atomic_store(&ha_leader, true);
	atomic_store(&ha_grouped, false);
	atomic_store(&ha_held, false);
	atomic_store(&ha_epoch, 1);
	atomic_store(&ha_seen, 1);
	ha_url[0] = '\0';
	ha_nwatch = 0;
	pthread_mutex_unlock(&ha_mu);
}
