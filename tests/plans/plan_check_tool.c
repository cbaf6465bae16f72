/* plan_check_tool.c: `drover plan check` as a stand-alone program, so the
 * golden tests run without the CLI: plan_check_tool [--json] FILE. */
#include "plan.h"

int main(int argc, char **argv)
{
	return drv_plan_check_main(argc, argv);
}
