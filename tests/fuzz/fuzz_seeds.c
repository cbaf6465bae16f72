/*
 * fuzz_seeds.c: writes a seed corpus of valid, signed envelopes of every
 * body type into the directory given, using the fuzz targets' fixed key.
 */
#include <stdio.h>
#include <stdlib.h>

#include "envelope.h"
#include "err.h"
#include "fuzz_keys.h"

static int put_epoch(const char *dir, const char *name, const struct drv_keypair *kp,
                     Drover__BodyType type, const ProtobufCMessage *body, bool self_key,
                     uint64_t epoch)
{
	char path[512];
	uint8_t *buf;
	size_t len;
	FILE *f;

	if (drv_env_seal_epoch(kp, "seed-agent", type, body, epoch, self_key, &buf, &len) != DRV_OK)
		return 1;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(buf, 1, len, f) != len) {
		free(buf);
		return 1;
	}
	fclose(f);
	free(buf);
	return 0;
}

static int put(const char *dir, const char *name, const struct drv_keypair *kp,
               Drover__BodyType type, const ProtobufCMessage *body, bool self_key)
{
	return put_epoch(dir, name, kp, type, body, self_key, 0);
}

int main(int argc, char **argv)
{
	struct drv_keypair kp;
	Drover__Hello hello = DROVER__HELLO__INIT;
	Drover__KeyValue label = DROVER__KEY_VALUE__INIT, *labels[] = {&label};
	Drover__Poll poll = DROVER__POLL__INIT;
	Drover__Instruction ins = DROVER__INSTRUCTION__INIT;
	Drover__ServiceSpec spec = DROVER__SERVICE_SPEC__INIT;
	Drover__ImageRef image = DROVER__IMAGE_REF__INIT;
	Drover__HealthCheck health = DROVER__HEALTH_CHECK__INIT;
	Drover__Report report = DROVER__REPORT__INIT;
	Drover__Ack ack = DROVER__ACK__INIT;
	Drover__Reject reject = DROVER__REJECT__INIT;
	char *cmd[] = {"/bin/berry-svc", "--port", "8080"};
	int bad = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: fuzz_seeds DIR\n");
		return 2;
	}
	drv_crypto_init();
	fuzz_keypair(&kp);
	label.key = "tier";
	label.value = "core";
	hello.agent_id = "seed-agent";
	hello.public_key.data = kp.pk;
	hello.public_key.len = DRV_PK_LEN;
	hello.n_labels = 1;
	hello.labels = labels;
	hello.proto_major = 1;
	bad |= put(argv[1], "hello", &kp, DROVER__BODY_TYPE__BODY_HELLO, &hello.base, true);
	poll.agent_id = "seed-agent";
	poll.applied_seq = 3;
	bad |= put(argv[1], "poll", &kp, DROVER__BODY_TYPE__BODY_POLL, &poll.base, false);
	image.reference = "127.0.0.1:5000/berrys/api-gateway:2.4.0";
	image.digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
	health.kind = DROVER__HEALTH_KIND__HEALTH_HTTP;
	health.port = 8080;
	health.path = "/health";
	spec.name = "api-gateway";
	spec.image = &image;
	spec.n_command = 3;
	spec.command = cmd;
	spec.health = &health;
	ins.target_agent = "seed-agent";
	ins.deployment_id = "d-1";
	ins.step_id = "d-1/ui/api-gateway/start/seed-agent";
	ins.seq = 4;
	ins.issued_at_ms = 1764137400000;
	ins.expires_at_ms = 1764137460000;
	ins.action = DROVER__ACTION__ACTION_START;
	ins.service = &spec;
	bad |= put(argv[1], "instruction", &kp, DROVER__BODY_TYPE__BODY_INSTRUCTION, &ins.base,
	           false);
	/* an HA leader's instruction: the epoch is signed with the body */
	bad |= put_epoch(argv[1], "instruction-epoch", &kp, DROVER__BODY_TYPE__BODY_INSTRUCTION,
	                 &ins.base, false, 7);
	report.agent_id = "seed-agent";
	report.report_seq = 9;
	report.step_id = ins.step_id;
	report.result = DROVER__STEP_RESULT__STEP_SUCCEEDED;
	bad |= put(argv[1], "report", &kp, DROVER__BODY_TYPE__BODY_REPORT, &report.base, false);
	ack.seq = 4;
	bad |= put(argv[1], "ack", &kp, DROVER__BODY_TYPE__BODY_ACK, &ack.base, false);
	reject.reason = DROVER__REJECT_REASON__REJECT_REPLAY;
	reject.detail = "seq 4 already applied";
	bad |= put(argv[1], "reject", &kp, DROVER__BODY_TYPE__BODY_REJECT, &reject.base, false);
	return bad;
}
