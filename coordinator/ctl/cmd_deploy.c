/*
 * cmd_deploy.c: drover deploy FILE [--wait | --dry-run] [--json]: submit
 * a plan and, with --wait, follow the deployment to its end; with
 * --dry-run, show what it would do and change nothing.
 *
 * The plan's bytes go to POST /v1/deployments as they are (YAML or JSON by
 * the file's extension, else by its first character), with ?source=FILE so
 * the coordinator's messages name the file. --wait follows
 * /v1/events?deployment=ID: a terminal gets a progress view redrawn from
 * the deployment re-read on events; a pipe one plain line per change,
 * printed from the events themselves in the order the engine recorded
 * them (render.h, ctl_render_event); the exit status follows the final
 * state (ctl_state_exit).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "atomicfile.h"
#include "client.h"
#include "clock.h"
#include "ctl.h"
#include "err.h"
#include "output.h"
#include "render.h"

#define PLAN_MAX (1u << 20) /* the API's body cap */
/* Re-read the deployment at most this often for host events (a big fleet
 * sends thousands); state changes are always read at once. */
#define REREAD_MIN_MS 250

struct deploy_opts {
	bool wait, json, dry_run;
	const char *file;
	const char *env; /* --env NAME: the environment to deploy to */
};

struct watch {
	const struct ctl *ctl;
	char path[300]; /* GET path of the deployment */
	json_t *last;   /* the deployment as last shown */
	bool tty;
	int64_t read_ms;           /* when the deployment was last read (monotonic) */
	int lines;                 /* lines of the frame on screen (tty) */
	FILE *out;                 /* progress: stdout, or stderr with --json */
	struct ctl_follow *follow; /* plain lines from events (not a tty) */
};

static int parse(int argc, char **argv, struct deploy_opts *o)
{
	static const struct option longopts[] = {
	        {"wait", no_argument, NULL, 'w'},
	        {"json", no_argument, NULL, 'j'},
	        {"dry-run", no_argument, NULL, 'n'},
	        {"env", required_argument, NULL, 'e'},
	        {NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "w", longopts, NULL)) != -1) {
		if (c == 'w')
			o->wait = true;
		else if (c == 'j')
			o->json = true;
		else if (c == 'n')
			o->dry_run = true;
		else if (c == 'e')
			o->env = optarg;
		else
			return -1;
	}
	if (optind + 1 != argc || (o->dry_run && o->wait))
		return -1;
	o->file = argv[optind];
	return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static const char *content_type(const char *file, const char *text)
{
	if (ends_with(file, ".json"))
		return "application/json";
	if (ends_with(file, ".yaml") || ends_with(file, ".yml"))
		return "application/yaml";
	text += strspn(text, " \t\r\n");
	return text[0] == '{' ? "application/json" : "application/yaml";
}

static int read_plan(const char *file, char **text, size_t *len)
{
	int rc = drv_read_file(file, PLAN_MAX, text, len);

	if (rc == DRV_ETOOBIG)
		fprintf(stderr, "drover deploy: %s is larger than the API's 1 MiB limit\n", file);
	else if (rc != DRV_OK)
		fprintf(stderr, "drover deploy: cannot read %s: %s\n", file,
		        rc == DRV_ENOENT ? "no such file" : drv_strerror(rc));
	return rc;
}

/* A refused plan: every error as FILE:LINE: field: message. */
static int report_refusal(const struct ctl *ctl, const struct ctl_reply *r, const char *file)
{
	const json_t *err = json_object_get(r->json, "error");
	const char *code = json_string_value(json_object_get(err, "code"));
	char *text;

	if (r->status != 400 || !code || strcmp(code, "invalid-plan") != 0) {
		ctl_report(ctl, r, file);
		return ctl_exit_code(r);
	}
	text = ctl_render_plan_errors(err, file);
	if (text)
		fputs(text, stderr);
	free(text);
	fprintf(stderr, "drover deploy: %s\n",
	        json_string_value(json_object_get(err, "message"))
	                ? json_string_value(json_object_get(err, "message"))
	                : "the plan is invalid");
	return CTL_EXIT_USAGE;
}

/* POST the plan; on success *dep is the new deployment object (with
 * dry_run, the coordinator's preview of it). */
