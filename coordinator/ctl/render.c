/* render.c: deployments as text for drover status, history and deploy
 * --wait (see render.h). Everything writes into a memory stream. */
#include "render.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "output.h"

#define BAR_WIDTH       20
#define HOSTS_SHOWN_MAX 5  /* per service in a terminal frame */
#define NAME_COL_MAX    32 /* service name column of a frame */
#define CLEAN_MAX       (CTL_CELL_MAX + 1)
#define LINE_TEXT_MAX   512 /* a message on a line of its own */
#define STRATEGY_COL    28  /* "canary step 10/10 weight 100%" mostly fits */

/* ------------------------------------------------------------ helpers */

static const char *jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static int64_t jint(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_real(v))
		return (int64_t)json_real_value(v);
	return 0;
}

static const json_t *jarr(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	return json_is_array(v) ? v : NULL;
}

/* Copy s into out (cap bytes) with control characters (a server could send
 * terminal escapes) replaced by '?' and line breaks by spaces. With
 * last_line, only the last non-empty line of s (hook output tails end with
 * a newline). */
static const char *clean(const char *s, char *out, size_t cap, bool last_line)
{
	size_t o = 0, n = strlen(s);

	if (last_line) {
		while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
			n--;
		for (size_t i = n; i > 0; i--) {
			if (s[i - 1] == '\n') {
				s += i;
				n -= i;
				break;
			}
		}
	}
	for (size_t i = 0; i < n && o + 1 < cap; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\n' || c == '\r' || c == '\t')
			out[o++] = ' ';
		else
			out[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	out[o] = '\0';
	return out;
}

/* Print s cleaned. */
static void put(FILE *f, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		fputc((c < 0x20 || c == 0x7f) ? '?' : c, f);
	}
}

static bool is(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}

/* Duration of something that started at start and ended at end (0: still
 * going, measured to now); -1 when it has not started. */
static int64_t span(int64_t start, int64_t end, int64_t now)
{
	if (start <= 0)
		return -1;
	if (end <= 0)
		end = now;
	return end >= start ? end - start : 0;
}

static void fmt_span(const json_t *o, int64_t now, char out[32])
{
	ctl_fmt_duration(span(jint(o, "started_ms"), jint(o, "finished_ms"), now), out);
}

/* Stream plumbing: every renderer opens one, writes, and closes it. */
struct text {
	FILE *f;
	char *buf;
	size_t len;
};

static bool text_open(struct text *t)
{
	t->buf = NULL;
	t->len = 0;
	t->f = open_memstream(&t->buf, &t->len);
	return t->f != NULL;
}

static char *text_close(struct text *t)
{
	bool bad = ferror(t->f) != 0;

	if (fclose(t->f) != 0 || bad) {
		free(t->buf);
		return NULL;
	}
	/* The last guard: no control character but newline reaches a terminal. */
	for (char *p = t->buf; *p; p++) {
		if ((*p > 0 && *p < 0x20 && *p != '\n') || *p == 0x7f)
			*p = '?';
	}
	return t->buf;
}

/* ------------------------------------------------------------- states */

bool ctl_state_final(const char *state)
{
	return ctl_state_exit(state) >= 0;
}

int ctl_state_exit(const char *state)
{
	if (!state)
		return -1;
	if (is(state, "succeeded"))
		return CTL_EXIT_OK;
	if (is(state, "failed") || is(state, "rolled_back") || is(state, "aborted"))
		return CTL_EXIT_FAILED;
	return -1;
}

/* ----------------------------------------------------------- progress */

struct counts {
	int total, ok, failed, rolled, finished;
};

static struct counts host_counts(const json_t *svc)
{
	struct counts c = {0};
	const json_t *h;
	size_t i;

	json_array_foreach(jarr(svc, "hosts"), i, h)
	{
		const char *st = jstr(h, "state");
		c.total++;
		c.ok += is(st, "succeeded");
		c.failed += is(st, "failed");
		c.rolled += is(st, "rolled_back");
	}
	c.finished = c.ok + c.failed + c.rolled;
	return c;
}

static void hosts_text(FILE *f, const json_t *svc)
{
	struct counts c = host_counts(svc);

	fprintf(f, "%d/%d hosts", c.ok, c.total);
	if (c.failed)
		fprintf(f, ", %d failed", c.failed);
	if (c.rolled)
		fprintf(f, ", %d rolled back", c.rolled);
}

static void bar(FILE *f, int done, int total)
{
	int fill = total > 0 ? (int)((int64_t)done * BAR_WIDTH / total) : 0;

	fputc('[', f);
	for (int i = 0; i < BAR_WIDTH; i++)
		fputc(i < fill ? '#' : '.', f);
	fputc(']', f);
}

/* Blue-green across host sets: " set b, live a" (the set the release goes
 * to, the one that takes the traffic now; "none" before a first switch). */
static void sets_text(FILE *f, const json_t *sets)
{
	const json_t *live = json_object_get(sets, "live");

	if (!json_is_object(sets))
		return;
	fputs(" set ", f);
	put(f, jstr(sets, "new"));
	if (json_is_true(json_object_get(sets, "first")))
		fputs(" (first)", f);
	fputs(", live ", f);
	put(f, json_is_string(live) ? json_string_value(live) : "none");
}

/* "rolling batch 1/2", "canary step 2/5 weight 25%", "blue-green weight 100%". */
static void strategy_text(FILE *f, const json_t *svc)
{
	const char *strategy = jstr(svc, "strategy");
	int64_t batches = jint(svc, "batches"), steps = jint(svc, "canary_steps");

	put(f, strategy[0] ? strategy : "-");
	if (is(strategy, "rolling") && batches > 0)
		fprintf(f, " batch %lld/%lld", (long long)jint(svc, "batch"), (long long)batches);
	if (steps > 0)
		fprintf(f, " step %lld/%lld", (long long)jint(svc, "canary_step"),
		        (long long)steps);
	if (is(strategy, "canary") || is(strategy, "blue-green"))
		fprintf(f, " weight %lld%%", (long long)jint(svc, "weight"));
	sets_text(f, json_object_get(svc, "sets"));
}

/* strategy_text into a buffer (for column alignment and comparisons). */
static void strategy_str(const json_t *svc, char *out, size_t cap)
{
	FILE *f = fmemopen(out, cap, "w");

	out[0] = '\0';
	if (!f)
		return;
	strategy_text(f, svc);
	fclose(f);
	out[cap - 1] = '\0';
}

/* "registry/name@sha256:0123456789ab": the image and a short digest. */
static const char *image_text(const json_t *svc, char *out, size_t cap)
{
	const char *image = jstr(svc, "image"), *digest = jstr(svc, "digest");
	char buf[600];

	if (digest[0] && !strchr(image, '@'))
		snprintf(buf, sizeof(buf), "%s@%.19s", image, digest);
	else
		snprintf(buf, sizeof(buf), "%s", image);
	return clean(buf, out, cap, false);
}

/* "2.3.0 -> 2.4.0": the change the host went through, so a host going
 * back to its previous release reads "2.4.0 -> 2.3.0". */
static void versions(FILE *f, const json_t *h)
{
	const char *from = jstr(h, "from_version"), *to = jstr(h, "to_version"),
	           *st = jstr(h, "state");

	if (is(st, "rolling_back") || is(st, "rolled_back")) {
		const char *t = from;
		from = to;
		to = t;
	}
	put(f, from[0] ? from : "-");
	fputs(" -> ", f);
	put(f, to[0] ? to : "-");
}

/* ------------------------------------------------------------- status */

/* Who approved (or denied) it, when, with which comment (issue 19). */
static void approval_line(FILE *f, const char *what, const json_t *v)
{
	char at[32];

	ctl_fmt_time(jint(v, "at_ms"), at);
	fprintf(f, "approval    %s by ", what);
	put(f, jstr(v, "actor"));
	fprintf(f, " at %s", at);
	if (jstr(v, "comment")[0]) {
		fputs(": ", f);
		put(f, jstr(v, "comment"));
	}
	fputc('\n', f);
}

/* One approval: before the start, or (a round) at a canary step. */
static void approval_lines(FILE *f, const json_t *a)
{
	const char *step = jstr(a, "step");
	const json_t *v;
	size_t i;

	fprintf(f, "approvals   %zu of %lld (role %s)",
	        json_array_size(json_object_get(a, "approvals")), (long long)jint(a, "required"),
	        jstr(a, "role"));
	if (step[0]) {
		fputs(" at canary step ", f);
		put(f, step);
	}
	if (json_is_true(json_object_get(a, "timed_out")))
		fputs(": timed out", f);
	fputc('\n', f);
	json_array_foreach(json_object_get(a, "approvals"), i, v) approval_line(f, "approved", v);
	if ((v = json_object_get(a, "denied")) != NULL)
		approval_line(f, "denied", v);
}

static void status_approvals(FILE *f, const json_t *d)
{
	const json_t *a = json_object_get(d, "approval"), *v;
	size_t i;

	/* the approval before the start; an open round is among step_approvals */
	if (a != NULL && json_object_get(a, "step") == NULL)
		approval_lines(f, a);
	json_array_foreach(json_object_get(d, "step_approvals"), i, v) approval_lines(f, v);
}

static void status_header(FILE *f, const json_t *d, int64_t now)
{
	char created[32], finished[32], took[32];
	int64_t fin = jint(d, "finished_ms");

	ctl_fmt_time(jint(d, "created_ms"), created);
	ctl_fmt_time(fin, finished);
	ctl_fmt_duration(span(jint(d, "created_ms"), fin, now), took);
	fputs("deployment  ", f);
	put(f, jstr(d, "id"));
	fputs("\nplan        ", f);
	put(f, jstr(d, "deployment"));
	fputc(' ', f);
	put(f, jstr(d, "version"));
	if (jstr(d, "environment")[0]) {
		fputs("\nenvironment ", f);
		put(f, jstr(d, "environment"));
	}
	if (jstr(d, "release")[0]) {
		fputs("\nrelease     ", f);
		put(f, jstr(d, "release"));
		if (jstr(d, "promoted_from")[0]) {
			fputs(" (promoted from ", f);
			put(f, jstr(d, "promoted_from"));
			fputc(')', f);
		}
	}
	fputs("\nstate       ", f);
	put(f, jstr(d, "state"));
	fputs(" (phase ", f);
	put(f, jstr(d, "phase"));
	fputs(")\n", f);
	if (jstr(d, "reason")[0]) {
		fputs("reason      ", f);
		put(f, jstr(d, "reason"));
		fputc('\n', f);
	}
	fputs("actor       ", f);
	put(f, jstr(d, "actor")[0] ? jstr(d, "actor") : "-");
	fprintf(f, "\ncreated     %s\nfinished    %s\n%s %s\n", created, finished,
	        fin > 0 ? "took       " : "elapsed    ", took);
	fprintf(f, "failed      %lld hosts (allowed %lld)\n", (long long)jint(d, "failed_hosts"),
	        (long long)jint(d, "max_failed_hosts"));
	status_approvals(f, d);
}

static void tiers_table(FILE *f, const json_t *d)
{
	static const char *const headers[] = {"TIER", "STATE", "SERVICES", NULL};
	struct ctl_table *t = ctl_table_new(headers);
	char name[CLEAN_MAX], state[CLEAN_MAX], done[64];
	const json_t *tier, *svc;
	size_t i, j;

	if (!t)
		return;
	json_array_foreach(jarr(d, "tiers"), i, tier)
	{
		int n = 0, ok = 0;
		json_array_foreach(jarr(tier, "services"), j, svc)
		{
			n++;
			ok += is(jstr(svc, "state"), "done");
		}
		snprintf(done, sizeof(done), "%d/%d done", ok, n);
		ctl_table_add(t, clean(jstr(tier, "name"), name, sizeof(name), false),
		              clean(jstr(tier, "state"), state, sizeof(state), false), done);
	}
	fputc('\n', f);
	ctl_table_print(t, f);
}

static void services_table(FILE *f, const json_t *d)
{
	static const char *const headers[] = {"TIER",     "SERVICE", "STATE", "STRATEGY",
	                                      "PROGRESS", "IMAGE",   NULL};
	struct ctl_table *t = ctl_table_new(headers);
	char c[5][CLEAN_MAX], strategy[CLEAN_MAX], hosts[64];
	const json_t *tier, *svc;
	size_t i, j;

	if (!t)
		return;
	json_array_foreach(jarr(d, "tiers"), i, tier)
	{
		json_array_foreach(jarr(tier, "services"), j, svc)
		{
			FILE *hf = fmemopen(hosts, sizeof(hosts), "w");
			hosts[0] = '\0';
			if (hf) {
				hosts_text(hf, svc);
				fclose(hf);
			}
			strategy_str(svc, strategy, sizeof(strategy));
			ctl_table_add(t, clean(jstr(tier, "name"), c[0], CLEAN_MAX, false),
			              clean(jstr(svc, "name"), c[1], CLEAN_MAX, false),
			              clean(jstr(svc, "state"), c[2], CLEAN_MAX, false),
			              clean(strategy, c[3], CLEAN_MAX, false), hosts,
			              image_text(svc, c[4], CLEAN_MAX));
		}
	}
	fputc('\n', f);
	ctl_table_print(t, f);
}

static void host_rows(struct ctl_table *t, const json_t *tier, const json_t *svc, int64_t now)
{
	char c[7][CLEAN_MAX], took[32];
	const json_t *h;
	size_t i;

	json_array_foreach(jarr(svc, "hosts"), i, h)
	{
		fmt_span(h, now, took);
		ctl_table_add(t, clean(jstr(tier, "name"), c[0], CLEAN_MAX, false),
		              clean(jstr(svc, "name"), c[1], CLEAN_MAX, false),
		              clean(jstr(h, "id"), c[2], CLEAN_MAX, false),
		              clean(jstr(h, "state"), c[3], CLEAN_MAX, false),
		              clean(jstr(h, "from_version"), c[4], CLEAN_MAX, false),
		              clean(jstr(h, "to_version"), c[5], CLEAN_MAX, false), took,
		              clean(jstr(h, "message"), c[6], CLEAN_MAX, false));
	}
}

static void hosts_table(FILE *f, const json_t *d, int64_t now)
{
	static const char *const headers[] = {"TIER", "SERVICE", "HOST",    "STATE", "FROM",
	                                      "TO",   "TIME",    "MESSAGE", NULL};
	struct ctl_table *t = ctl_table_new(headers);
	const json_t *tier, *svc;
	size_t i, j;

	if (!t)
		return;
	json_array_foreach(jarr(d, "tiers"), i, tier)
	{
		json_array_foreach(jarr(tier, "services"), j, svc) host_rows(t, tier, svc, now);
	}
	fputc('\n', f);
	ctl_table_print(t, f);
}

static bool hook_finished(const json_t *h)
{
	const char *st = jstr(h, "state");
	return is(st, "succeeded") || is(st, "failed");
}

static void hooks_table(FILE *f, const json_t *d, int64_t now)
{
	static const char *const headers[] = {"PHASE", "HOOK", "HOST",   "STATE",
	                                      "EXIT",  "TIME", "OUTPUT", NULL};
	struct ctl_table *t;
	char c[5][CLEAN_MAX], took[32], code[24];
	const json_t *h;
	size_t i;

	if (json_array_size(jarr(d, "hooks")) == 0)
		return;
	t = ctl_table_new(headers);
	if (!t)
		return;
	json_array_foreach(jarr(d, "hooks"), i, h)
	{
		fmt_span(h, now, took);
		snprintf(code, sizeof(code), "%lld", (long long)jint(h, "exit_code"));
		ctl_table_add(t, clean(jstr(h, "phase"), c[0], CLEAN_MAX, false),
		              clean(jstr(h, "name"), c[1], CLEAN_MAX, false),
		              clean(jstr(h, "host"), c[2], CLEAN_MAX, false),
		              clean(jstr(h, "state"), c[3], CLEAN_MAX, false),
		              hook_finished(h) ? code : "-", took,
		              clean(jstr(h, "output_tail"), c[4], CLEAN_MAX, true));
	}
	fputc('\n', f);
	ctl_table_print(t, f);
}

/* The latest verdict of each Prometheus check (deployment "analysis",
 * name "check"), or the release's key metrics against the previous
 * release's (deployment "baseline", name "metric": "118 ms (2.3.0: 121 ms,
 * -2 %)"). */
static void verdict_table(FILE *f, const json_t *d, const char *list, const char *name)
{
	const char *const headers[] = {"SERVICE", strcmp(name, "check") == 0 ? "CHECK" : "METRIC",
	                               "VERDICT",
	                               strcmp(list, "analysis") == 0 ? "RESULT" : "BASELINE", NULL};
	struct ctl_table *t;
	char c[4][CLEAN_MAX];
	const json_t *a;
	size_t i;

	if (json_array_size(jarr(d, list)) == 0)
		return;
	t = ctl_table_new(headers);
	if (!t)
		return;
	json_array_foreach(jarr(d, list), i, a)
	{
		ctl_table_add(t, clean(jstr(a, "service"), c[0], CLEAN_MAX, false),
		              clean(jstr(a, name), c[1], CLEAN_MAX, false),
		              clean(jstr(a, "verdict"), c[2], CLEAN_MAX, false),
		              clean(jstr(a, "text"), c[3], CLEAN_MAX, true));
	}
	fputc('\n', f);
	ctl_table_print(t, f);
}

/* One line per analysis verdict while following a deployment. */
static void follow_analysis(FILE *out, const json_t *data)
{
	char c[4][CLEAN_MAX];

	fprintf(out, "analysis %s/%s: %s: %s\n",
	        clean(jstr(data, "service"), c[0], CLEAN_MAX, false),
	        clean(jstr(data, "check"), c[1], CLEAN_MAX, false),
	        clean(jstr(data, "verdict"), c[2], CLEAN_MAX, false),
	        clean(jstr(data, "text"), c[3], CLEAN_MAX, true));
}

char *ctl_render_status(const json_t *dep, int64_t now_ms)
{
	struct text t;

	if (!text_open(&t))
		return NULL;
	status_header(t.f, dep, now_ms);
	if (json_array_size(jarr(dep, "tiers")) > 0) {
		tiers_table(t.f, dep);
		services_table(t.f, dep);
		hosts_table(t.f, dep, now_ms);
	}
	hooks_table(t.f, dep, now_ms);
	verdict_table(t.f, dep, "analysis", "check");
	verdict_table(t.f, dep, "baseline", "metric");
	return text_close(&t);
}

/* ------------------------------------------------------------ history */

char *ctl_render_history(const json_t *deployments, int64_t now_ms)
{
	static const char *const headers[] = {"ID",      "DEPLOYMENT", "VERSION", "STATE", "ACTOR",
	                                      "CREATED", "TIME",       "REASON",  NULL};
	struct ctl_table *tab;
	struct text t;
	char c[6][CLEAN_MAX], created[32], took[32];
	const json_t *d;
	size_t i;

	if (!text_open(&t))
		return NULL;
	tab = ctl_table_new(headers);
	if (!tab) {
		fclose(t.f);
		free(t.buf);
		return NULL;
	}
	json_array_foreach(deployments, i, d)
	{
		ctl_fmt_time(jint(d, "created_ms"), created);
		ctl_fmt_duration(span(jint(d, "created_ms"), jint(d, "finished_ms"), now_ms), took);
		ctl_table_add(tab, clean(jstr(d, "id"), c[0], CLEAN_MAX, false),
		              clean(jstr(d, "deployment"), c[1], CLEAN_MAX, false),
		              clean(jstr(d, "version"), c[2], CLEAN_MAX, false),
		              clean(jstr(d, "state"), c[3], CLEAN_MAX, false),
		              clean(jstr(d, "actor"), c[4], CLEAN_MAX, false), created, took,
		              clean(jstr(d, "reason"), c[5], CLEAN_MAX, false));
	}
	ctl_table_print(tab, t.f);
	return text_close(&t);
}

/* ----------------------------------------------------- terminal frame */

static int name_width(const json_t *d)
{
	const json_t *tier, *svc;
	size_t i, j;
	int w = 8;

	json_array_foreach(jarr(d, "tiers"), i, tier)
	{
		json_array_foreach(jarr(tier, "services"), j, svc)
		{
			int n = (int)strlen(jstr(svc, "name"));
			w = n > w ? n : w;
		}
	}
	return w > NAME_COL_MAX ? NAME_COL_MAX : w;
}

static void frame_hook(FILE *f, const json_t *h, int64_t now)
{
	char took[32], phase_name[CLEAN_MAX], host[CLEAN_MAX], out[CLEAN_MAX];

	fmt_span(h, now, took);
	snprintf(phase_name, sizeof(phase_name), "%s/%s", jstr(h, "phase"), jstr(h, "name"));
	fprintf(f, "  hook %-30s %-12s %-10s %s", clean(phase_name, out, sizeof(out), false),
	        clean(jstr(h, "host"), host, sizeof(host), false), jstr(h, "state"), took);
	if (is(jstr(h, "state"), "failed")) {
		fprintf(f, "  exit %lld", (long long)jint(h, "exit_code"));
		if (jstr(h, "output_tail")[0])
			fprintf(f, ": %s", clean(jstr(h, "output_tail"), out, sizeof(out), true));
	}
	fputc('\n', f);
}

static void frame_hooks(FILE *f, const json_t *d, bool post, int64_t now)
{
	const json_t *h;
	size_t i;

	json_array_foreach(jarr(d, "hooks"), i, h)
	{
		if (is(jstr(h, "phase"), "post") == post)
			frame_hook(f, h, now);
	}
}

/* A host is shown under its service while it is at work, or when it failed. */
static bool host_shown(const json_t *h)
{
	const char *st = jstr(h, "state");
	return !is(st, "pending") && !is(st, "staged") && !is(st, "succeeded") &&
	       !is(st, "rolled_back");
}

static void frame_hosts(FILE *f, const json_t *svc, int64_t now)
{
	char took[32], id[CLEAN_MAX], msg[LINE_TEXT_MAX];
	const json_t *h;
	size_t i;
	int shown = 0, more = 0;

	json_array_foreach(jarr(svc, "hosts"), i, h)
	{
		if (!host_shown(h))
			continue;
		if (shown == HOSTS_SHOWN_MAX) {
			more++;
			continue;
		}
		shown++;
		fmt_span(h, now, took);
		fprintf(f, "      %-12s %-12s ", clean(jstr(h, "id"), id, sizeof(id), false),
		        jstr(h, "state"));
		versions(f, h);
		fprintf(f, "  %s", took);
		if (jstr(h, "message")[0])
			fprintf(f, "  %s", clean(jstr(h, "message"), msg, sizeof(msg), false));
		fputc('\n', f);
	}
	if (more)
		fprintf(f, "      ... and %d more\n", more);
}

static void frame_service(FILE *f, const json_t *svc, int width, int64_t now)
{
	struct counts c = host_counts(svc);
	char name[CLEAN_MAX], strategy[CLEAN_MAX];

	strategy_str(svc, strategy, sizeof(strategy));
	fprintf(f, "    %-*.*s  %-*s ", width, width,
	        clean(jstr(svc, "name"), name, sizeof(name), false), STRATEGY_COL, strategy);
	bar(f, c.finished, c.total);
	fputs("  ", f);
	hosts_text(f, svc);
	fprintf(f, "  %s\n", jstr(svc, "state"));
	frame_hosts(f, svc, now);
}

static void frame_tier(FILE *f, const json_t *tier, int width, int64_t now)
{
	char name[CLEAN_MAX];
	const json_t *svc;
	size_t i;
	int n = 0, ok = 0;

	json_array_foreach(jarr(tier, "services"), i, svc)
	{
		n++;
		ok += is(jstr(svc, "state"), "done");
	}
	fprintf(f, "  tier %-*s %-*s ", width - 1,
	        clean(jstr(tier, "name"), name, sizeof(name), false), STRATEGY_COL - 1,
	        jstr(tier, "state"));
	bar(f, ok, n);
	fprintf(f, "  %d/%d services\n", ok, n);
	json_array_foreach(jarr(tier, "services"), i, svc) frame_service(f, svc, width, now);
}

static void frame_header(FILE *f, const json_t *d, int64_t now)
{
	char took[32];

	ctl_fmt_duration(span(jint(d, "created_ms"), jint(d, "finished_ms"), now), took);
	put(f, jstr(d, "deployment"));
	fputc(' ', f);
	put(f, jstr(d, "version"));
	fputs("  ", f);
	put(f, jstr(d, "id"));
	fputs("  ", f);
	put(f, jstr(d, "state"));
	fputs("  phase ", f);
	put(f, jstr(d, "phase"));
	fprintf(f, "  %s\n", took);
	if (jint(d, "failed_hosts") > 0)
		fprintf(f, "  failed hosts %lld (allowed %lld)\n",
		        (long long)jint(d, "failed_hosts"), (long long)jint(d, "max_failed_hosts"));
	if (jstr(d, "reason")[0]) {
		fputs("  reason: ", f);
		put(f, jstr(d, "reason"));
		fputc('\n', f);
	}
}

/* Cut every line of text to max columns (bytes; a frame is ASCII but
 * for names and messages). */
static void cut_lines(char *text, int max)
{
	char *out = text, *line = text;

	while (*line) {
		size_t n = strcspn(line, "\n");
		size_t keep = n > (size_t)max ? (size_t)max : n;
		memmove(out, line, keep);
		out += keep;
		line += n;
		if (*line == '\n') {
			*out++ = '\n';
			line++;
		}
	}
	*out = '\0';
}

char *ctl_render_progress(const json_t *dep, int64_t now_ms, int width)
{
	int w = name_width(dep);
	const json_t *tier;
	struct text t;
	char *s;
	size_t i;

	if (!text_open(&t))
		return NULL;
	frame_header(t.f, dep, now_ms);
	frame_hooks(t.f, dep, false, now_ms);
	json_array_foreach(jarr(dep, "tiers"), i, tier) frame_tier(t.f, tier, w, now_ms);
	frame_hooks(t.f, dep, true, now_ms);
	s = text_close(&t);
	if (s && width > 1)
		cut_lines(s, width - 1);
	return s;
}

/* ------------------------------------------------------- plain changes */

static const json_t *find_named(const json_t *arr, const char *key, const char *name)
{
	const json_t *v;
	size_t i;

	json_array_foreach(arr, i, v)
	{
		if (is(jstr(v, key), name))
			return v;
	}
	return NULL;
}

/* Print when an item is new and not pending, or its state changed. */
static bool changed(const json_t *prev, const json_t *cur)
{
	if (!prev)
		return !is(jstr(cur, "state"), "pending");
	return !is(jstr(prev, "state"), jstr(cur, "state"));
}

static void change_host(FILE *f, const char *where, const json_t *prev, const json_t *h)
{
	const char *st = jstr(h, "state");
	char took[32];

	/* Prestaging is one line of the deployment, not one per host. */
	if (!changed(prev, h) || is(st, "prestaging") || is(st, "staged"))
		return;
	put(f, where);
	fputc(' ', f);
	put(f, jstr(h, "id"));
	fputc(' ', f);
	put(f, jstr(h, "state"));
	fputc(' ', f);
	versions(f, h);
	if (jint(h, "started_ms") > 0 && jint(h, "finished_ms") > 0) {
		ctl_fmt_duration(span(jint(h, "started_ms"), jint(h, "finished_ms"), 0), took);
		fprintf(f, " (%s)", took);
	}
	if (jstr(h, "message")[0]) {
		char msg[LINE_TEXT_MAX];
		fprintf(f, ": %s", clean(jstr(h, "message"), msg, sizeof(msg), false));
	}
	fputc('\n', f);
}

static void change_service(FILE *f, const char *tier, const json_t *prev, const json_t *svc)
{
	char where[300], now_s[CLEAN_MAX], was_s[CLEAN_MAX];
	const json_t *h;
	size_t i;

	snprintf(where, sizeof(where), "%s/%s", tier, jstr(svc, "name"));
	strategy_str(svc, now_s, sizeof(now_s));
	if (prev)
		strategy_str(prev, was_s, sizeof(was_s));
	/* A pending service's numbers settle before it starts: no lines yet. */
	if (changed(prev, svc) ||
	    (prev && !is(now_s, was_s) && !is(jstr(svc, "state"), "pending"))) {
		put(f, where);
		fprintf(f, " %s (", jstr(svc, "state"));
		put(f, now_s);
		fputs(")\n", f);
	}
	json_array_foreach(jarr(svc, "hosts"), i, h)
	{
		change_host(f, where, find_named(jarr(prev, "hosts"), "id", jstr(h, "id")), h);
	}
}

static void change_tier(FILE *f, const json_t *prev, const json_t *tier)
{
	const char *name = jstr(tier, "name");
	const json_t *svc;
	size_t i;

	if (changed(prev, tier)) {
		fputs("tier ", f);
		put(f, name);
		fprintf(f, " %s\n", jstr(tier, "state"));
	}
	json_array_foreach(jarr(tier, "services"), i, svc)
	{
		change_service(f, name,
		               find_named(jarr(prev, "services"), "name", jstr(svc, "name")), svc);
	}
}

static const json_t *find_hook(const json_t *arr, const json_t *hook)
{
	const json_t *v;
	size_t i;

	json_array_foreach(arr, i, v)
	{
		if (is(jstr(v, "phase"), jstr(hook, "phase")) &&
		    is(jstr(v, "name"), jstr(hook, "name")) &&
		    is(jstr(v, "host"), jstr(hook, "host")))
			return v;
	}
	return NULL;
}

static void change_hook(FILE *f, const json_t *prev, const json_t *h)
{
	char took[32], out[LINE_TEXT_MAX];

	if (!changed(prev, h))
		return;
	fputs("hook ", f);
	put(f, jstr(h, "phase"));
	fputc('/', f);
	put(f, jstr(h, "name"));
	fputc(' ', f);
	put(f, jstr(h, "host"));
	fprintf(f, " %s", jstr(h, "state"));
	if (hook_finished(h)) {
		fmt_span(h, 0, took);
		fprintf(f, " (exit %lld, %s)", (long long)jint(h, "exit_code"), took);
		if (is(jstr(h, "state"), "failed") && jstr(h, "output_tail")[0])
			fprintf(f, ": %s", clean(jstr(h, "output_tail"), out, sizeof(out), true));
	}
	fputc('\n', f);
}

static void change_deployment(FILE *f, const json_t *prev, const json_t *d)
{
	const char *reason = jstr(d, "reason");

	if (prev && is(jstr(prev, "state"), jstr(d, "state")) &&
	    is(jstr(prev, "phase"), jstr(d, "phase")))
		return;
	put(f, jstr(d, "id"));
	fputc(' ', f);
	put(f, jstr(d, "state"));
	fputs(" (phase ", f);
	put(f, jstr(d, "phase"));
	fputc(')', f);
	/* The reason once, when it appears or changes. */
	if (reason[0] && !(prev && is(jstr(prev, "reason"), reason))) {
		fputs(": ", f);
		put(f, reason);
	}
	fputc('\n', f);
}

char *ctl_render_changes(const json_t *prev, const json_t *cur)
{
	bool final = ctl_state_final(jstr(cur, "state"));
	const json_t *v;
	struct text t;
	size_t i;

	if (!text_open(&t))
		return NULL;
	/* A final state is the last thing that happened: print it last. */
	if (!final)
		change_deployment(t.f, prev, cur);
	json_array_foreach(jarr(cur, "hooks"), i, v)
	{
		if (!is(jstr(v, "phase"), "post"))
			change_hook(t.f, find_hook(jarr(prev, "hooks"), v), v);
	}
	json_array_foreach(jarr(cur, "tiers"), i, v)
	{
		change_tier(t.f, find_named(jarr(prev, "tiers"), "name", jstr(v, "name")), v);
	}
	json_array_foreach(jarr(cur, "hooks"), i, v)
	{
		if (is(jstr(v, "phase"), "post"))
			change_hook(t.f, find_hook(jarr(prev, "hooks"), v), v);
	}
	if (final)
		change_deployment(t.f, prev, cur);
	return text_close(&t);
}

/* ------------------------------------------------- plain, from events */

/* Ids below the highest seen that have not been seen (yet): on PostgreSQL
 * an event can commit after events with higher ids, and the stream sends it
 * late. Bounded: the oldest ranges go first (a late event arrives within
 * seconds, near the top). */
#define FOLLOW_GAPS_MAX 256

struct ctl_follow {
	json_t *dep;      /* {"id", "state", "phase", "reason"} as printed */
	json_t *tiers;    /* tier -> state printed */
	json_t *svcs;     /* "tier/service" -> "state (strategy)" printed */
	json_t *hosts;    /* "tier/service host" -> state printed */
	json_t *last_ids; /* "s tier/service", "h tier/service host" -> id of the event printed */
	int64_t state_id; /* the deployment state's event printed */
	int64_t last_id;
	int64_t gaps[FOLLOW_GAPS_MAX][2]; /* ascending, disjoint, below last_id */
	size_t n_gaps;
};

struct ctl_follow *ctl_follow_new(const json_t *dep)
{
	struct ctl_follow *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return NULL;
	f->dep = json_pack("{s:s, s:s, s:s, s:s}", "id", jstr(dep, "id"), "state",
	                   jstr(dep, "state"), "phase", jstr(dep, "phase"), "reason",
	                   jstr(dep, "reason"));
	f->tiers = json_object();
	f->svcs = json_object();
	f->hosts = json_object();
	f->last_ids = json_object();
	if (f->dep == NULL || f->tiers == NULL || f->svcs == NULL || f->hosts == NULL ||
	    f->last_ids == NULL) {
		ctl_follow_free(f);
		return NULL;
	}
	return f;
}

void ctl_follow_free(struct ctl_follow *f)
{
	if (f == NULL)
		return;
	json_decref(f->dep);
	json_decref(f->tiers);
	json_decref(f->svcs);
	json_decref(f->hosts);
	json_decref(f->last_ids);
	free(f);
}

static void gap_drop(struct ctl_follow *f, size_t i)
{
	memmove(f->gaps[i], f->gaps[i + 1], (f->n_gaps - i - 1) * sizeof(f->gaps[0]));
	f->n_gaps--;
}

/* Insert [lo, hi] at i (the oldest range goes when full). */
static void gap_insert(struct ctl_follow *f, size_t i, int64_t lo, int64_t hi)
{
	if (f->n_gaps == FOLLOW_GAPS_MAX) {
		if (i == 0)
			return; /* older than all kept */
		gap_drop(f, 0);
		i--;
	}
	memmove(f->gaps[i + 1], f->gaps[i], (f->n_gaps - i) * sizeof(f->gaps[0]));
	f->gaps[i][0] = lo;
	f->gaps[i][1] = hi;
	f->n_gaps++;
}

/* Whether id is an event not seen before: above the highest seen, or in a
 * gap below it (a late commit); a repeat is not. */
static bool take_id(struct ctl_follow *f, int64_t id)
{
	if (id > f->last_id) {
		if (id - 1 > f->last_id)
			gap_insert(f, f->n_gaps, f->last_id + 1, id - 1);
		f->last_id = id;
		return true;
	}
	for (size_t i = f->n_gaps; i-- > 0;) {
		int64_t lo = f->gaps[i][0], hi = f->gaps[i][1];

		if (id < lo)
			continue;
		if (id > hi)
			return false;
		if (lo == hi)
			gap_drop(f, i);
		else if (id == lo)
			f->gaps[i][0] = id + 1;
		else if (id == hi)
			f->gaps[i][1] = id - 1;
		else {
			f->gaps[i][1] = id - 1;
			gap_insert(f, i + 1, id + 1, hi);
		}
		return true;
	}
	return false;
}

/* Whether event id is the newest about key ("h ..." a host, "s ..." a
 * service): a late event older than one printed is not shown, its news
 * is old. */
static bool newest_about(struct ctl_follow *f, const char *key, int64_t id)
{
	json_t *had = json_object_get(f->last_ids, key);

	if (had != NULL && json_integer_value(had) > id)
		return false;
	json_object_set_new(f->last_ids, key, json_integer(id));
	return true;
}

static void follow_state(struct ctl_follow *f, FILE *out, const json_t *data)
{
	json_t *cur = json_pack("{s:s, s:s, s:s, s:s}", "id", jstr(f->dep, "id"), "state",
	                        jstr(data, "state"), "phase", jstr(data, "phase"), "reason",
	                        jstr(data, "reason"));

	if (cur == NULL)
		return;
	change_deployment(out, f->dep, cur);
	json_decref(f->dep);
	f->dep = cur;
}

static void follow_tier(struct ctl_follow *f, FILE *out, const char *tier, const char *st)
{
	if (is(st, "pending") || is(jstr(f->tiers, tier), st))
		return;
	json_object_set_new(f->tiers, tier, json_string(st));
	fputs("tier ", out);
	put(out, tier);
	fprintf(out, " %s\n", st);
}

/* A service's line, and its tier's when that changed: a tier starts before
 * its service and ends after it. */
static void follow_service(struct ctl_follow *f, FILE *out, int64_t id, const json_t *data)
{
	const char *tier = jstr(data, "tier"), *tier_st = jstr(data, "tier_state"),
	           *st = jstr(data, "state");
	bool ended = is(st, "done") || is(st, "rolled_back") || is(st, "failed");
	char where[300], line[400], strategy[CLEAN_MAX], key[310];

	snprintf(key, sizeof(key), "s %s/%s", tier, jstr(data, "service"));
	if (!newest_about(f, key, id))
		return;
	if (!ended)
		follow_tier(f, out, tier, tier_st);
	snprintf(where, sizeof(where), "%s/%s", tier, jstr(data, "service"));
	strategy_str(data, strategy, sizeof(strategy));
	snprintf(line, sizeof(line), "%s (%s)", st, strategy);
	if (!is(jstr(f->svcs, where), line) && !is(st, "pending")) {
		json_object_set_new(f->svcs, where, json_string(line));
		put(out, where);
		fputc(' ', out);
		put(out, line);
		fputc('\n', out);
	}
	if (ended)
		follow_tier(f, out, tier, tier_st);
}

/* A host's line when its state changed (a blue-green finalize repeats it). */
static void follow_host(struct ctl_follow *f, FILE *out, int64_t id, const json_t *data)
{
	char where[300], key[400], newest[410];
	json_t *h;

	snprintf(where, sizeof(where), "%s/%s", jstr(data, "tier"), jstr(data, "service"));
	snprintf(key, sizeof(key), "%s %s", where, jstr(data, "host"));
	snprintf(newest, sizeof(newest), "h %s", key);
	if (!newest_about(f, newest, id) || is(jstr(f->hosts, key), jstr(data, "state")))
		return;
	json_object_set_new(f->hosts, key, json_string(jstr(data, "state")));
	h = json_deep_copy(data);
	if (h == NULL)
		return;
	json_object_set(h, "id", json_object_get(data, "host"));
	change_host(out, where, NULL, h);
	json_decref(h);
}

char *ctl_render_event(struct ctl_follow *f, int64_t id, const char *kind, const json_t *data)
{
	struct text t;

	if (!text_open(&t))
		return NULL;
	if (kind == NULL || !json_is_object(data) || !take_id(f, id))
		return text_close(&t);
	if (is(kind, "state")) {
		if (id > f->state_id) {
			f->state_id = id;
			follow_state(f, t.f, data);
		}
	} else if (is(kind, "service"))
		follow_service(f, t.f, id, data);
	else if (is(kind, "host"))
		follow_host(f, t.f, id, data);
	else if (is(kind, "hook"))
		change_hook(t.f, NULL, data);
	else if (is(kind, "analysis"))
		follow_analysis(t.f, data);
	return text_close(&t);
}

char *ctl_follow_end(struct ctl_follow *f, const json_t *dep)
{
	struct text t;

	if (!text_open(&t))
		return NULL;
	follow_state(f, t.f, dep);
	return text_close(&t);
}

/* "baseline api-gateway/p95-latency: 118 ms (2.3.0: 121 ms, -2 %)" per key metric. */
static void summary_baseline(FILE *f, const json_t *dep)
{
	char c[3][CLEAN_MAX];
	const json_t *a;
	size_t i;

	json_array_foreach(jarr(dep, "baseline"), i, a)
	{
		fprintf(f, "baseline %s/%s: %s\n",
		        clean(jstr(a, "service"), c[0], CLEAN_MAX, false),
		        clean(jstr(a, "metric"), c[1], CLEAN_MAX, false),
		        clean(jstr(a, "text"), c[2], CLEAN_MAX, true));
	}
}

char *ctl_render_summary(const json_t *dep, int64_t now_ms)
{
	char took[32];
	struct text t;

	if (!text_open(&t))
		return NULL;
	ctl_fmt_duration(span(jint(dep, "created_ms"), jint(dep, "finished_ms"), now_ms), took);
	put(t.f, jstr(dep, "id"));
	fputc(' ', t.f);
	put(t.f, jstr(dep, "deployment"));
	fputc(' ', t.f);
	put(t.f, jstr(dep, "version"));
	fprintf(t.f, " %s in %s", jstr(dep, "state"), took);
	if (jint(dep, "failed_hosts") > 0)
		fprintf(t.f, ", %lld host%s failed", (long long)jint(dep, "failed_hosts"),
		        jint(dep, "failed_hosts") == 1 ? "" : "s");
	if (jstr(dep, "reason")[0]) {
		fputs(": ", t.f);
		put(t.f, jstr(dep, "reason"));
	}
	fputc('\n', t.f);
	summary_baseline(t.f, dep);
	return text_close(&t);
}

/* ------------------------------------------------------- plan errors */

static bool starts_with_field(const char *msg, const char *field)
{
	size_t n = strlen(field);
	return strncmp(msg, field, n) == 0 && msg[n] == ':';
}

static void plan_error(FILE *f, const json_t *e, const char *file)
{
	int64_t line = jint(e, "line");
	const char *field = jstr(e, "field");

	put(f, file);
	if (line > 0)
		fprintf(f, ":%lld", (long long)line);
	fputs(": ", f);
	/* Some messages name their field already. */
	if (field[0] && !starts_with_field(jstr(e, "message"), field)) {
		put(f, field);
		fputs(": ", f);
	}
	put(f, jstr(e, "message")[0] ? jstr(e, "message") : jstr(e, "code"));
	fputc('\n', f);
}

char *ctl_render_plan_errors(const json_t *error, const char *file)
{
	const json_t *list = jarr(error, "errors"), *e;
	struct text t;
	size_t i;

	if (!text_open(&t))
		return NULL;
	if (json_array_size(list) == 0)
		plan_error(t.f, error, file);
	json_array_foreach(list, i, e) plan_error(t.f, e, file);
	return text_close(&t);
}

/* ------------------------------------------------------------ dry run */

static const char *plural(int64_t n)
{
	return n == 1 ? "" : "s";
}

static void put_argv(FILE *f, const json_t *argv)
{
	const json_t *a;
	size_t i;

	json_array_foreach(argv, i, a)
	{
		if (i > 0)
			fputc(' ', f);
		put(f, json_string_value(a) ? json_string_value(a) : "");
	}
}

static void put_list(FILE *f, const json_t *arr)
{
	const json_t *a;
	size_t i;

	if (json_array_size(arr) == 0)
		fputs("(no host)", f);
	json_array_foreach(arr, i, a)
	{
		if (i > 0)
			fputs(", ", f);
		put(f, json_string_value(a) ? json_string_value(a) : "");
	}
}

static void preview_hooks(FILE *f, const json_t *phase)
{
	const char *name = jstr(phase, "phase");
	bool mig = is(name, "migrations");
	const json_t *h;
	size_t i;
	char took[32];

	if (json_array_size(jarr(phase, "hooks")) == 0)
		return;
	fprintf(f, "%s (one after another; a failure %s):\n", name,
	        is(name, "pre") ? "stops the deployment before any host changes"
	        : mig           ? "runs the down of those applied, last first"
	                        : "rolls back as the plan says");
	json_array_foreach(jarr(phase, "hooks"), i, h)
	{
		fputs("  ", f);
		put(f, jstr(h, "name"));
		fputs(" on ", f);
		put_list(f, jarr(h, "hosts"));
		ctl_fmt_duration(jint(h, "timeout_ms"), took);
		fprintf(f, " (timeout %s)\n    %s", took, mig ? "up:   " : "run:  ");
		put_argv(f, jarr(h, mig ? "up" : "run"));
		fputc('\n', f);
		if (mig) {
			fputs("    down: ", f);
			put_argv(f, jarr(h, "down"));
			fputc('\n', f);
		}
	}
}

/* "http :8080/health 200-299 every 1s (2 ok in a row; 3 failed: unhealthy),
 * healthy within 1m". */
static void preview_health(FILE *f, const json_t *h)
{
	const json_t *http = json_object_get(h, "http"), *tcp = json_object_get(h, "tcp");

	fputs("      health gate: ", f);
	if (http) {
		fprintf(f, "GET :%lld", (long long)jint(http, "port"));
		put(f, jstr(http, "path"));
		fputc(' ', f);
		put(f, jstr(http, "expect_status"));
	} else if (tcp) {
		fprintf(f, "tcp :%lld", (long long)jint(tcp, "port"));
	} else if (json_object_get(h, "exec")) {
		fputs("exec ", f);
		put_argv(f, jarr(h, "exec"));
	} else {
		fputs("none (process alive)", f);
	}
	fputs(" every ", f);
	put(f, jstr(h, "interval"));
	fprintf(f, ", %lld ok in a row to pass, %lld failed to fail, healthy within ",
	        (long long)jint(h, "healthy_threshold"), (long long)jint(h, "unhealthy_threshold"));
	put(f, jstr(h, "deadline"));
	fputc('\n', f);
}

static void put_amount(FILE *f, const json_t *v)
{
	if (json_is_string(v))
		put(f, json_string_value(v));
	else
		fprintf(f, "%lld", (long long)json_integer_value(v));
}

static void preview_failure(FILE *f, const json_t *fl)
{
	fputs("      failures: at most ", f);
	put_amount(f, json_object_get(fl, "max_failed_hosts"));
	if (json_object_get(fl, "max_failed_per_batch")) {
		fputs(" (per batch ", f);
		put_amount(f, json_object_get(fl, "max_failed_per_batch"));
		fputc(')', f);
	}
	fputs(" failed host(s), then roll back the ", f);
	put(f, jstr(fl, "rollback"));
	fputc('\n', f);
}

static void preview_host(FILE *f, const json_t *h)
{
	const char *change = jstr(h, "change");

	fputs("      ", f);
	put(f, jstr(h, "id"));
	fputs("  ", f);
	if (is(change, "unchanged")) {
		fputs("unchanged (", f);
		put(f, jstr(h, "to_version"));
		fputs(" runs already: only its health is checked)", f);
	} else {
		put(f, jstr(h, "from_version")[0] ? jstr(h, "from_version") : "(none)");
		fputs(" -> ", f);
		put(f, jstr(h, "to_version"));
	}
	if (!json_is_true(json_object_get(h, "online")))
		fputs("  OFFLINE: would fail at its deadline", f);
	fputc('\n', f);
}

static void preview_step(FILE *f, const json_t *st)
{
	const char *kind = jstr(st, "kind");
	const json_t *pause = json_object_get(st, "pause");
	char took[32];

	fputs("      ", f);
	if (is(kind, "batch")) {
		fprintf(f, "batch %lld/%lld: ", (long long)jint(st, "index"),
		        (long long)jint(st, "of"));
		put_list(f, jarr(st, "hosts"));
	} else if (is(kind, "canary")) {
		fprintf(f, "step %lld/%lld %lld%%: ", (long long)jint(st, "index"),
		        (long long)jint(st, "of"), (long long)jint(st, "percent"));
		if (json_array_size(jarr(st, "hosts")) == 0)
			fputs("no more hosts", f);
		else
			put_list(f, jarr(st, "hosts"));
		if (json_is_true(json_object_get(st, "traffic")))
			fprintf(f, "; traffic %lld%% to the new release",
			        (long long)jint(st, "percent"));
		if (json_is_string(pause)) {
			fputs("; then wait for drover promote", f);
		} else if (json_is_integer(pause)) {
			ctl_fmt_duration(json_integer_value(pause), took);
			fprintf(f, "; then pause %s", took);
		}
	} else if (is(kind, "green")) {
		fputs("start the new release beside the old (green, port ", f);
		fprintf(f, "%lld) on ", (long long)jint(st, "port"));
		put_list(f, jarr(st, "hosts"));
	} else if (is(kind, "set")) {
		fputs("start the new release on set ", f);
		put(f, jstr(st, "set"));
		if (json_is_true(json_object_get(st, "first")))
			fputs(" (no set is live yet)", f);
		fprintf(f, " (port %lld): ", (long long)jint(st, "port"));
		put_list(f, jarr(st, "hosts"));
	} else if (is(kind, "switch") && jstr(st, "from")[0]) {
		fputs("switch traffic from set ", f);
		put(f, jstr(st, "from"));
		fputs(" to set ", f);
		put(f, jstr(st, "to"));
	} else if (is(kind, "switch")) {
		fputs("switch traffic to green", f);
	} else if (is(kind, "decommission")) {
		ctl_fmt_duration(jint(st, "after_ms"), took);
		fprintf(f, "after %s stop set ", took);
		put(f, jstr(st, "set"));
		fputs(": ", f);
		put_list(f, jarr(st, "hosts"));
	} else if (is(kind, "finalize")) {
		ctl_fmt_duration(jint(st, "after_ms"), took);
		fprintf(f, "finalize after %s (stop blue)", took);
	}
	fputc('\n', f);
}

static void preview_service(FILE *f, const json_t *svc)
{
	const json_t *v, *an = json_object_get(svc, "analysis");
	char img[CLEAN_MAX];
	size_t i;

	fputs("    ", f);
	put(f, jstr(svc, "name"));
	fputs("  ", f);
	put(f, jstr(svc, "strategy"));
	fprintf(f, "  %s\n", image_text(svc, img, sizeof(img)));
	json_array_foreach(jarr(svc, "hosts"), i, v) preview_host(f, v);
	json_array_foreach(jarr(svc, "steps"), i, v) preview_step(f, v);
	preview_health(f, json_object_get(svc, "health"));
	if (json_is_object(an)) {
		fputs("      analysis: GET ", f);
		put(f, jstr(an, "url"));
		fprintf(f, " must read at most %g\n",
		        json_number_value(json_object_get(an, "max")));
	}
	preview_failure(f, json_object_get(svc, "failure"));
}

static void preview_tiers(FILE *f, const json_t *p)
{
	const json_t *tier, *svc;
	size_t i, j;

	json_array_foreach(jarr(p, "tiers"), i, tier)
	{
		fputs("  tier ", f);
		put(f, jstr(tier, "name"));
		fputs(i == 0 ? "\n" : " (when the tier before is healthy)\n", f);
		json_array_foreach(jarr(tier, "services"), j, svc) preview_service(f, svc);
	}
}

static void preview_tail(FILE *f, const json_t *p)
{
	const json_t *v;
	size_t i;
	char took[32];

	if (json_array_size(jarr(p, "offline")) > 0) {
		fputs("offline now (a real run waits for them until the step's deadline): ", f);
		put_list(f, jarr(p, "offline"));
		fputc('\n', f);
	}
	json_array_foreach(jarr(p, "skipped"), i, v)
	{
		fputs("skipped: ", f);
		put(f, jstr(v, "agent"));
		fputs(" (", f);
		put(f, jstr(v, "status"));
		fputs(") matches ", f);
		put(f, jstr(v, "where"));
		fputs(" but is not accepted\n", f);
	}
	if (jint(p, "wait_ms") > 0) {
		ctl_fmt_duration(jint(p, "wait_ms"), took);
		fprintf(f, "pauses and finalize delays: at least %s\n", took);
	}
}

char *ctl_render_preview(const json_t *p)
{
	int64_t changes = jint(p, "changes"), same = jint(p, "unchanged");
	const json_t *phase;
	struct text t;
	size_t i;

	if (!text_open(&t))
		return NULL;
	fputs("dry run of ", t.f);
	put(t.f, jstr(p, "deployment"));
	fputc(' ', t.f);
	put(t.f, jstr(p, "version"));
	fprintf(t.f, ": %lld change%s, %lld host%s unchanged; nothing was changed\n",
	        (long long)changes, plural(changes), (long long)same, plural(same));
	json_array_foreach(jarr(p, "phases"), i, phase)
	{
		const char *name = jstr(phase, "phase");

		if (is(name, "prestage")) {
			fprintf(t.f, "prestage: %lld host%s pull and verify their images first\n",
			        (long long)jint(phase, "hosts"), plural(jint(phase, "hosts")));
		} else if (is(name, "tiers")) {
			fputs("tiers (in order):\n", t.f);
			preview_tiers(t.f, p);
		} else {
			preview_hooks(t.f, phase);
		}
	}
	preview_tail(t.f, p);
	return text_close(&t);
}
