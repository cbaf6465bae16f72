/* link.c: NNG REP listener with a growing pool of contexts. */
#include "link.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/tls/tls.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "atomicfile.h"
#include "err.h"
#include "log.h"
#include "watchdog.h"

enum lc_state { LC_RECV, LC_SEND };

struct lctx {
	struct core_waiter w; /* first: the core hands it back to deliver() */
	struct link *l;
	nng_ctx ctx;
	nng_aio *aio;
	enum lc_state state;
	struct lctx *next;
};

struct link {
	struct core *core;
	nng_socket sock;
	pthread_mutex_t mu;  /* the pool: all, n_all, receiving; and busy */
	pthread_cond_t idle; /* busy dropped to 0 while closing */
	struct lctx *all;
	size_t n_all, receiving;
	size_t receivers, max_contexts;
	size_t busy; /* NNG callbacks inside the core right now */
	bool pool_full_logged;
	atomic_bool closing;
};

/* NNG's threads call into the core only between enter() and leave(); once
 * closing is set no new call starts, and link_stop() waits for busy to drop
 * to 0 before the core can go away. */
static bool enter(struct link *l)
{
	bool ok;

	pthread_mutex_lock(&l->mu);
	ok = !atomic_load(&l->closing);
	if (ok)
		l->busy++;
	pthread_mutex_unlock(&l->mu);
	return ok;
}

static void leave(struct link *l)
{
	pthread_mutex_lock(&l->mu);
	if (--l->busy == 0)
		pthread_cond_broadcast(&l->idle);
	pthread_mutex_unlock(&l->mu);
}

static void start_recv(struct lctx *x)
{
	pthread_mutex_lock(&x->l->mu);
	x->l->receiving++;
	pthread_mutex_unlock(&x->l->mu);
	x->state = LC_RECV;
	nng_ctx_recv(x->ctx, x->aio);
}

/* Send a signed reply; takes env. */
static void send_env(struct lctx *x, uint8_t *env, size_t len)
{
	nng_msg *m;

	if (nng_msg_alloc(&m, 0) != 0 || nng_msg_append(m, env, len) != 0) {
		drv_error("link", "out of memory for a reply");
		free(env);
		start_recv(x);
		return;
	}
	free(env);
	x->state = LC_SEND;
	nng_aio_set_msg(x->aio, m);
	nng_ctx_send(x->ctx, x->aio);
}

/* core_waiter.deliver: called with the core lock held (a Poll's answer) or
 * without it (an answer owed after a commit). While closing nothing
 * is answered: an answer makes the agent send its next request at once, and
 * NNG 1.5.2 can hang closing a connection while a message arrives on it
 * (docs/reliability.md). The agent asks again on its next connection. */
static void deliver(struct core_waiter *w, uint8_t *env, size_t len)
{
	struct lctx *x = (struct lctx *)w;

	if (atomic_load(&x->l->closing))
		free(env);
	else if (env == NULL)
		start_recv(x); /* drop the request unanswered */
	else
		send_env(x, env, len);
}

static void ensure_receivers(struct link *l);

static void handle(struct lctx *x)
{
	nng_msg *m = nng_aio_get_msg(x->aio);
	struct core_reply reply;

	core_handle(x->l->core, nng_msg_body(m), nng_msg_len(m), nng_pipe_id(nng_msg_get_pipe(m)),
	            &x->w, &reply);
	nng_msg_free(m);
	if (reply.parked) {
		ensure_receivers(x->l); /* x belongs to the core until it delivers */
		return;
	}
	if (reply.env == NULL) {
		start_recv(x);
		return;
	}
	send_env(x, reply.env, reply.len);
}

static void aio_cb(void *arg)
{
	struct lctx *x = arg;
	struct link *l = x->l;
	int rv = nng_aio_result(x->aio);

	if (x->state == LC_SEND) {
		if (rv != 0)
			nng_msg_free(nng_aio_get_msg(x->aio));
		if (rv != NNG_ECLOSED && !atomic_load(&l->closing))
			start_recv(x);
		return;
	}
	pthread_mutex_lock(&l->mu);
	l->receiving--;
	pthread_mutex_unlock(&l->mu);
	if (rv != 0 || !enter(l)) {
		if (rv == 0)
			nng_msg_free(nng_aio_get_msg(x->aio));
		else if (rv != NNG_ECLOSED && rv != NNG_ECANCELED)
			drv_warn("link", "receive failed", "error=\"%s\"", nng_strerror(rv));
		if (rv != NNG_ECLOSED && !atomic_load(&l->closing))
			start_recv(x);
		return;
	}
	handle(x);
	leave(l);
}

static int lctx_new(struct link *l, struct lctx **out)
{
	struct lctx *x = calloc(1, sizeof(*x));
	int rv;

	if (x == NULL)
		return DRV_ENOMEM;
	x->w.deliver = deliver;
	x->l = l;
	rv = nng_aio_alloc(&x->aio, aio_cb, x);
	if (rv == 0) {
		rv = nng_ctx_open(&x->ctx, l->sock);
		if (rv != 0)
			nng_aio_free(x->aio);
	}
	if (rv != 0) {
		free(x);
		return rv == NNG_ENOMEM ? DRV_ENOMEM : DRV_ECLOSED;
	}
	*out = x;
	return DRV_OK;
}

