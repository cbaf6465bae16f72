/*
 * driver_container.c: the container driver. Talks the Docker Engine API
 * (v1.41) over a unix socket with libcurl; Podman's `podman system service`
 * serves the same API. An instance is a container named "drover-<instance>"
 * ("@" becomes "_"), on the host network (so health checks and the slot's
 * port work as for exec), with --init, labels naming the service, the
 * instruction's env, and its files bind-mounted read-only from
 * STATE_DIR/files/<instance>/. The engine restarts a crashed container
 * (restart policy on-failure, with its own back-off).
 *
 * prepare pulls the image by digest (POST /images/create); with local_only it
 * only checks the image is still in the engine's store (fast rollback).
 */
#include <curl/curl.h>
#include <fcntl.h>
#include <pthread.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomicfile.h"
#include "clock.h"
#include "driver.h"
#include "err.h"
#include "fsutil.h"
#include "log.h"
#include "oci.h"
#include "unpack.h"

#define API          "http://d/v1.41"
#define RESP_MAX     (4u << 20)
#define PULL_SECS    600 /* at most; a step's deadline shortens it */
#define CONNECT_SECS 5

struct cstate {
	struct driver_env env;
	pthread_mutex_t lock; /* the record of pulled images */
};

/* STATE_DIR/container-images: one "registry/repo@digest" per line, the
 * images this driver pulled, so GC removes only what drover brought. */
static void images_path(struct cstate *c, char *buf, size_t size)
{
	snprintf(buf, size, "%s/container-images", c->env.state_dir);
}

struct buf {
	char *data;
	size_t len;
	bool too_big;
};

static size_t on_data(char *d, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	size_t len = size * n;
	char *nd;

	if (b->len + len > RESP_MAX) {
		b->too_big = true;
		return 0;
	}
	nd = realloc(b->data, b->len + len + 1);
	if (nd == NULL)
		return 0;
	b->data = nd;
	memcpy(b->data + b->len, d, len);
	b->len += len;
	b->data[b->len] = '\0';
	return len;
}

/* curl's progress callback (at least once a second): a stopping agent ends
 * the call. */
static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	(void)dt, (void)dn, (void)ut, (void)un;
	return stop_token_stopped(arg);
}

/* One API call; *status the HTTP status, *out the body (caller frees).
 * Bounded: connect CONNECT_SECS, the whole call timeout_s, the body RESP_MAX,
 * and it ends within about a second of the agent stopping. */
static int call(struct cstate *c, const char *method, const char *path, const char *body,
                long timeout_s, long *status, char **out, char *err, size_t size)
{
	struct curl_slist *h = NULL;
	struct buf b = {0};
	char url[2048], errbuf[CURL_ERROR_SIZE] = "";
	CURL *curl = curl_easy_init();
	CURLcode cc;

	if (curl == NULL)
		return DRV_ENOMEM;
	snprintf(url, sizeof(url), API "%s", path);
	h = curl_slist_append(h, "Content-Type: application/json");
	curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, c->env.docker_socket);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, timeout_s > 0 ? timeout_s : 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, (long)CONNECT_SECS);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, (void *)c->env.cancel);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	if (body != NULL)
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	else if (strcmp(method, "POST") == 0)
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
	cc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
	curl_easy_cleanup(curl);
	curl_slist_free_all(h);
	if (cc != CURLE_OK) {
		snprintf(err, size, "%s %s on %s: %s", method, path, c->env.docker_socket,
		         errbuf[0] ? errbuf : curl_easy_strerror(cc));
		free(b.data);
		return DRV_EIO;
	}
	*out = b.data ? b.data : strdup("");
	return *out ? DRV_OK : DRV_ENOMEM;
}

/* The engine's error message from a JSON body, else the body. */
static void api_error(const char *what, long status, const char *body, char *err, size_t size)
{
	json_t *j = json_loads(body ? body : "", 0, NULL);
	const char *m = json_string_value(json_object_get(j, "message"));

	snprintf(err, size, "%s: HTTP %ld: %.300s", what, status, m ? m : (body ? body : ""));
	json_decref(j);
}

