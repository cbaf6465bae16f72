/*
 * output.h: how the CLI prints: aligned tables for people, JSON for
 * programs (--json), times in UTC ISO 8601.
 */
#ifndef DRV_CTL_OUTPUT_H
#define DRV_CTL_OUTPUT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define CTL_TABLE_COLS_MAX 12
#define CTL_CELL_MAX       80 /* longer cells are cut with "..." */

struct ctl_table;

/* headers: NULL-terminated column titles. NULL on allocation failure. */
struct ctl_table *ctl_table_new(const char *const *headers);
/* One row: exactly as many strings (NULL prints "-") as there are columns. */
int ctl_table_add(struct ctl_table *t, ...);
/* Print with columns aligned and two spaces between them; then free. */
void ctl_table_print(struct ctl_table *t, FILE *f);
void ctl_table_free(struct ctl_table *t);

/* Pretty JSON and a newline. */
void ctl_print_json(FILE *f, const json_t *v);
/* Compact JSON on one line (for streams: one object per line). */
void ctl_print_json_line(FILE *f, const json_t *v);

/* "2026-11-26T06:10:00Z"; "-" for 0. */
void ctl_fmt_time(int64_t wall_ms, char out[32]);
/* "350ms", "4.2s", "3m05s", "2h01m". */
void ctl_fmt_duration(int64_t ms, char out[32]);

/* Object member as a string for printing: strings as they are, numbers and
 * booleans formatted, null/absent as "-". Valid for the next 7 calls (so
 * several may appear in one ctl_table_add). */
const char *ctl_str(const json_t *obj, const char *key);

/* True when f is a terminal (progress bars) rather than a pipe (plain lines). */
bool ctl_is_tty(FILE *f);

#endif
