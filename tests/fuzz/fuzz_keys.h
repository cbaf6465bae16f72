/* fuzz_keys.h: fixed keys for fuzz targets and their seeds, so a seed
 * sealed by fuzz_seeds verifies inside the target. Test-only. */
#ifndef DRV_FUZZ_KEYS_H
#define DRV_FUZZ_KEYS_H

#include <sodium.h>
#include <string.h>

#include "keys.h"

static inline void fuzz_keypair(struct drv_keypair *kp)
{
	unsigned char seed[crypto_sign_SEEDBYTES];

	memset(seed, 0x5a, sizeof(seed));
	crypto_sign_seed_keypair(kp->pk, kp->sk, seed);
	drv_key_id(kp->pk, kp->id);
}

#endif