static void container_name(const struct driver_instance *in, char *out, size_t size)
{
	snprintf(out, size, "drover-%s", in->name);
	for (char *p = out; *p; p++)
		if (*p == '@')
			*p = '_';
}

/* "registry/repo@digest" for the engine. */
static int image_name(const struct driver_instance *in, char *out, size_t size, char *err,
                      size_t esize)
{
	struct drv_oci_ref ref;
	int rc = drv_oci_ref_parse(in->reference, &ref, err, esize);

	if (rc != DRV_OK)
		return rc;
	if (ref.layout_path != NULL)
		rc = (snprintf(err, esize, "oci-layout sources need the exec driver"), DRV_EINVAL);
	else
		snprintf(out, size, "%s/%s@%s", ref.registry, ref.repository, in->digest);
	drv_oci_ref_clear(&ref);
	return rc;
}

static int init(const struct driver_env *env, void **state)
{
	struct cstate *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return DRV_ENOMEM;
	c->env = *env;
	pthread_mutex_init(&c->lock, NULL);
	*state = c;
	return DRV_OK;
}

static void fini(void *state)
{
	struct cstate *c = state;

	if (c != NULL)
		pthread_mutex_destroy(&c->lock);
	free(c);
}

static void record_image(struct cstate *c, const char *image)
{
	char path[4200], *buf = NULL, *nb;
	size_t len = 0;

	pthread_mutex_lock(&c->lock);
	images_path(c, path, sizeof(path));
	drv_read_file(path, 1u << 20, &buf, &len);
	if (buf == NULL || strstr(buf, image) == NULL) {
		if (asprintf(&nb, "%s%s\n", buf ? buf : "", image) >= 0) {
			drv_write_atomic(path, nb, strlen(nb), 0640);
			free(nb);
		}
	}
	free(buf);
	pthread_mutex_unlock(&c->lock);
}

static bool digest_kept(const char *image, char *const *digests, size_t n)
{
	const char *at = strrchr(image, '@');

	for (size_t i = 0; at != NULL && i < n; i++)
		if (strcmp(at + 1, digests[i]) == 0)
			return true;
	return false;
}

static int call(struct cstate *c, const char *method, const char *path, const char *body,
                long timeout_s, long *status, char **out, char *err, size_t size);

static void gc(void *state, char *const *digests, size_t n)
{
	struct cstate *c = state;
	char path[4200], api[1400], err[256], *buf = NULL, *line, *save = NULL, *body;
	char *keep = NULL;
	size_t len = 0, klen = 0;
	long status;

	pthread_mutex_lock(&c->lock);
	images_path(c, path, sizeof(path));
	if (drv_read_file(path, 1u << 20, &buf, &len) != DRV_OK) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	keep = calloc(1, len + 1);
	for (line = strtok_r(buf, "\n", &save); keep && line; line = strtok_r(NULL, "\n", &save)) {
		char *esc = NULL;
		bool gone = false;
		if (!digest_kept(line, digests, n) && (esc = curl_escape(line, 0)) != NULL) {
			snprintf(api, sizeof(api), "/images/%s", esc);
			body = NULL;
			if (call(c, "DELETE", api, NULL, 60, &status, &body, err, sizeof(err)) ==
			            DRV_OK &&
			    (status == 200 || status == 404)) {
				gone = true;
				drv_info("container", "removed an unused image", "image=%s", line);
			}
			free(body);
			curl_free(esc);
		}
		if (!gone)
			klen += (size_t)sprintf(keep + klen, "%s\n", line);
	}
	if (keep != NULL)
		drv_write_atomic(path, keep, klen, 0640);
	free(keep);
	free(buf);
	pthread_mutex_unlock(&c->lock);
}

static int image_present(struct cstate *c, const char *image, char *err, size_t size)
{
	char path[1200], *body = NULL, *esc = curl_escape(image, 0);
	long status = 0;
	int rc;

	if (esc == NULL)
		return DRV_ENOMEM;
	snprintf(path, sizeof(path), "/images/%s/json", esc);
	curl_free(esc);
	rc = call(c, "GET", path, NULL, 30, &status, &body, err, size);
	if (rc == DRV_OK && status != 200)
		rc = (api_error(image, status, body, err, size), DRV_ENOENT);
	free(body);
	return rc;
}

