/*
 * wisp_report.c — wisp_process.supervisor_report: supervisor reports in
 * the runtime's log, beside the crash reports (src/proc/report.c).
 *
 * Supervisors are guest code (the Rust crate's, any guest's own): only the
 * supervisor knows that a child's end is followed by a restart, that a
 * child did not start, or that its restart intensity is used up. So the
 * supervisor writes the report, through this call, as OTP's supervisor
 * calls the logger; the host owns the log's format, level, rate limit and
 * escaping, so a guest's report reads like any other and cannot forge one
 * (every text in it is the guest's, escaped, after wisp's own words).
 * Rejected: the host guessing restarts from the exits of a supervisor's
 * linked children (it would need to know which processes are supervisors,
 * and could still not tell a restart from a child the supervisor forgot).
 *
 * The record names the supervisor (the caller: pid and registered names),
 * the event, the child's id and pid, how it ended (the EXIT payload the
 * supervisor received, passed on as it is) or why it did not start, and
 * for the intensity the limit passed. Texts are bounded; every pointer
 * must lie in the caller's memory (else the caller traps, as for any
 * call); an unknown event is WISP_EINVAL.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "dist/dist.h"
#include "wisp_api.h"

#define NS(name) Z_wisp_processZ_##name
#define SELF struct host_proc *hp = HOST_PROC(self)

#define ID_MAX 255
#define ERROR_MAX 511

/* What the guest's record says, copied out of its memory. */
struct sup_report {
	uint32_t event;
	uint64_t child;
	char id[ID_MAX + 1];
	bool has_reason;
	struct reason reason;
	char error[ERROR_MAX + 1];
	uint32_t max_restarts, period_ms;
};

/* Copy at most cap - 1 bytes of the guest text [addr, addr + len) (all of
 * it must be in memory), up to a NUL; a longer text is cut where a UTF-8
 * character starts and ends with "...". */
static void copy_text(struct host_proc *hp, u32 addr, u32 len, char *out, size_t cap)
{
	const char *p = api_ptr(hp, addr, len, "wisp_supervisor_report");
	size_t n = strnlen(p, len);
	if (n >= cap) {
		n = cap - 4;
		while (n > 0 && ((unsigned char)p[n] & 0xc0) == 0x80)
			n--;
		memcpy(out + n, "...", 4);
	} else {
		out[n] = '\0';
	}
	memcpy(out, p, n);
}

/* The report at addr, or WISP_EINVAL. */
static u32 read_report(struct host_proc *hp, u32 addr, struct sup_report *r)
{
	struct wisp_sup_report g;
	memcpy(&g, api_ptr(hp, addr, sizeof(g), "wisp_supervisor_report"), sizeof(g));
	if (g.event < WISP_SUP_RESTARTING || g.event > WISP_SUP_GIVING_UP || g.reserved != 0)
		return WISP_EINVAL;
	if (g.reason_len != 0 && g.reason_len < sizeof(struct wisp_exit_reason))
		return WISP_EINVAL;
	r->event = g.event;
	r->child = g.child;
	r->max_restarts = g.max_restarts;
	r->period_ms = g.period_ms;
	copy_text(hp, g.id, g.id_len, r->id, sizeof(r->id));
	copy_text(hp, g.error, g.error_len, r->error, sizeof(r->error));
	r->has_reason = g.reason_len != 0;
	memset(&r->reason, 0, sizeof(r->reason));
	if (r->has_reason) {
		const unsigned char *p = api_ptr(hp, g.reason, g.reason_len, "wisp_supervisor_report");
		struct wisp_exit_reason er;
		memcpy(&er, p, sizeof(er));
		r->reason.kind = er.kind;
		r->reason.code = er.code;
		size_t tl = g.reason_len - sizeof(er);
		if (er.kind == WISP_EXIT_TERM) {
			/* A term's bytes: kept whole if they fit, else not at all. */
			r->reason.code = tl <= sizeof(r->reason.text) ? (int32_t)tl : 0;
			memcpy(r->reason.text, p + sizeof(er), (size_t)r->reason.code);
		} else {
			copy_text(hp, g.reason + (u32)sizeof(er), (u32)tl, r->reason.text,
			          sizeof(r->reason.text));
		}
	}
	return WISP_OK;
}

static const char *event_name(uint32_t event)
{
	switch (event) {
	case WISP_SUP_RESTARTING: return "restarting";
	case WISP_SUP_CHILD_ENDED: return "child_ended";
	case WISP_SUP_START_FAILED: return "start_failed";
	default: return "giving_up";
	}
}

/* How a reason reads in a text report: "trapped: unreachable in f". */
static void text_reason(struct log_rec *rec, const struct reason *r)
{
	switch (r->kind) {
	case WISP_EXIT_TRAP:
		log_printf(rec, r->code == WISP_TRAP_PANIC ? "panicked: " : "trapped: ");
		log_text_lines(rec, r->text, "    ");
		return;
	case WISP_EXIT_LIMIT:
		log_printf(rec, "ended by a limit: ");
		log_text(rec, r->text);
		return;
	case WISP_EXIT_CODE:
		log_printf(rec, "exited with code %d", r->code);
		return;
	case WISP_EXIT_TERM: {
		char term[512];
		dist_print_term(r->text, reason_text_len(r), term, sizeof(term));
		log_printf(rec, "ended with reason ");
		log_text(rec, term);
		return;
	}
	default:
		log_printf(rec, "%s", proc_reason_name(r));
		if (r->text[0] != '\0') {
			log_printf(rec, ": ");
			log_text(rec, r->text);
		}
	}
}

