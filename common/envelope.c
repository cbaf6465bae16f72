/* envelope.c: signed envelopes over protobuf-c messages. */
#include "envelope.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

static const ProtobufCMessageDescriptor *const body_desc[] = {
        [DROVER__BODY_TYPE__BODY_HELLO] = &drover__hello__descriptor,
        [DROVER__BODY_TYPE__BODY_WELCOME] = &drover__welcome__descriptor,
        [DROVER__BODY_TYPE__BODY_POLL] = &drover__poll__descriptor,
        [DROVER__BODY_TYPE__BODY_INSTRUCTION] = &drover__instruction__descriptor,
        [DROVER__BODY_TYPE__BODY_REPORT] = &drover__report__descriptor,
        [DROVER__BODY_TYPE__BODY_ACK] = &drover__ack__descriptor,
        [DROVER__BODY_TYPE__BODY_REJECT] = &drover__reject__descriptor,
        [DROVER__BODY_TYPE__BODY_IDLE] = &drover__idle__descriptor,
};

bool drv_agent_id_valid(const char *id)
{
	size_t n = id ? strnlen(id, DRV_AGENT_ID_MAX + 1) : 0;

	if (n == 0 || n > DRV_AGENT_ID_MAX || id[0] == '.' || id[0] == '-' ||
	    strcmp(id, DRV_COORDINATOR_SENDER) == 0)
		return false;
	return strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

const ProtobufCMessageDescriptor *drv_body_descriptor(Drover__BodyType type)
{
	if ((int)type <= 0 || (size_t)type >= sizeof(body_desc) / sizeof(body_desc[0]))
		return NULL;
	return body_desc[type];
}

/* "drover/1/<type>/<sender>\n": binds the signature to the protocol, the body
 * type and the claimed sender, so none of them can be swapped afterwards. An
 * HA leader's epoch is bound the same way ("drover/1/<type>/<sender>/<epoch>\n");
 * epoch 0 keeps the prefix of senders that know no epochs, so both ends of
 * a mixed-version link verify each other. */
#define PREFIX_MAX (DRV_SENDER_MAX + 56)

static size_t domain_prefix(Drover__BodyType type, const char *sender, uint64_t epoch,
                            char buf[PREFIX_MAX])
{
	int n = epoch == 0 ? snprintf(buf, PREFIX_MAX, "drover/%d/%d/%s\n", DRV_PROTO_MAJOR,
	                              (int)type, sender ? sender : "")
	                   : snprintf(buf, PREFIX_MAX, "drover/%d/%d/%s/%" PRIu64 "\n",
	                              DRV_PROTO_MAJOR, (int)type, sender ? sender : "", epoch);
	return n < PREFIX_MAX ? (size_t)n : PREFIX_MAX - 1;
}

/* Sign body_buf and pack the envelope around it. */
static int wrap(const struct drv_keypair *kp, const char *sender, Drover__BodyType type,
                uint64_t epoch, bool self_key, const uint8_t *body_buf, size_t body_len,
                uint8_t **out, size_t *out_len)
{
	Drover__Envelope env = DROVER__ENVELOPE__INIT;
	uint8_t sig[DRV_SIG_LEN], *buf;
	char prefix[PREFIX_MAX];
	size_t len;
	int rc = drv_sign(kp, prefix, domain_prefix(type, sender, epoch, prefix), body_buf,
	                  body_len, sig);

	if (rc != DRV_OK)
		return rc;
	env.version = DRV_PROTO_MAJOR;
	env.type = type;
	env.body.data = (uint8_t *)body_buf;
	env.body.len = body_len;
	env.signature.data = sig;
	env.signature.len = sizeof(sig);
	env.key_id = (char *)kp->id;
	env.sender = (char *)sender;
	env.epoch = epoch;
	if (self_key) {
		env.public_key.data = (uint8_t *)kp->pk;
		env.public_key.len = DRV_PK_LEN;
	}
	len = drover__envelope__get_packed_size(&env);
	buf = malloc(len);
	if (buf == NULL)
		return DRV_ENOMEM;
	drover__envelope__pack(&env, buf);
	*out = buf;
	*out_len = len;
	return DRV_OK;
}

int drv_env_seal_epoch(const struct drv_keypair *kp, const char *sender, Drover__BodyType type,
                       const ProtobufCMessage *body, uint64_t epoch, bool self_key, uint8_t **out,
                       size_t *out_len)
{
	uint8_t *body_buf;
	size_t body_len;
	int rc;

	if (drv_body_descriptor(type) != body->descriptor || sender == NULL ||
	    strlen(sender) > DRV_SENDER_MAX)
		return DRV_EINVAL;
	body_len = protobuf_c_message_get_packed_size(body);
	if (body_len > DRV_ENV_MAX - 256)
		return DRV_ETOOBIG;
	body_buf = malloc(body_len ? body_len : 1);
	if (body_buf == NULL)
		return DRV_ENOMEM;
	protobuf_c_message_pack(body, body_buf);
	rc = wrap(kp, sender, type, epoch, self_key, body_buf, body_len, out, out_len);
	free(body_buf);
	return rc;
}

int drv_env_seal(const struct drv_keypair *kp, const char *sender, Drover__BodyType type,
                 const ProtobufCMessage *body, bool self_key, uint8_t **out, size_t *out_len)
{
	return drv_env_seal_epoch(kp, sender, type, body, 0, self_key, out, out_len);
}

int drv_env_reseal(const struct drv_keypair *kp, const uint8_t *env_buf, size_t len, uint64_t epoch,
                   uint8_t **out, size_t *out_len)
{
	Drover__Envelope *env;
	int rc = drv_env_parse(env_buf, len, DRV_ENV_MAX, &env);

	if (rc != DRV_OK)
		return rc;
	if (env->sender == NULL || env->public_key.len != 0)
		rc = DRV_EINVAL; /* a self-signed Hello is never re-signed */
	else
		rc = wrap(kp, env->sender, env->type, epoch, false, env->body.data, env->body.len,
		          out, out_len);
	drv_env_free(env);
	return rc;
}

int drv_env_parse(const uint8_t *buf, size_t len, size_t max_len, Drover__Envelope **out)
{
	Drover__Envelope *env;

	if (len > max_len || len > DRV_ENV_MAX)
		return DRV_ETOOBIG;
	if (buf == NULL || len == 0)
		return DRV_EDECODE;
	env = drover__envelope__unpack(NULL, len, buf);
	if (env == NULL)
		return DRV_EDECODE;
	if (env->version != DRV_PROTO_MAJOR) {
		drover__envelope__free_unpacked(env, NULL);
		return DRV_EVERSION;
	}
	if (env->signature.len != DRV_SIG_LEN || drv_body_descriptor(env->type) == NULL ||
	    (env->sender != NULL && strlen(env->sender) > DRV_SENDER_MAX)) {
		drover__envelope__free_unpacked(env, NULL);
		return DRV_EDECODE;
	}
	*out = env;
	return DRV_OK;
}

int drv_env_verify(const Drover__Envelope *env, const struct drv_pubkey *key)
{
	char prefix[PREFIX_MAX];

	if (env->key_id == NULL || strcmp(env->key_id, key->id) != 0)
		return DRV_EUNKNOWNKEY;
	return drv_verify(key->pk, prefix,
	                  domain_prefix(env->type, env->sender, env->epoch, prefix), env->body.data,
	                  env->body.len, env->signature.data);
}

int drv_env_verify_ring(const Drover__Envelope *env, const struct drv_keyring *ring)
{
	const struct drv_pubkey *key = drv_keyring_find(ring, env->key_id ? env->key_id : "");

	return key == NULL ? DRV_EUNKNOWNKEY : drv_env_verify(env, key);
}

int drv_env_verify_self(const Drover__Envelope *env, struct drv_pubkey *out_key)
{
	struct drv_pubkey key;
	int rc;

	rc = drv_pubkey_from_raw(env->public_key.data, env->public_key.len, &key);
	if (rc != DRV_OK)
		return DRV_EDECODE;
	rc = drv_env_verify(env, &key);
	if (rc == DRV_OK)
		*out_key = key;
	return rc;
}

int drv_env_decode(const Drover__Envelope *env, Drover__BodyType want, ProtobufCMessage **out)
{
	const ProtobufCMessageDescriptor *desc = drv_body_descriptor(want);
	ProtobufCMessage *msg;

	if (desc == NULL || env->type != want)
		return DRV_EDECODE;
	msg = protobuf_c_message_unpack(desc, NULL, env->body.len, env->body.data);
	if (msg == NULL)
		return DRV_EDECODE;
	*out = msg;
	return DRV_OK;
}

int drv_env_open(const uint8_t *buf, size_t len, const struct drv_keyring *ring,
                 Drover__BodyType want, ProtobufCMessage **out)
{
	Drover__Envelope *env;
	int rc;

	rc = drv_env_parse(buf, len, DRV_ENV_MAX, &env);
	if (rc != DRV_OK)
		return rc;
	rc = drv_env_verify_ring(env, ring);
	if (rc == DRV_OK)
		rc = drv_env_decode(env, want, out);
	drv_env_free(env);
	return rc;
}

void drv_env_free(Drover__Envelope *env)
{
	if (env != NULL)
		drover__envelope__free_unpacked(env, NULL);
}

void drv_msg_free(ProtobufCMessage *msg)
{
	if (msg != NULL)
		protobuf_c_message_free_unpacked(msg, NULL);
}

Drover__RejectReason drv_reject_reason(int err)
{
	switch (err) {
	case DRV_EBADSIG: return DROVER__REJECT_REASON__REJECT_BAD_SIGNATURE;
	case DRV_EUNKNOWNKEY: return DROVER__REJECT_REASON__REJECT_UNKNOWN_KEY;
	case DRV_EREPLAY: return DROVER__REJECT_REASON__REJECT_REPLAY;
	case DRV_EEXPIRED: return DROVER__REJECT_REASON__REJECT_EXPIRED;
	case DRV_EFUTURE: return DROVER__REJECT_REASON__REJECT_FUTURE;
	case DRV_ETARGET: return DROVER__REJECT_REASON__REJECT_WRONG_TARGET;
	case DRV_EDECODE: return DROVER__REJECT_REASON__REJECT_MALFORMED;
	case DRV_ETOOBIG: return DROVER__REJECT_REASON__REJECT_TOO_LARGE;
	case DRV_EVERSION: return DROVER__REJECT_REASON__REJECT_VERSION;
	case DRV_EPERM: return DROVER__REJECT_REASON__REJECT_NOT_ACCEPTED;
	case DRV_ENODIGEST: return DROVER__REJECT_REASON__REJECT_NO_DIGEST;
	case DRV_EEXIST: return DROVER__REJECT_REASON__REJECT_ID_TAKEN;
	case DRV_ENOTLEADER: return DROVER__REJECT_REASON__REJECT_NOT_LEADER;
	case DRV_ESTALE: return DROVER__REJECT_REASON__REJECT_STALE_EPOCH;
	default: return DROVER__REJECT_REASON__REJECT_INTERNAL;
	}
}
