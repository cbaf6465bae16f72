/*
 * envelope.h: sealing and opening signed envelopes (see proto/drover.proto).
 *
 * Opening is done in order, and nothing of the body is decoded before its
 * signature verified: size cap, outer decode, version, signer key, signature,
 * then the body as the expected type.
 *
 * Ownership: every Drover__Envelope and body message returned here is owned
 * by the caller and freed with drv_env_free() / drv_msg_free().
 */
#ifndef DRV_ENVELOPE_H
#define DRV_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drover.pb-c.h"
#include "keys.h"

#define DRV_PROTO_MAJOR        1
#define DRV_ENV_MAX            (1u << 20)  /* cap on any envelope */
#define DRV_ENV_HELLO_MAX      (64u << 10) /* cap before the sender is known */
#define DRV_COORDINATOR_SENDER "coordinator"
#define DRV_SENDER_MAX         128 /* agent ids are shorter */
#define DRV_AGENT_ID_MAX       64

/* An agent id: 1..64 of [A-Za-z0-9._-], not starting with '.' or '-', and
 * never "coordinator". */
bool drv_agent_id_valid(const char *id);

/* Serialize body, sign it, wrap it; *out is malloc'd, the caller frees it.
 * With self_key the public key travels in the envelope (Hello only). */
int drv_env_seal(const struct drv_keypair *kp, const char *sender, Drover__BodyType type,
                 const ProtobufCMessage *body, bool self_key, uint8_t **out, size_t *out_len);

/* The same, for an HA leader: epoch travels in the envelope and is signed
 * with the body (0: no epoch, the same bytes as drv_env_seal). */
int drv_env_seal_epoch(const struct drv_keypair *kp, const char *sender, Drover__BodyType type,
                       const ProtobufCMessage *body, uint64_t epoch, bool self_key, uint8_t **out,
                       size_t *out_len);
/* Sign an envelope sealed earlier (env_buf, e.g. a stored instruction) again
 * under another epoch, body unchanged; its old signature is not checked
 * (it was ours). *out is malloc'd. */
int drv_env_reseal(const struct drv_keypair *kp, const uint8_t *env_buf, size_t len, uint64_t epoch,
                   uint8_t **out, size_t *out_len);

/* Size cap (max_len), outer decode and version check. No signature check. */
int drv_env_parse(const uint8_t *buf, size_t len, size_t max_len, Drover__Envelope **out);
/* Verify with one known public key (its id must match key_id). */
int drv_env_verify(const Drover__Envelope *env, const struct drv_pubkey *key);
/* Verify against a key ring; DRV_EUNKNOWNKEY if key_id is not in it. */
int drv_env_verify_ring(const Drover__Envelope *env, const struct drv_keyring *ring);
/* Verify a self-signed envelope (Hello) with the key it carries. */
int drv_env_verify_self(const Drover__Envelope *env, struct drv_pubkey *out_key);
/* Decode the body as `want`; DRV_EDECODE if the type differs or bytes are bad. */
int drv_env_decode(const Drover__Envelope *env, Drover__BodyType want, ProtobufCMessage **out);

/* parse + verify_ring + decode in one call. */
int drv_env_open(const uint8_t *buf, size_t len, const struct drv_keyring *ring,
                 Drover__BodyType want, ProtobufCMessage **out);

void drv_env_free(Drover__Envelope *env);
void drv_msg_free(ProtobufCMessage *msg);

/* The descriptor of a body type, or NULL. */
const ProtobufCMessageDescriptor *drv_body_descriptor(Drover__BodyType type);

/* Map an error code to the wire's reject reason. */
Drover__RejectReason drv_reject_reason(int err);

#endif