static void json_reason(struct log_rec *rec, const struct reason *r)
{
	log_printf(rec, ",\"reason\":{\"kind\":");
	log_json_str(rec, proc_reason_name(r));
	if (r->kind == WISP_EXIT_CODE)
		log_printf(rec, ",\"code\":%d", r->code);
	char term[512];
	const char *text = r->text;
	if (r->kind == WISP_EXIT_TERM) {
		dist_print_term(r->text, reason_text_len(r), term, sizeof(term));
		text = term;
	}
	if (text[0] != '\0') {
		log_printf(rec, ",\"text\":");
		log_json_str(rec, text);
	}
	log_printf(rec, "}");
}

/* "child ID (process PID)" */
static void text_child(struct log_rec *rec, const struct sup_report *r)
{
	log_printf(rec, "child ");
	log_text(rec, r->id);
	if (r->child != 0)
		log_printf(rec, " (process %llx)", (unsigned long long)r->child);
}

static void text_report(struct log_rec *rec, uint64_t sup, const char *names, size_t nlen,
                        const struct sup_report *r)
{
	log_printf(rec, "wisp: supervisor report: supervisor %llx", (unsigned long long)sup);
	for (const char *n = names; n < names + nlen; n += strlen(n) + 1) {
		log_printf(rec, n == names ? " (" : ", ");
		log_text(rec, n);
		if (n + strlen(n) + 1 >= names + nlen)
			log_printf(rec, ")");
	}
	log_printf(rec, ": ");
	switch (r->event) {
	case WISP_SUP_RESTARTING:
	case WISP_SUP_CHILD_ENDED:
		text_child(rec, r);
		log_printf(rec, " ended: ");
		if (r->has_reason)
			text_reason(rec, &r->reason);
		else
			log_printf(rec, "(reason unknown)");
		log_printf(rec, r->event == WISP_SUP_RESTARTING ? "; restarting it" : "; not restarted");
		break;
	case WISP_SUP_START_FAILED:
		text_child(rec, r);
		log_printf(rec, " did not start: ");
		log_text(rec, r->error);
		break;
	case WISP_SUP_GIVING_UP:
		log_printf(rec, "more than %u restarts in %u ms: shutting down", r->max_restarts,
		           r->period_ms);
		if (r->id[0] != '\0' || r->child != 0) {
			log_printf(rec, "; the last: ");
			text_child(rec, r);
			if (r->has_reason) {
				log_printf(rec, " ended: ");
				text_reason(rec, &r->reason);
			}
		}
		break;
	}
	log_printf(rec, "\n");
}

static void json_report(struct log_rec *rec, uint64_t sup, const char *names, size_t nlen,
                        const struct sup_report *r)
{
	log_printf(rec, ",\"pid\":\"%llx\",\"names\":[", (unsigned long long)sup);
	for (const char *n = names; n < names + nlen; n += strlen(n) + 1) {
		log_printf(rec, "%s", n == names ? "" : ",");
		log_json_str(rec, n);
	}
	log_printf(rec, "],\"report\":");
	log_json_str(rec, event_name(r->event));
	log_printf(rec, ",\"child\":{\"id\":");
	log_json_str(rec, r->id);
	if (r->child != 0)
		log_printf(rec, ",\"pid\":\"%llx\"", (unsigned long long)r->child);
	log_printf(rec, "}");
	if (r->has_reason)
		json_reason(rec, &r->reason);
	if (r->event == WISP_SUP_START_FAILED) {
		log_printf(rec, ",\"error\":");
		log_json_str(rec, r->error);
	}
	if (r->event == WISP_SUP_GIVING_UP)
		log_printf(rec, ",\"max_restarts\":%u,\"period_ms\":%u", r->max_restarts,
		           r->period_ms);
}

u32 NS(supervisor_report)(void *self, u32 addr)
{
	SELF;
	struct sup_report r;
	u32 rc = read_report(hp, addr, &r);
	if (rc != WISP_OK || hp->proc == NULL)
		return rc;
	struct log *log = proc_log(hp->proc);
	struct log_rec *rec = log_begin_guest(log, LOG_ERROR, "supervisor");
	if (rec == NULL)
		return WISP_OK;              /* off, or rate-limited (counted) */
	uint64_t sup = proc_pid(hp->proc);
	char names[512];
	size_t nlen = proc_names(hp->proc, names, sizeof(names));
	if (nlen > sizeof(names))
		nlen = 0;
	if (log_is_json(rec))
		json_report(rec, sup, names, nlen, &r);
	else
		text_report(rec, sup, names, nlen, &r);
	log_end(log, rec);
	return WISP_OK;
}