/* The pull answer is a stream of JSON objects; an "error" in any fails it. */
static int pull_errors(const char *body, char *err, size_t size)
{
	const char *p = body;
	json_error_t je;

	while (p != NULL && *p != '\0') {
		json_t *j = json_loads(p, JSON_DISABLE_EOF_CHECK, &je);
		const char *e;
		if (j == NULL)
			break;
		e = json_string_value(json_object_get(j, "error"));
		if (e != NULL) {
			snprintf(err, size, "pull failed: %.400s", e);
			json_decref(j);
			return DRV_EIO;
		}
		json_decref(j);
		p += je.position;
		while (*p == '\n' || *p == '\r' || *p == ' ')
			p++;
	}
	return DRV_OK;
}

/* The pull's time: PULL_SECS, or what is left of the step's deadline. */
static long pull_secs(const struct driver_instance *in)
{
	int64_t left;

	if (in->deadline_ms <= 0)
		return PULL_SECS;
	left = (in->deadline_ms - drv_mono_ms() + 999) / 1000;
	return left < 1 ? 1 : left < PULL_SECS ? (long)left : PULL_SECS;
}

static int prepare(void *state, struct driver_instance *in, bool local_only, char **dir_out,
                   char *err, size_t size)
{
	struct cstate *c = state;
	char image[1200], path[1400], *body = NULL, *esc;
	long status = 0;
	int rc = image_name(in, image, sizeof(image), err, size);

	if (rc != DRV_OK)
		return rc;
	*dir_out = strdup("");
	if (*dir_out == NULL)
		return DRV_ENOMEM;
	if (local_only || image_present(c, image, err, size) == DRV_OK)
		return local_only ? image_present(c, image, err, size) : DRV_OK;
	esc = curl_escape(image, 0);
	if (esc == NULL)
		return DRV_ENOMEM;
	snprintf(path, sizeof(path), "/images/create?fromImage=%s", esc);
	curl_free(esc);
	rc = call(c, "POST", path, NULL, pull_secs(in), &status, &body, err, size);
	if (rc == DRV_OK && status != 200)
		rc = (api_error("pull", status, body, err, size), DRV_EIO);
	if (rc == DRV_OK)
		rc = pull_errors(body, err, size);
	if (rc == DRV_OK)
		rc = image_present(c, image, err, size);
	if (rc == DRV_OK)
		record_image(c, image);
	free(body);
	return rc;
}

/* Write the instruction's files under STATE/files/<instance>/ and return
 * the bind mounts for them. */
static int files_binds(struct cstate *c, const struct driver_instance *in, json_t *binds, char *err,
                       size_t size)
{
	char dir[4096], host[8400];
	int fd, rc = DRV_OK;

	if (in->spec->n_files == 0)
		return DRV_OK;
	snprintf(dir, sizeof(dir), "%s/files/%s", c->env.state_dir, in->name);
	fs_remove_path(dir);
	if (drv_mkdirs(dir, 0750) != DRV_OK)
		return DRV_ESYS;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return DRV_ESYS;
	for (size_t i = 0; rc == DRV_OK && i < in->spec->n_files; i++) {
		const Drover__File *f = in->spec->files[i];
		const char *p = f->path;
		while (*p == '/')
			p++;
		rc = unpack_write_file(fd, p, f->content.data, f->content.len,
		                       f->mode ? f->mode : 0644, err, size);
		snprintf(host, sizeof(host), "%s/%s:/%s:ro", dir, p, p);
		if (rc == DRV_OK)
			json_array_append_new(binds, json_string(host));
	}
	close(fd);
	return rc;
}

/* The plan's user, capabilities and keep_setid as the engine knows them:
 * User (a name resolves inside the image; none: the image's own user),
 * CapDrop ALL with CapAdd the listed ones (root without a list keeps the
 * engine's default set), and no-new-privileges unless keep_setid. */
