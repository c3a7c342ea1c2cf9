/* qcow2: consistency check and repair (refcounts rebuilt from L1/L2 tables, snapshots, metadata).
 */
#include "block/qcow2.h"

#include <errno.h>

int qcow2_check(struct blk *b, unsigned fix, struct blk_check_result *res, struct cove_err *err)
{
	return cove_err_set(err, -ENOTSUP, "qcow2: check is not implemented yet");
}
