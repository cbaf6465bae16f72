/* fuzz_oci_manifest.c: the manifest/index parser and the image reference
 * parser (common/oci_manifest.c, common/oci.c) on arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "oci.h"
#include "oci_manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const ctypes[] = {NULL, DRV_MT_OCI_MANIFEST, DRV_MT_OCI_INDEX,
	                                     DRV_MT_DOCKER_MANIFEST, DRV_MT_DOCKER_LIST};
	struct drv_oci_manifest m;
	const struct drv_oci_desc *d;
	struct drv_oci_ref ref;
	char err[256], *s;

	if (size > 0 &&
	    drv_oci_manifest_parse((const char *)data + 1, size - 1, ctypes[data[0] % 5], &m, err,
	                           sizeof(err)) == DRV_OK) {
		if (m.kind == DRV_OCI_INDEX)
			drv_oci_index_pick(&m, "linux", "amd64", &d);
		drv_oci_manifest_clear(&m);
	}
	s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (drv_oci_ref_parse(s, &ref, err, sizeof(err)) == DRV_OK)
		drv_oci_ref_clear(&ref);
	free(s);
	return 0;
}