static void set_privs(json_t *body, const Drover__ServiceSpec *s)
{
	json_t *hc = json_object_get(body, "HostConfig"), *add = json_array();
	bool root = s->user != NULL && (strcmp(s->user, "root") == 0 || strcmp(s->user, "0") == 0);
	char user[200];

	if (s->user != NULL && s->user[0] != '\0') {
		snprintf(user, sizeof(user), "%s%s%s", s->user,
		         s->group != NULL && s->group[0] != '\0' ? ":" : "",
		         s->group != NULL ? s->group : "");
		json_object_set_new(body, "User", json_string(user));
	}
	for (size_t i = 0; i < s->n_capabilities; i++)
		json_array_append_new(add, json_string(s->capabilities[i]));
	if (!root || s->n_capabilities > 0) {
		json_object_set_new(hc, "CapDrop", json_pack("[s]", "ALL"));
		json_object_set_new(hc, "CapAdd", add);
	} else {
		json_decref(add);
	}
	if (!s->keep_setid)
		json_object_set_new(hc, "SecurityOpt", json_pack("[s]", "no-new-privileges"));
}

static json_t *create_body(struct cstate *c, const struct driver_instance *in, const char *image,
                           char *err, size_t size, int *rc)
{
	const Drover__ServiceSpec *s = in->spec;
	json_t *env = json_array(), *binds = json_array(), *cmd = NULL, *ep = NULL;
	char kv[4200];

	for (size_t i = 0; i < s->n_env; i++) {
		snprintf(kv, sizeof(kv), "%s=%s", s->env[i]->key, s->env[i]->value);
		json_array_append_new(env, json_string(kv));
	}
	snprintf(kv, sizeof(kv), "DROVER_PORT=%u", s->port);
	json_array_append_new(env, json_string(kv));
	snprintf(kv, sizeof(kv), "DROVER_SERVICE=%s", s->name);
	json_array_append_new(env, json_string(kv));
	snprintf(kv, sizeof(kv), "DROVER_VERSION=%s", s->version);
	json_array_append_new(env, json_string(kv));
	if (s->n_command > 0) {
		ep = json_pack("[s]", s->command[0]);
		cmd = json_array();
		for (size_t i = 1; i < s->n_command; i++)
			json_array_append_new(cmd, json_string(s->command[i]));
	}
	*rc = files_binds(c, in, binds, err, size);
	json_t *b =
	        json_pack("{s:s, s:o, s:{s:s, s:s, s:s, s:s}, s:{s:s, s:b, s:o, s:{s:s, s:i}}}",
	                  "Image", image, "Env", env, "Labels", "drover.service", s->name,
	                  "drover.slot", in->slot, "drover.version", s->version, "drover.digest",
	                  in->digest, "HostConfig", "NetworkMode", "host", "Init", 1, "Binds",
	                  binds, "RestartPolicy", "Name", "on-failure", "MaximumRetryCount", 5);
	if (b != NULL)
		set_privs(b, s);
	if (b != NULL && ep != NULL) {
		json_object_set_new(b, "Entrypoint", ep);
		json_object_set_new(b, "Cmd", cmd);
	} else {
		json_decref(ep);
		json_decref(cmd);
	}
	return b;
}

static int remove_container(struct cstate *c, const char *name, char *err, size_t size)
{
	char path[512], *body = NULL;
	long status = 0;
	int rc;

	snprintf(path, sizeof(path), "/containers/%s?force=true", name);
	rc = call(c, "DELETE", path, NULL, 60, &status, &body, err, size);
	if (rc == DRV_OK && status != 204 && status != 200 && status != 404)
		rc = (api_error("remove", status, body, err, size), DRV_EIO);
	free(body);
	return rc;
}

static int stop_container(struct cstate *c, const char *name, uint32_t grace_ms, char *err,
                          size_t size)
{
	char path[512], *body = NULL;
	long status = 0, t = (long)(grace_ms + 999) / 1000;
	int rc;

	snprintf(path, sizeof(path), "/containers/%s/stop?t=%ld", name, t);
	rc = call(c, "POST", path, NULL, t + 30, &status, &body, err, size);
	if (rc == DRV_OK && status != 204 && status != 304 && status != 404)
		rc = (api_error("stop", status, body, err, size), DRV_EIO);
	free(body);
	return rc;
}

