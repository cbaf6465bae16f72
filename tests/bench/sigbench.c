/*
 * sigbench.c: signatures signed and verified per second, drover's way
 * (common/keys.h and the envelope of common/envelope.h) against raw
 * libsodium over the same bytes, in the same run.
 *
 *   sigbench [--seconds S] [--json FILE]
 *
 * The machine is shared and noisy: the cases run interleaved, in ROUNDS
 * slices of S/ROUNDS seconds each, and each case's best slice counts (the
 * rate it reaches when nothing else is in the way). Time is this thread's
 * CPU time, so a slice that was descheduled is not counted as slow: the
 * rates are operations per CPU-second of one core.
 * The message is a typical START instruction (a service spec with an image
 * pinned by digest, a command, environment and an HTTP health check). The
 * raw cases sign and verify exactly what drover signs: the domain prefix
 * followed by the body, already joined.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "atomicfile.h"
#include "envelope.h"
#include "err.h"
#include "keys.h"

struct fixture {
	struct drv_keypair kp;
	struct drv_keyring ring;
	uint8_t *env, *signed_bytes; /* the sealed envelope; prefix || body */
	size_t env_len, signed_len;
	const uint8_t *body;
	size_t body_len;
	char prefix[256];
	size_t prefix_len;
	uint8_t sig[DRV_SIG_LEN];
	Drover__Instruction ins;
	Drover__ServiceSpec svc;
	Drover__ImageRef img;
	Drover__HealthCheck hc;
	Drover__KeyValue kv[2], *kvp[2];
	char *cmd[5];
};

#define ROUNDS 10

typedef int (*bench_fn)(struct fixture *fx);

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Operations per second of fn over about `seconds`. */
static double rate(bench_fn fn, struct fixture *fx, double seconds)
{
	double t0 = now_s(), t;
	long n = 0;

	do {
		for (int i = 0; i < 16; i++) {
			if (fn(fx) != DRV_OK) {
				fprintf(stderr, "sigbench: a case failed\n");
				exit(1);
			}
		}
		n += 16;
		t = now_s() - t0;
	} while (t < seconds);
	return (double)n / t;
}

/* ---- the cases ---- */

static int raw_sign(struct fixture *fx)
{
	crypto_sign_detached(fx->sig, NULL, fx->signed_bytes, fx->signed_len, fx->kp.sk);
	return DRV_OK;
}

static int raw_verify(struct fixture *fx)
{
	return crypto_sign_verify_detached(fx->sig, fx->signed_bytes, fx->signed_len, fx->kp.pk) ==
	                       0
	               ? DRV_OK
	               : DRV_EBADSIG;
}

static int keys_sign(struct fixture *fx)
{
	return drv_sign(&fx->kp, fx->prefix, fx->prefix_len, fx->body, fx->body_len, fx->sig);
}

static int keys_verify(struct fixture *fx)
{
	return drv_verify(fx->kp.pk, fx->prefix, fx->prefix_len, fx->body, fx->body_len, fx->sig);
}

static int env_seal(struct fixture *fx)
{
	uint8_t *out;
	size_t len;
	int rc = drv_env_seal(&fx->kp, DRV_COORDINATOR_SENDER, DROVER__BODY_TYPE__BODY_INSTRUCTION,
	                      &fx->ins.base, false, &out, &len);

	if (rc == DRV_OK)
		free(out);
	return rc;
}

static int env_open(struct fixture *fx)
{
	ProtobufCMessage *m;
	int rc = drv_env_open(fx->env, fx->env_len, &fx->ring, DROVER__BODY_TYPE__BODY_INSTRUCTION,
	                      &m);

	if (rc == DRV_OK)
		drv_msg_free(m);
	return rc;
}

/* ---- the fixture ---- */

static void build_instruction(struct fixture *fx)
{
	static char digest[] = "sha256:0123456789abcdef0123456789abcdef"
	                       "0123456789abcdef0123456789abcdef";

	drover__instruction__init(&fx->ins);
	drover__service_spec__init(&fx->svc);
	drover__image_ref__init(&fx->img);
	drover__health_check__init(&fx->hc);
	fx->img.reference = "10.213.0.1:5000/berrys/api-gateway:2.4.0";
	fx->img.digest = digest;
	fx->cmd[0] = "/bin/berry-svc";
	fx->cmd[1] = "--name";
	fx->cmd[2] = "api-gateway";
	fx->cmd[3] = "--port";
	fx->cmd[4] = "8080";
	for (int i = 0; i < 2; i++) {
		drover__key_value__init(&fx->kv[i]);
		fx->kvp[i] = &fx->kv[i];
	}
	fx->kv[0].key = "LOG_LEVEL";
	fx->kv[0].value = "info";
	fx->kv[1].key = "REGION";
	fx->kv[1].value = "eu-west";
	fx->hc.kind = DROVER__HEALTH_KIND__HEALTH_HTTP;
	fx->hc.port = 8080;
	fx->hc.path = "/health";
	fx->hc.interval_ms = 1000;
	fx->hc.healthy_threshold = 2;
	fx->svc.name = "api-gateway";
	fx->svc.version = "2.4.0";
	fx->svc.image = &fx->img;
	fx->svc.command = fx->cmd;
	fx->svc.n_command = 5;
	fx->svc.env = fx->kvp;
	fx->svc.n_env = 2;
	fx->svc.health = &fx->hc;
	fx->svc.port = 8080;
	fx->ins.target_agent = "ui-00042";
	fx->ins.deployment_id = "dep-17";
	fx->ins.step_id = "dep-17/ui/api-gateway/ui-00042/start";
	fx->ins.seq = 1234;
	fx->ins.issued_at_ms = 1764137400123;
	fx->ins.expires_at_ms = 1764138000123;
	fx->ins.action = DROVER__ACTION__ACTION_START;
	fx->ins.service = &fx->svc;
}

