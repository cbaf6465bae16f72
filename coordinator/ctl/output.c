/* output.c: tables, JSON printing and time formatting for the CLI. */
#include "output.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "err.h"

struct ctl_table {
	size_t ncols, nrows, cap;
	char *headers[CTL_TABLE_COLS_MAX];
	char **cells; /* nrows * ncols */
	size_t width[CTL_TABLE_COLS_MAX];
};

static char *cell_dup(const char *s)
{
	size_t n;
	char *c;

	if (!s || !s[0])
		s = "-";
	n = strlen(s);
	if (n <= CTL_CELL_MAX)
		return strdup(s);
	c = malloc(CTL_CELL_MAX + 1);
	if (!c)
		return NULL;
	memcpy(c, s, CTL_CELL_MAX - 3);
	memcpy(c + CTL_CELL_MAX - 3, "...", 4);
	return c;
}

struct ctl_table *ctl_table_new(const char *const *headers)
{
	struct ctl_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	for (; headers[t->ncols] && t->ncols < CTL_TABLE_COLS_MAX; t->ncols++) {
		t->headers[t->ncols] = cell_dup(headers[t->ncols]);
		if (!t->headers[t->ncols]) {
			ctl_table_free(t);
			return NULL;
		}
		t->width[t->ncols] = strlen(t->headers[t->ncols]);
	}
	return t;
}

int ctl_table_add(struct ctl_table *t, ...)
{
	va_list ap;
	char **row;

	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **grown = realloc(t->cells, cap * t->ncols * sizeof(char *));
		if (!grown)
			return DRV_ENOMEM;
		t->cells = grown;
		t->cap = cap;
	}
	row = t->cells + t->nrows * t->ncols;
	va_start(ap, t);
	for (size_t i = 0; i < t->ncols; i++) {
		row[i] = cell_dup(va_arg(ap, const char *));
		if (row[i] && strlen(row[i]) > t->width[i])
			t->width[i] = strlen(row[i]);
	}
	va_end(ap);
	t->nrows++;
	return DRV_OK;
}

static void print_row(const struct ctl_table *t, char *const *cells, FILE *f)
{
	for (size_t i = 0; i < t->ncols; i++) {
		const char *c = cells[i] ? cells[i] : "?";
		if (i + 1 == t->ncols)
			fprintf(f, "%s\n", c);
		else
			fprintf(f, "%-*s  ", (int)t->width[i], c);
	}
}

void ctl_table_print(struct ctl_table *t, FILE *f)
{
	if (!t)
		return;
	print_row(t, t->headers, f);
	for (size_t r = 0; r < t->nrows; r++)
		print_row(t, t->cells + r * t->ncols, f);
	ctl_table_free(t);
}

void ctl_table_free(struct ctl_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->ncols; i++)
		free(t->headers[i]);
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

void ctl_print_json(FILE *f, const json_t *v)
{
	json_dumpf(v, f, JSON_INDENT(2) | JSON_ENCODE_ANY);
	fputc('\n', f);
}

void ctl_print_json_line(FILE *f, const json_t *v)
{
	json_dumpf(v, f, JSON_COMPACT | JSON_ENCODE_ANY);
	fputc('\n', f);
	fflush(f);
}

void ctl_fmt_time(int64_t wall_ms, char out[32])
{
	time_t t = (time_t)(wall_ms / 1000);
	struct tm tm;

	if (wall_ms <= 0 || !gmtime_r(&t, &tm)) {
		snprintf(out, 32, "-");
		return;
	}
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void ctl_fmt_duration(int64_t ms, char out[32])
{
	if (ms < 0)
		snprintf(out, 32, "-");
	else if (ms < 1000)
		snprintf(out, 32, "%lldms", (long long)ms);
	else if (ms < 60000)
		snprintf(out, 32, "%.1fs", (double)ms / 1000.0);
	else if (ms < 3600000)
		snprintf(out, 32, "%lldm%02llds", (long long)(ms / 60000),
		         (long long)(ms / 1000 % 60));
	else
		snprintf(out, 32, "%lldh%02lldm", (long long)(ms / 3600000),
		         (long long)(ms / 60000 % 60));
}

const char *ctl_str(const json_t *obj, const char *key)
{
	static char bufs[8][64];
	static unsigned next;
	const json_t *v = json_object_get(obj, key);
	char *b = bufs[next++ % 8];

	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v))
		snprintf(b, 64, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(b, 64, "%g", json_real_value(v));
	else if (json_is_boolean(v))
		snprintf(b, 64, "%s", json_is_true(v) ? "yes" : "no");
	else
		snprintf(b, 64, "-");
	return b;
}

bool ctl_is_tty(FILE *f)
{
	return isatty(fileno(f)) == 1;
}