/* Keep `receivers` contexts receiving while others are parked. */
static void ensure_receivers(struct link *l)
{
	for (;;) {
		struct lctx *x;
		bool need;

		pthread_mutex_lock(&l->mu);
		need = l->receiving < l->receivers && l->n_all < l->max_contexts &&
		       !atomic_load(&l->closing);
		if (l->receiving == 0 && l->n_all >= l->max_contexts && !l->pool_full_logged) {
			drv_warn("link", "every context is holding a poll: raise max_contexts",
			         "max=%zu", l->max_contexts);
			l->pool_full_logged = true;
		}
		pthread_mutex_unlock(&l->mu);
		if (!need || lctx_new(l, &x) != DRV_OK)
			return;
		pthread_mutex_lock(&l->mu);
		x->next = l->all;
		l->all = x;
		l->n_all++;
		pthread_mutex_unlock(&l->mu);
		start_recv(x);
	}
}

static void pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct link *l = arg;

	if (ev == NNG_PIPE_EV_REM_POST && enter(l)) {
		core_pipe_closed(l->core, (uint32_t)nng_pipe_id(p));
		leave(l);
	}
}

static int tls_config(nng_listener lst, const struct link_config *cfg)
{
	nng_tls_config *tls = NULL;
	char *cert = NULL, *key = NULL;
	size_t n;
	int rv = NNG_EINVAL;

	if (cfg->tls_cert == NULL || cfg->tls_key == NULL) {
		drv_error("link", "tls+tcp:// needs tls.cert and tls.key");
		return rv;
	}
	if (drv_read_file(cfg->tls_cert, 1 << 20, &cert, &n) != DRV_OK ||
	    drv_check_private(cfg->tls_key) != DRV_OK ||
	    drv_read_file(cfg->tls_key, 1 << 20, &key, &n) != DRV_OK) {
		drv_error("link", "cannot read the TLS certificate or key (key must be 0600)",
		          "cert=%s key=%s", cfg->tls_cert, cfg->tls_key);
		goto out;
	}
	rv = nng_tls_config_alloc(&tls, NNG_TLS_MODE_SERVER);
	if (rv == 0)
		rv = nng_tls_config_own_cert(tls, cert, key, NULL);
	if (rv == 0)
		rv = nng_listener_set_ptr(lst, NNG_OPT_TLS_CONFIG, tls);
out:
	if (tls != NULL)
		nng_tls_config_free(tls);
	free(cert);
	if (key != NULL) {
		memset(key, 0, strlen(key));
		free(key);
	}
	return rv;
}

static int listen_one(struct link *l, const char *url, const struct link_config *cfg)
{
	nng_listener lst;
	int rv = nng_listener_create(&lst, l->sock, url);

	if (rv == 0 && strncmp(url, "tls+tcp://", 10) == 0)
		rv = tls_config(lst, cfg);
	if (rv == 0)
		rv = nng_listener_start(lst, 0);
	if (rv != 0) {
		drv_error("link", "cannot listen", "url=%s error=\"%s\"", url, nng_strerror(rv));
		return DRV_EIO;
	}
	drv_info("link", "listening", "url=%s", url);
	return DRV_OK;
}

static int open_socket(struct link *l, const struct link_config *cfg)
{
	int rv = nng_rep0_open(&l->sock);

	if (rv == 0)
		rv = nng_socket_set_size(l->sock, NNG_OPT_RECVMAXSZ, LINK_RECV_MAX);
	if (rv == 0)
		rv = nng_socket_set_bool(l->sock, NNG_OPT_TCP_KEEPALIVE, true);
	if (rv == 0)
		rv = nng_pipe_notify(l->sock, NNG_PIPE_EV_REM_POST, pipe_cb, l);
	if (rv != 0) {
		drv_error("link", "cannot open the REP socket", "error=\"%s\"", nng_strerror(rv));
		return DRV_EIO;
	}
	for (size_t i = 0; i < cfg->listen->n; i++) {
		if (listen_one(l, cfg->listen->v[i], cfg) != DRV_OK)
			return DRV_EIO;
	}
	return DRV_OK;
}

int link_start(struct core *c, const struct link_config *cfg, struct link **out)
{
	struct link *l = calloc(1, sizeof(*l));
	int rc;

	if (l == NULL)
		return DRV_ENOMEM;
	l->core = c;
	l->receivers = cfg->receivers > 0 ? cfg->receivers : 1;
	l->max_contexts = cfg->max_contexts > l->receivers ? cfg->max_contexts : l->receivers;
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->idle, NULL);
	atomic_init(&l->closing, false);
	rc = open_socket(l, cfg);
	if (rc != DRV_OK) {
		link_stop(l);
		return rc;
	}
	ensure_receivers(l);
	*out = l;
	return DRV_OK;
}

static void close_socket(void *arg)
{
	nng_close(*(nng_socket *)arg);
}

int link_stop(struct link *l)
{
	struct lctx *x, *next;
	int rc;

	if (l == NULL)
		return DRV_OK;
	pthread_mutex_lock(&l->mu);
	atomic_store(&l->closing, true);
	while (l->busy > 0)
		pthread_cond_wait(&l->idle, &l->mu);
	pthread_mutex_unlock(&l->mu);
	core_release_waiters(l->core); /* unanswered: deliver() drops them */
	rc = drv_run_within(LINK_CLOSE_MS, "closing the NNG socket", close_socket, &l->sock);
	if (rc != DRV_OK)
		return rc; /* l and its contexts stay: NNG may still use them */
	for (x = l->all; x != NULL; x = next) {
		next = x->next;
		nng_aio_stop(x->aio);
		nng_aio_free(x->aio);
		free(x);
	}
	pthread_cond_destroy(&l->idle);
	pthread_mutex_destroy(&l->mu);
	free(l);
	return DRV_OK;
}