static int setup(struct fixture *fx)
{
	Drover__Envelope *env;
	struct drv_pubkey pub;

	memset(fx, 0, sizeof(*fx));
	build_instruction(fx);
	if (drv_keypair_generate(&fx->kp) != DRV_OK ||
	    drv_env_seal(&fx->kp, DRV_COORDINATOR_SENDER, DROVER__BODY_TYPE__BODY_INSTRUCTION,
	                 &fx->ins.base, false, &fx->env, &fx->env_len) != DRV_OK ||
	    drv_env_parse(fx->env, fx->env_len, DRV_ENV_MAX, &env) != DRV_OK)
		return DRV_EINVAL;
	drv_keyring_init(&fx->ring);
	memcpy(pub.pk, fx->kp.pk, DRV_PK_LEN);
	memcpy(pub.id, fx->kp.id, sizeof(pub.id));
	drv_keyring_add(&fx->ring, &pub);
	/* the exact bytes drover signs: "drover/1/<type>/<sender>\n" || body */
	fx->prefix_len = (size_t)snprintf(fx->prefix, sizeof(fx->prefix), "drover/%d/%d/%s\n",
	                                  DRV_PROTO_MAJOR, (int)DROVER__BODY_TYPE__BODY_INSTRUCTION,
	                                  DRV_COORDINATOR_SENDER);
	fx->body_len = env->body.len;
	fx->signed_len = fx->prefix_len + fx->body_len;
	fx->signed_bytes = malloc(fx->signed_len);
	if (fx->signed_bytes == NULL)
		return DRV_ENOMEM;
	memcpy(fx->signed_bytes, fx->prefix, fx->prefix_len);
	memcpy(fx->signed_bytes + fx->prefix_len, env->body.data, fx->body_len);
	fx->body = fx->signed_bytes + fx->prefix_len;
	memcpy(fx->sig, env->signature.data, DRV_SIG_LEN);
	drv_env_free(env);
	/* the prefix must be drover's: the real signature verifies over it */
	return raw_verify(fx);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name, *baseline;
		bench_fn fn;
	} cases[] = {
	        {"libsodium crypto_sign_detached", NULL, raw_sign},
	        {"drv_sign (keys.h)", "libsodium crypto_sign_detached", keys_sign},
	        {"drv_env_seal (pack + sign + wrap)", "libsodium crypto_sign_detached", env_seal},
	        {"libsodium crypto_sign_verify_detached", NULL, raw_verify},
	        {"drv_verify (keys.h)", "libsodium crypto_sign_verify_detached", keys_verify},
	        {"drv_env_open (parse + verify + decode)", "libsodium crypto_sign_verify_detached",
	         env_open},
	};
	double seconds = 1.0, r[6] = {0};
	const char *json_path = NULL;
	struct fixture fx;
	json_t *out = json_object(), *arr = json_array();

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--seconds") == 0)
			seconds = atof(argv[i + 1]);
		else if (strcmp(argv[i], "--json") == 0)
			json_path = argv[i + 1];
	}
	if (argc % 2 == 0 || seconds <= 0) {
		fprintf(stderr, "usage: sigbench [--seconds S] [--json FILE]\n");
		return 2;
	}
	if (drv_crypto_init() != DRV_OK || setup(&fx) != DRV_OK) {
		fprintf(stderr, "sigbench: setup failed\n");
		return 1;
	}
	printf("sigbench: Ed25519 over a %zu-byte START instruction (%zu-byte envelope)\n",
	       fx.signed_len, fx.env_len);
	for (int round = 0; round < ROUNDS; round++) {
		for (int i = 0; i < 6; i++) {
			double x = rate(cases[i].fn, &fx, seconds / ROUNDS);
			r[i] = x > r[i] ? x : r[i];
		}
	}
	for (int i = 0; i < 6; i++) {
		double base = 0;
		for (int j = 0; cases[i].baseline != NULL && j < i; j++)
			if (strcmp(cases[j].name, cases[i].baseline) == 0)
				base = r[j];
		printf("  %-42s %10.0f /s", cases[i].name, r[i]);
		if (base > 0)
			printf("   %.3f x raw", r[i] / base);
		printf("\n");
		json_array_append_new(arr, json_pack("{s:s, s:f, s:f}", "case", cases[i].name,
		                                     "per_second", r[i], "ratio_to_raw",
		                                     base > 0 ? r[i] / base : 1.0));
	}
	json_object_set_new(out, "signed_bytes", json_integer((json_int_t)fx.signed_len));
	json_object_set_new(out, "cases", arr);
	if (json_path != NULL) {
		char *text = json_dumps(out, JSON_INDENT(2));
		if (text == NULL || drv_write_atomic(json_path, text, strlen(text), 0644) != DRV_OK)
			return 1;
		free(text);
	}
	json_decref(out);
	free(fx.env);
	free(fx.signed_bytes);
	drv_keypair_wipe(&fx.kp);
	return 0;
}