static int start(void *state, const struct driver_instance *in, char *err, size_t size)
{
	struct cstate *c = state;
	char name[200], image[1200], path[512], *body = NULL, *req = NULL;
	long status = 0;
	json_t *j;
	int rc = image_name(in, image, sizeof(image), err, size);

	if (rc != DRV_OK)
		return rc;
	container_name(in, name, sizeof(name));
	stop_container(c, name, in->spec->stop_grace_ms ? in->spec->stop_grace_ms : 10000, err,
	               size);
	remove_container(c, name, err, size);
	j = create_body(c, in, image, err, size, &rc);
	req = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (rc != DRV_OK || req == NULL) {
		free(req);
		return rc != DRV_OK ? rc : DRV_ENOMEM;
	}
	snprintf(path, sizeof(path), "/containers/create?name=%s", name);
	rc = call(c, "POST", path, req, 60, &status, &body, err, size);
	free(req);
	if (rc == DRV_OK && status != 201)
		rc = (api_error("create", status, body, err, size), DRV_EIO);
	free(body);
	body = NULL;
	snprintf(path, sizeof(path), "/containers/%s/start", name);
	if (rc == DRV_OK)
		rc = call(c, "POST", path, NULL, 60, &status, &body, err, size);
	if (rc == DRV_OK && status != 204 && status != 304)
		rc = (api_error("start", status, body, err, size), DRV_EIO);
	free(body);
	if (rc == DRV_OK)
		drv_info("container", "container started", "instance=%s container=%s image=%s",
		         in->name, name, image);
	return rc;
}

static int stop(void *state, const struct driver_instance *in, uint32_t grace_ms, char *err,
                size_t size)
{
	struct cstate *c = state;
	char name[200];
	int rc;

	container_name(in, name, sizeof(name));
	rc = stop_container(c, name, grace_ms, err, size);
	if (rc == DRV_OK)
		rc = remove_container(c, name, err, size);
	return rc;
}

static int status(void *state, const struct driver_instance *in, struct driver_status *out)
{
	struct cstate *c = state;
	struct driver_status r = {0};
	char name[200], path[512], err[256], *body = NULL;
	long st = 0;
	json_t *j, *s;

	container_name(in, name, sizeof(name));
	snprintf(path, sizeof(path), "/containers/%s/json", name);
	if (call(c, "GET", path, NULL, 10, &st, &body, err, sizeof(err)) != DRV_OK) {
		r.state = DRIVER_FAILED;
		snprintf(r.detail, sizeof(r.detail), "%s", err);
		*out = r;
		return DRV_OK;
	}
	j = json_loads(body, 0, NULL);
	s = json_object_get(j, "State");
	if (st == 404 || s == NULL) {
		r.state = DRIVER_STOPPED;
	} else if (json_is_true(json_object_get(s, "Running"))) {
		r.state = DRIVER_RUNNING;
		r.pid = (int)json_integer_value(json_object_get(s, "Pid"));
	} else if (json_is_true(json_object_get(s, "Restarting"))) {
		r.state = DRIVER_STARTING;
	} else {
		const char *status_s = json_string_value(json_object_get(s, "Status"));
		long long code = json_integer_value(json_object_get(s, "ExitCode"));
		/* Created but not started yet, or exited after the retries. */
		r.state = status_s && strcmp(status_s, "created") == 0 ? DRIVER_STARTING
		                                                       : DRIVER_FAILED;
		snprintf(r.detail, sizeof(r.detail), "container %s, exit code %lld",
		         status_s ? status_s : "?", code);
	}
	r.restarts = (unsigned)json_integer_value(json_object_get(j, "RestartCount"));
	json_decref(j);
	free(body);
	*out = r;
	return DRV_OK;
}

static int adopt(void *state, const struct driver_instance *in, char *err, size_t size)
{
	struct driver_status st;

	status(state, in, &st);
	if (st.state == DRIVER_RUNNING || st.state == DRIVER_STARTING)
		return DRV_OK; /* the engine kept it */
	drv_warn("container", "container not running after agent restart, starting it",
	         "instance=%s", in->name);
	return start(state, in, err, size);
}

const struct driver_ops driver_container_ops = {
        .name = "container",
        .init = init,
        .fini = fini,
        .prepare = prepare,
        .start = start,
        .stop = stop,
        .status = status,
        .adopt = adopt,
        .tick = NULL,
        .gc = gc,
};
