/* cmd_plan.c: drover plan check [--json] FILE: validate a plan offline
 * (no coordinator needed); see drv_plan_check_main in plan.h. */
#include <string.h>

#include "ctl.h"
#include "plan.h"

static int run(struct ctl *ctl, int argc, char **argv)
{
	(void)ctl;
	if (argc < 2 || strcmp(argv[1], "check") != 0) {
		ctl_usage(&ctl_cmd_plan, stderr);
		return CTL_EXIT_USAGE;
	}
	return drv_plan_check_main(argc - 1, argv + 1);
}

const struct ctl_cmd ctl_cmd_plan = {
        .name = "plan",
        .usage = "plan check [--json] FILE",
        .summary = "validate a deployment plan (every error with its line)",
        .run = run,
};