static int submit(const struct ctl *ctl, const struct deploy_opts *o, json_t **dep)
{
	const char *file = o->file;
	bool dry_run = o->dry_run;
	struct ctl_reply r;
	char path[1500], esc[1024], eesc[256] = "", *text;
	size_t len;
	int code;

	if (ctl_escape(file, esc, sizeof(esc)) != DRV_OK) {
		fprintf(stderr, "drover deploy: the file name is too long\n");
		return CTL_EXIT_USAGE;
	}
	if (o->env != NULL &&
	    (o->env[0] == '\0' || ctl_escape(o->env, eesc, sizeof(eesc)) != DRV_OK)) {
		fprintf(stderr, "drover deploy: --env needs an environment's name\n");
		return CTL_EXIT_USAGE;
	}
	if (read_plan(file, &text, &len) != DRV_OK)
		return CTL_EXIT_USAGE;
	snprintf(path, sizeof(path), "/v1/deployments?source=%s%s%s%s", esc,
	         dry_run ? "&dry_run=true" : "", o->env ? "&env=" : "", eesc);
	ctl_request(ctl, "POST", path, content_type(file, text), text, len, &r);
	free(text);
	code = ctl_exit_code(&r);
	if (code == CTL_EXIT_OK && !json_is_object(r.json)) {
		fprintf(stderr, "drover deploy: the coordinator's reply is not a deployment\n");
		code = CTL_EXIT_FAILED;
	} else if (code != CTL_EXIT_OK) {
		code = report_refusal(ctl, &r, file);
	} else {
		*dep = json_incref(r.json);
	}
	ctl_reply_free(&r);
	return code;
}

/* ---------------------------------------------------------- --wait */

