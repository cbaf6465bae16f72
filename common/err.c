/* err.c: names and messages for drover's error codes. */
#include "err.h"

static const struct {
	const char *name;
	const char *msg;
} err_table[DRV_ERR_COUNT] = {
        [DRV_OK] = {"ok", "success"},
        [DRV_ENOMEM] = {"no-memory", "out of memory"},
        [DRV_EINVAL] = {"invalid", "invalid argument or input"},
        [DRV_EIO] = {"io", "input/output error"},
        [DRV_ENOENT] = {"not-found", "not found"},
        [DRV_EEXIST] = {"exists", "already exists"},
        [DRV_EPERM] = {"permission", "permission denied"},
        [DRV_ETOOBIG] = {"too-large", "input exceeds its size limit"},
        [DRV_EDECODE] = {"malformed", "malformed message"},
        [DRV_EVERSION] = {"version", "unsupported protocol version"},
        [DRV_EBADSIG] = {"bad-signature", "signature does not verify"},
        [DRV_EUNKNOWNKEY] = {"unknown-key", "signing key is not trusted"},
        [DRV_EREPLAY] = {"replay", "sequence number already used"},
        [DRV_EEXPIRED] = {"expired", "message has expired"},
        [DRV_EFUTURE] = {"future", "message issued too far in the future"},
        [DRV_ETARGET] = {"wrong-target", "message is addressed to another agent"},
        [DRV_ETIMEDOUT] = {"timeout", "deadline passed"},
        [DRV_ESTATE] = {"state", "not possible in the current state"},
        [DRV_EDB] = {"database", "database error"},
        [DRV_ECLOSED] = {"closed", "closed"},
        [DRV_ENODIGEST] = {"no-digest", "image is not pinned by digest"},
        [DRV_ESYS] = {"system", "system call failed"},
        [DRV_ECANCELED] = {"cancelled", "cancelled"},
        [DRV_EFENCED] = {"fenced", "fenced: another node holds the leader lease"},
        [DRV_ENOTLEADER] = {"not-leader", "this node is not the leader of its group"},
        [DRV_ESTALE] = {"stale-epoch", "from a lower epoch than one already seen"},
};

const char *drv_errname(int err)
{
	if (err < 0 || err >= DRV_ERR_COUNT)
		return "unknown";
	return err_table[err].name;
}

const char *drv_strerror(int err)
{
	if (err < 0 || err >= DRV_ERR_COUNT)
		return "unknown error";
	return err_table[err].msg;
}
