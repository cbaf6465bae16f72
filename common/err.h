/*
 * err.h: the one error type of drover.
 *
 * Every fallible function returns int: DRV_OK (0) on success, one of the
 * positive codes below on failure. Output parameters are written only on
 * success.
 */
#ifndef DRV_ERR_H
#define DRV_ERR_H

enum drv_err {
	DRV_OK = 0,
	DRV_ENOMEM,      /* allocation failed */
	DRV_EINVAL,      /* invalid argument or input */
	DRV_EIO,         /* I/O error (errno tells more) */
	DRV_ENOENT,      /* no such file, key, agent, ... */
	DRV_EEXIST,      /* already exists */
	DRV_EPERM,       /* refused: permissions or policy */
	DRV_ETOOBIG,     /* input over its size cap */
	DRV_EDECODE,     /* malformed encoding */
	DRV_EVERSION,    /* peer speaks another protocol major */
	DRV_EBADSIG,     /* signature does not verify */
	DRV_EUNKNOWNKEY, /* signer's key is not trusted */
	DRV_EREPLAY,     /* sequence already seen */
	DRV_EEXPIRED,    /* past its expiry */
	DRV_EFUTURE,     /* issued too far in the future */
	DRV_ETARGET,     /* addressed to somebody else */
	DRV_ETIMEDOUT,   /* deadline passed */
	DRV_ESTATE,      /* not possible in the current state */
	DRV_EDB,         /* database error */
	DRV_ECLOSED,     /* connection or object closed */
	DRV_ENODIGEST,   /* image reference not pinned by digest */
	DRV_ESYS,        /* a system call failed (errno tells more) */
	DRV_ECANCELED,   /* stopped on request (the daemon is stopping, the step cancelled) */
	DRV_EFENCED,     /* refused: this node no longer holds the leader lease */
	DRV_ENOTLEADER,  /* this node of an HA group follows: ask the leader */
	DRV_ESTALE,      /* from a lower epoch than one already seen (fenced) */
	DRV_ERR_COUNT
};

/* Short, stable, lowercase name of an error code ("bad-signature"). */
const char *drv_errname(int err);
/* Human sentence for an error code. */
const char *drv_strerror(int err);

#endif