static int term_width(FILE *f)
{
	struct winsize ws;

	if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 80;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void show(struct watch *w, const json_t *dep)
{
	char *text;

	if (!w->tty)
		return; /* a pipe gets its lines from the events (on_event) */
	text = ctl_render_progress(dep, drv_wall_ms(), term_width(w->out));
	if (!text)
		return;
	if (w->lines > 0)
		fprintf(w->out, "\033[%dA\033[J", w->lines);
	w->lines = count_lines(text);
	fputs(text, w->out);
	fflush(w->out);
	free(text);
}

/* Show dep and keep it; the exit status when it is final, else -1. */
static int update(struct watch *w, json_t *dep)
{
	show(w, dep);
	json_decref(w->last);
	w->last = dep;
	return ctl_state_exit(json_string_value(json_object_get(dep, "state")));
}

/* Events that only move a host or a batch along may be coalesced. */
static bool minor(const char *kind)
{
	return strcmp(kind, "host") == 0 || strcmp(kind, "traffic") == 0 ||
	       strcmp(kind, "hook") == 0 || strcmp(kind, "service") == 0;
}

/* An event after which the deployment may have ended. */
static bool maybe_final(const struct ctl_event *ev)
{
	const char *k = ev->kind;

	if (strcmp(k, "state") == 0)
		return ctl_state_final(json_string_value(
		        json_object_get(json_object_get(ev->data, "data"), "state")));
	return strcmp(k, "succeeded") == 0 || strcmp(k, "failed") == 0 ||
	       strcmp(k, "rolled_back") == 0 || strcmp(k, "aborted") == 0;
}

static void print_event(struct watch *w, const struct ctl_event *ev)
{
	/* The SSE data is the event row; its "data" member what the engine said. */
	char *text =
	        ctl_render_event(w->follow, ev->id, ev->kind, json_object_get(ev->data, "data"));

	if (text)
		fputs(text, w->out);
	fflush(w->out);
	free(text);
}

static int on_event(const struct ctl_event *ev, void *ctx)
{
	struct watch *w = ctx;
	json_t *dep = NULL;
	int code;

	if (w->follow != NULL) {
		print_event(w, ev);
		if (!maybe_final(ev))
			return 0;
	} else if (minor(ev->kind) && drv_mono_ms() - w->read_ms < REREAD_MIN_MS) {
		return 0;
	}
	w->read_ms = drv_mono_ms();
	code = ctl_call(w->ctl, "GET", w->path, NULL, &dep);
	if (code != CTL_EXIT_OK)
		return code;
	if (!json_is_object(dep)) {
		json_decref(dep);
		fprintf(stderr, "drover deploy: the coordinator's reply is not a deployment\n");
		return CTL_EXIT_FAILED;
	}
	code = update(w, dep);
	if (code < 0)
		return 0;
	return code == CTL_EXIT_OK ? CTL_STREAM_DONE : code;
}

/* Follow dep (the caller's reference is taken) to its end. *final gets the
 * deployment as last read (the caller decrefs; NULL if none). */
int ctl_follow_deployment(const struct ctl *ctl, json_t *dep, FILE *out, json_t **final)
{
	struct watch w = {.ctl = ctl, .out = out, .tty = ctl_is_tty(out)};
	const char *id = json_string_value(json_object_get(dep, "id"));
	char esc[256], events[400];
	int64_t last_id = 0;
	int code;

	if (!id || ctl_escape(id, esc, sizeof(esc)) != DRV_OK) {
		fprintf(stderr, "drover deploy: the deployment has no usable id\n");
		json_decref(dep);
		return CTL_EXIT_FAILED;
	}
	snprintf(w.path, sizeof(w.path), "/v1/deployments/%s", esc);
	/* A terminal re-reads the object on events: tail=1 (the newest event
	 * comes at once, so the object is re-read after the stream is open and
	 * nothing is missed). A pipe prints the events themselves: every one
	 * since the deployment was created. */
	snprintf(events, sizeof(events), "/v1/events?deployment=%s&tail=%d&follow=1", esc,
	         w.tty ? 1 : 1000);
	if (w.tty) {
		fprintf(stderr,
		        "(Ctrl-C stops watching; the deployment goes on: drover status %s)\n", id);
	} else {
		char *first;

		w.follow = ctl_follow_new(dep);
		first = ctl_render_changes(NULL, dep); /* "dep-7 pending (phase prestage)" */
		if (w.follow == NULL || first == NULL) {
			free(first);
			ctl_follow_free(w.follow);
			json_decref(dep);
			fprintf(stderr, "drover deploy: out of memory\n");
			return CTL_EXIT_FAILED;
		}
		fputs(first, w.out);
		free(first);
	}
	code = update(&w, dep);
	if (code < 0)
		code = ctl_events_stream(ctl, events, true, &last_id, on_event, &w);
	if (w.last && ctl_state_final(json_string_value(json_object_get(w.last, "state")))) {
		char *line = w.follow ? ctl_follow_end(w.follow, w.last) : NULL;

		if (line)
			fputs(line, out);
		free(line);
		line = ctl_render_summary(w.last, drv_wall_ms());
		if (line)
			fputs(line, out);
		free(line);
	}
	ctl_follow_free(w.follow);
	*final = w.last;
	return code;
}

/* Exit 0 when nothing would change, 1 when something would (a refused
 * plan exited 2 before: terraform plan -detailed-exitcode's convention). */
static int show_preview(json_t *p, bool json)
{
	json_int_t changes = json_integer_value(json_object_get(p, "changes"));
	char *text;

	if (json) {
		ctl_print_json(stdout, p);
	} else {
		text = ctl_render_preview(p);
		if (text)
			fputs(text, stdout);
		free(text);
	}
	json_decref(p);
	return changes > 0 ? CTL_EXIT_FAILED : CTL_EXIT_OK;
}

static int run(struct ctl *ctl, int argc, char **argv)
{
	struct deploy_opts o = {0};
	json_t *dep = NULL, *last = NULL;
	int code;

	if (parse(argc, argv, &o) != 0) {
		ctl_usage(&ctl_cmd_deploy, stderr);
		return CTL_EXIT_USAGE;
	}
	code = submit(ctl, &o, &dep);
	if (code != CTL_EXIT_OK)
		return code;
	if (o.dry_run)
		return show_preview(dep, o.json);
	if (!o.wait) {
		if (o.json)
			ctl_print_json(stdout, dep);
		else
			printf("%s created: %s %s (%s)\n", ctl_str(dep, "id"),
			       ctl_str(dep, "deployment"), ctl_str(dep, "version"),
			       ctl_str(dep, "state"));
		json_decref(dep);
		return CTL_EXIT_OK;
	}
	code = ctl_follow_deployment(ctl, dep, o.json ? stderr : stdout, &last);
	if (o.json && last)
		ctl_print_json(stdout, last);
	json_decref(last);
	return code;
}

const struct ctl_cmd ctl_cmd_deploy = {
        .name = "deploy",
        .usage = "deploy [--wait | --dry-run] [--json] [--env NAME] FILE",
        .summary = "start a deployment from a plan (--env: in that environment of "
                   "droverd.yaml); --wait follows it to the end; --dry-run "
                   "shows what it would do (exit 0 no change, 1 changes, 2 plan error)",
        .run = run,
};
