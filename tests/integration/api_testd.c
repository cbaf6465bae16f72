/*
 * api_testd.c: a small real server for the HTTP layer's integration tests,
 * until droverd serves the API itself. It runs the real framework
 * (http_server, tokens, audit, events, metrics) on a real SQLite database
 * and adds a few test routes:
 *
 *   POST /v1/test/echo        (deployer) strict body {name!, count, tags}: echoes it
 *   POST /v1/test/publish     (deployer) {kind!, deployment_id, agent_id, data}: publish
 *   GET  /v1/test/items/{id}  (viewer)   {"id": id}
 *   DELETE /v1/test/items/{id} (admin)   {"deleted": id}
 *
 * and droverd's POST /v1/alerts (alerts_api.c) with no deployment engine:
 * its caps and checks answer as in droverd, a valid payload gets 503.
 *
 * usage: api_testd --db PATH [--listen HOST:PORT] [--port-file FILE]
 *                  [--max-body N] [--max-streams N] [--keepalive-ms N]
 * Runs until SIGTERM or SIGINT; writes the bound port to FILE once listening.
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts_api.h"
#include "atomicfile.h"
#include "audit_api.h"
#include "sqldb.h"
#include "err.h"
#include "events_api.h"
#include "http_server.h"
#include "log.h"
#include "metrics_api.h"
#include "schema.h"

static int echo(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	static const struct drv_json_field fields[] = {
	        {.name = "name", .type = DRV_J_STRING, .required = true, .max = 64},
	        {.name = "count", .type = DRV_J_INT},
	        {.name = "tags", .type = DRV_J_ARRAY, .max = 8},
	};
	json_t *body;

	if (drv_http_body_json(req, resp, fields, 3, &body) != DRV_OK)
		return DRV_OK;
	drv_http_audit_note(req, "name=%s", json_string_value(json_object_get(body, "name")));
	return drv_http_json(resp, 200, body);
}

static int publish(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	static const struct drv_json_field fields[] = {
	        {.name = "kind", .type = DRV_J_STRING, .required = true},
	        {.name = "deployment_id", .type = DRV_J_STRING},
	        {.name = "agent_id", .type = DRV_J_STRING},
	        {.name = "data", .type = DRV_J_OBJECT},
	};
	json_t *body;
	int64_t id;
	int rc;

	if (drv_http_body_json(req, resp, fields, 4, &body) != DRV_OK)
		return DRV_OK;
	rc = drv_events_publish(ctx, json_string_value(json_object_get(body, "kind")),
	                        json_string_value(json_object_get(body, "deployment_id")),
	                        json_string_value(json_object_get(body, "agent_id")),
	                        json_object_get(body, "data"), &id);
	json_decref(body);
	if (rc != DRV_OK)
		return rc;
	return drv_http_json(resp, 201, json_pack("{s:I}", "id", (json_int_t)id));
}

static int item_get(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	return drv_http_json(resp, 200, json_pack("{s:s}", "id", drv_http_param(req, "id")));
}

static int item_delete(struct drv_http_req *req, struct drv_http_resp *resp, void *ctx)
{
	return drv_http_json(resp, 200, json_pack("{s:s}", "deleted", drv_http_param(req, "id")));
}

static const struct drv_http_route test_routes[] = {
        {.method = "POST",
         .pattern = "/v1/test/echo",
         .min_role = DRV_ROLE_DEPLOYER,
         .handler = echo},
        {.method = "POST",
         .pattern = "/v1/test/publish",
         .min_role = DRV_ROLE_DEPLOYER,
         .handler = publish},
        {.method = "GET",
         .pattern = "/v1/test/items/{id}",
         .min_role = DRV_ROLE_VIEWER,
         .handler = item_get},
        {.method = "DELETE",
         .pattern = "/v1/test/items/{id}",
         .min_role = DRV_ROLE_ADMIN,
         .handler = item_delete},
};

struct opts {
	const char *db, *listen, *port_file;
	long max_body, max_streams, keepalive_ms;
};

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
	        {"db", required_argument, NULL, 'd'},
	        {"listen", required_argument, NULL, 'l'},
	        {"port-file", required_argument, NULL, 'p'},
	        {"max-body", required_argument, NULL, 'b'},
	        {"max-streams", required_argument, NULL, 's'},
	        {"keepalive-ms", required_argument, NULL, 'k'},
	        {NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': o->db = optarg; break;
		case 'l': o->listen = optarg; break;
		case 'p': o->port_file = optarg; break;
		case 'b': o->max_body = atol(optarg); break;
		case 's': o->max_streams = atol(optarg); break;
		case 'k': o->keepalive_ms = atol(optarg); break;
		default: return DRV_EINVAL;
		}
	}
	return o->db ? DRV_OK : DRV_EINVAL;
}

static int write_port(const char *path, unsigned port)
{
	char text[16];

	snprintf(text, sizeof(text), "%u\n", port);
	return drv_write_atomic(path, text, strlen(text), 0644);
}

static struct deploy_engine *const no_engine = NULL;

static int serve(const struct opts *o, struct drv_sql *api_db, struct drv_sql *ev_db)
{
	struct drv_http_config hc = {.listen = o->listen ? o->listen : "127.0.0.1:0",
	                             .db = api_db,
	                             .max_body = (size_t)o->max_body,
	                             .max_streams = (unsigned)o->max_streams};
	struct drv_http_server *srv = NULL;
	struct drv_events *ev = NULL;
	sigset_t set;
	int sig, rc;

	rc = drv_events_new(ev_db, (int)o->keepalive_ms, &ev);
	if (rc == DRV_OK)
		rc = drv_http_server_new(&hc, &srv);
	if (rc == DRV_OK)
		rc = drv_events_add_routes(srv, ev);
	if (rc == DRV_OK)
		rc = drv_audit_add_routes(srv, api_db);
	if (rc == DRV_OK)
		rc = drv_metrics_add_routes(srv, drv_metrics_global());
	if (rc == DRV_OK)
		rc = drv_http_add_routes(srv, test_routes, 4, ev);
	if (rc == DRV_OK)
		rc = alerts_api_add_routes(srv, &no_engine);
	if (rc == DRV_OK)
		rc = drv_http_server_start(srv);
	if (rc == DRV_OK && o->port_file)
		rc = write_port(o->port_file, drv_http_server_port(srv));
	if (rc == DRV_OK) {
		sigemptyset(&set);
		sigaddset(&set, SIGTERM);
		sigaddset(&set, SIGINT);
		sigwait(&set, &sig);
		drv_info("testd", "stopping", "signal=%d", sig);
	}
	drv_http_server_free(srv);
	drv_events_free(ev);
	return rc;
}

int main(int argc, char **argv)
{
	struct opts o = {0};
	struct drv_sql *api_db = NULL, *ev_db = NULL;
	sigset_t set;
	size_t n;
	const struct drv_sql_migration *mig = drv_schema_migrations(&n);
	int rc;

	if (parse(argc, argv, &o) != DRV_OK) {
		fprintf(stderr, "usage: api_testd --db PATH [--listen HOST:PORT] [--port-file F] "
		                "[--max-body N] [--max-streams N] [--keepalive-ms N]\n");
		return 2;
	}
	/* Block the stop signals before any thread starts, so sigwait gets them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	drv_log_set_level(DRV_LOG_DEBUG);
	rc = drv_sql_open(o.db, mig, n, &api_db);
	if (rc == DRV_OK)
		rc = drv_sql_open(o.db, mig, n, &ev_db);
	if (rc == DRV_OK)
		rc = serve(&o, api_db, ev_db);
	drv_sql_close(ev_db);
	drv_sql_close(api_db);
	return rc == DRV_OK ? 0 : 1;
}
