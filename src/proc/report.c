/*
 * report.c — crash reports: one record in the runtime's log (src/common/
 * log.c) for every process that ends abnormally, as Erlang's SASL writes a
 * crash report for a process that dies of anything but `normal`,
 * `shutdown` or `{shutdown, _}`.
 *
 * Which ends are crashes, and at which level:
 *
 *   - its own trap (a wasm trap, a host function's verdict on a broken
 *     contract), a panic (wisp_process.panic), a limit of its capabilities
 *     (CPU, memory, a message pushed past its memory), a kill (wisp_kill,
 *     a purge, a kill from another node): error;
 *   - a panic its caller flagged as expected (a test that must panic):
 *     info;
 *   - its own exit with a nonzero code (proc_exit, an exit signal to
 *     itself): info. A code is the process's orderly answer — a program's
 *     status, the Rust crate's supervisor stopping a child with code 70 and
 *     giving up with 71 — which wisp cannot tell from a failure, so it is
 *     no crash by default (`--log-level info` shows them);
 *   - NORMAL and SHUTDOWN (the runtime stopping): never;
 *   - an exit signal from another process (a link's, exit_signal, NOPROC
 *     for a link to the dead, NOCONNECTION): never. As in Erlang, the
 *     process did not fail, another did, whose own end was reported (if it
 *     was a crash); its links and monitors carry the reason on, and a
 *     supervisor that restarts it says so in a supervisor report.
 *
 * The main process is reported like any other (the CLI's last line, "wisp:
 * trap: ...", follows as the run's status).
 *
 * The record: pid, registered names, the reason, who killed it, its age
 * and reductions, and the backtrace the engine kept (engine_result.frames:
 * where it trapped, or where it was when a kill or limit unwound it),
 * each wasm function with its source file and line when the module
 * carried DWARF. Every crash (level error) is also noted in the log's
 * ring of the last LOG_RECENT, for the dashboard, before the level or the
 * rate limit is asked. Symbolizing may read DWARF, so it runs on the scheduler
 * thread's stack, and only once the log has admitted the record: a crash
 * storm's suppressed reports cost a counter each.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "proc_impl.h"

/* Wasm functions a report lists at most. */
#define REPORT_FRAMES 32

struct log *proc_log(const struct proc *p)
{
	return p->rt->cfg.log;
}

/* The level of p's end, or LOG_NONE when it is no crash (see the top). */
static enum log_level end_level(const struct proc *p, const struct reason *why)
{
	if (why->kind == WISP_EXIT_NORMAL || why->kind == WISP_EXIT_SHUTDOWN)
		return LOG_NONE;
	if (p->doomed && p->killed_by == 0 && p->doom_from != 0)
		return LOG_NONE;            /* an exit signal's: not its own */
	if (why->kind == WISP_EXIT_CODE)
		return LOG_INFO;
	if (why->kind == WISP_EXIT_TRAP && why->code == WISP_TRAP_PANIC && p->panic_quiet)
		return LOG_INFO;
	return LOG_ERROR;
}

const char *proc_exit_kind_name(uint32_t kind)
{
	static const char *const names[RT_EXIT_KINDS] = {
		[WISP_EXIT_NORMAL] = "normal", [WISP_EXIT_CODE] = "code",
		[WISP_EXIT_TRAP] = "trap", [WISP_EXIT_KILLED] = "killed",
		[WISP_EXIT_NOPROC] = "noproc", [WISP_EXIT_LIMIT] = "limit",
		[WISP_EXIT_SHUTDOWN] = "shutdown", [WISP_EXIT_NOCONNECTION] = "noconnection",
		[WISP_EXIT_TERM] = "term",
	};
	return kind < RT_EXIT_KINDS && names[kind] != NULL ? names[kind] : "unknown";
}

const char *proc_reason_name(const struct reason *why)
{
	if (why->kind == WISP_EXIT_TRAP && why->code == WISP_TRAP_PANIC)
		return "panic";
	return proc_exit_kind_name(why->kind);
}

/* ---- the backtrace ---- */

struct symbolize {
	engine_module *mod;
	const struct engine_result *res;
	struct engine_frame frames[REPORT_FRAMES];
	size_t n;
};

static void symbolize(void *arg)
{
	struct symbolize *s = arg;
	s->n = engine_backtrace_functions(s->mod, s->res->frames, s->res->nframes, s->frames,
	                                  REPORT_FRAMES);
}

/* A panic's innermost frames are the machinery that reported it (the
 * crate's hook, Rust's std), reached from an entry (core::panicking's
 * functions, std's begin_panic) that the panicking code called: the first
 * frame worth reading is the first after the entry that is not machinery.
 * The walk stops there, not at the last machinery name of the stack:
 * outer frames have such names too (__rust_begin_short_backtrace calls
 * main, the test harness's test_child calls the test), and skipping to
 * them hid the function that panicked. With no entry on the stack (a
 * direct wisp_panic), only the innermost run of machinery is skipped. */
static bool panic_frame_is(const char *name, const char *const *prefixes, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (strncmp(name, prefixes[k], strlen(prefixes[k])) == 0)
			return true;
	return false;
}

static size_t panic_frames_to_skip(const struct symbolize *s)
{
	static const char *const machinery[] = {
		"std::panicking", "core::panicking", "std::sys_common::backtrace",
		"std::sys::backtrace::__rust_end_short_backtrace", "rust_begin_unwind",
		"__rustc::rust_begin_unwind", "__rust_end_short_backtrace",
		"wisp::process::install_panic_hook", "wisp::process::end_with_panic",
		"wisp::test::test_child::{", "wisp_panic",
	};
	static const char *const entry[] = { "core::panicking::", "std::panicking::begin_panic" };
	const size_t nm = sizeof(machinery) / sizeof(machinery[0]);
	size_t skip = 0;
	size_t leading = 0;
	bool entered = false;
	for (size_t i = 0; i < s->n; i++) {
		const char *name = s->frames[i].name;
		if (!panic_frame_is(name, machinery, nm)) {
			if (entered)
				break;
			continue;
		}
		skip = i + 1;
		if (leading == i)
			leading = i + 1;
		entered = entered || panic_frame_is(name, entry, sizeof(entry) / sizeof(entry[0]));
	}
	if (!entered)
		skip = leading;
	return skip < s->n ? skip : 0;
}

/* ---- the record ---- */

/* A TERM reason as text: an atom's name (what `wisp kill PID boom` sends,
 * the common case), else only its size. Atoms are the four atom tags of
 * the external format, which proc decodes itself: the full printer is the
 * dist layer's, above this one. */
static void term_text(const struct reason *why, char *buf, size_t cap)
{
	const unsigned char *t = (const unsigned char *)why->text;
	size_t len = reason_text_len(why);
	size_t head = 0, n = 0;
	if (len >= 2 && (t[0] == 115 || t[0] == 119)) {          /* SMALL_ATOM(_UTF8)_EXT */
		head = 2;
		n = t[1];
	} else if (len >= 3 && (t[0] == 100 || t[0] == 118)) {   /* ATOM(_UTF8)_EXT */
		head = 3;
		n = (size_t)t[1] << 8 | t[2];
	}
	if (head != 0 && head + n == len)
		snprintf(buf, cap, "%.*s", (int)n, (const char *)t + head);
	else
		snprintf(buf, cap, "an Erlang term (%zu bytes)", len);
}

static void text_header(struct log_rec *r, const struct proc *p, uint64_t pid,
                        const struct reason *why, const char *names, size_t nlen)
{
	log_printf(r, "wisp: crash report: process %llx", (unsigned long long)pid);
	if (nlen > 0) {
		log_printf(r, " (");
		for (const char *n = names; n < names + nlen; n += strlen(n) + 1) {
			log_printf(r, "%s", n == names ? "" : ", ");
			log_text(r, n);
		}
		log_printf(r, ")");
	}
	switch (why->kind) {
	case WISP_EXIT_TRAP:
		log_printf(r, why->code == WISP_TRAP_PANIC ? " panicked: " : " trapped: ");
		log_text_lines(r, why->text, "    ");
		break;
	case WISP_EXIT_LIMIT:
		log_printf(r, " was ended by a limit: ");
		log_text(r, why->text);
		break;
	case WISP_EXIT_KILLED:
		if (p->killed_by == pid)
			log_printf(r, " killed itself");
		else if (p->killed_by != 0)
			log_printf(r, " was killed by %llx", (unsigned long long)p->killed_by);
		else
			log_printf(r, " was killed");
		if (why->text[0] != '\0') {
			log_printf(r, ": ");
			log_text(r, why->text);
		}
		break;
	case WISP_EXIT_CODE:
		log_printf(r, " exited with code %d", why->code);
		break;
	case WISP_EXIT_TERM: {
		char term[sizeof(why->text) + 1];
		term_text(why, term, sizeof(term));
		log_printf(r, " ended with reason ");
		log_text(r, term);
		break;
	}
	default:
		log_printf(r, " ended: %s", proc_reason_name(why));
		break;
	}
	log_printf(r, "\n");
}

static void text_body(struct log_rec *r, double age_ms, uint64_t reductions,
                      const struct symbolize *s, size_t skip)
{
	const char *plural = reductions == 1 ? "" : "s";
	if (age_ms < 10000)
		log_printf(r, "    age %.1f ms, %llu reduction%s\n", age_ms,
		           (unsigned long long)reductions, plural);
	else
		log_printf(r, "    age %.1f s, %llu reduction%s\n", age_ms / 1000,
		           (unsigned long long)reductions, plural);
	for (size_t i = skip; i < s->n;) {
		/* A recursion's frames, one line. */
		size_t same = 1;
		while (i + same < s->n && s->frames[i + same].index == s->frames[i].index)
			same++;
		log_printf(r, "    at ");
		log_text(r, s->frames[i].name);
		if (s->frames[i].file != NULL) {
			log_printf(r, " (");
			log_text(r, s->frames[i].file);
			log_printf(r, ":%u)", s->frames[i].line);
		}
		if (same > 1)
			log_printf(r, " (%zu frames)", same);
		log_printf(r, "\n");
		i += same;
	}
}

static void json_body(struct log_rec *r, const struct proc *p, uint64_t pid,
                      const struct reason *why, const char *names, size_t nlen,
                      double age_ms, uint64_t reductions, const struct symbolize *s, size_t skip)
{
	log_printf(r, ",\"pid\":\"%llx\",\"names\":[", (unsigned long long)pid);
	for (const char *n = names; n < names + nlen; n += strlen(n) + 1) {
		log_printf(r, "%s", n == names ? "" : ",");
		log_json_str(r, n);
	}
	log_printf(r, "],\"reason\":{\"kind\":");
	log_json_str(r, proc_reason_name(why));
	if (why->kind == WISP_EXIT_CODE)
		log_printf(r, ",\"code\":%d", why->code);
	if (why->kind == WISP_EXIT_TERM) {
		char term[sizeof(why->text) + 1];
		term_text(why, term, sizeof(term));
		log_printf(r, ",\"text\":");
		log_json_str(r, term);
	} else if (why->text[0] != '\0') {
		log_printf(r, ",\"text\":");
		log_json_str(r, why->text);
	}
	log_printf(r, "}");
	if (why->kind == WISP_EXIT_KILLED && p->killed_by != 0)
		log_printf(r, ",\"killed_by\":\"%llx\"", (unsigned long long)p->killed_by);
	log_printf(r, ",\"main\":%s,\"program\":%s,\"age_ms\":%.3f,\"reductions\":%llu,"
	           "\"backtrace\":[", p->is_main ? "true" : "false",
	           p->program ? "true" : "false", age_ms, (unsigned long long)reductions);
	for (size_t i = skip; i < s->n; i++) {
		log_printf(r, "%s{\"function\":", i == skip ? "" : ",");
		log_json_str(r, s->frames[i].name);
		log_printf(r, ",\"index\":%u", s->frames[i].index);
		if (s->frames[i].file != NULL) {
			log_printf(r, ",\"file\":");
			log_json_str(r, s->frames[i].file);
			log_printf(r, ",\"line\":%u", s->frames[i].line);
		}
		log_printf(r, "}");
	}
	log_printf(r, "]");
}

/* A crash into the log's ring of the last ones (log_note_crash), whatever
 * the level and the rate limit let through: the dashboard's list. */
static void note_crash(struct proc *p, const struct reason *why)
{
	char names[512];
	size_t nlen = proc_names(p, names, sizeof(names));
	if (nlen == 0 || nlen > sizeof(names))
		names[0] = '\0';           /* (its first name only, or none) */
	char term[sizeof(why->text) + 1];
	if (why->kind == WISP_EXIT_TERM)
		term_text(why, term, sizeof(term));
	log_note_crash(p->rt->cfg.log, atomic_load(&p->pid), names, proc_reason_name(why),
	               why->kind == WISP_EXIT_TERM ? term : why->text);
}

void proc_report_end(struct proc *p, const struct reason *why, const struct engine_result *res)
{
	struct log *log = p->rt->cfg.log;
	enum log_level level = end_level(p, why);
	if (level == LOG_ERROR)
		note_crash(p, why);
	if (!log_wants(log, level))
		return;
	struct log_rec *r = log_begin(log, level, "crash");
	if (r == NULL)
		return;                     /* rate-limited (and counted) */
	uint64_t pid = atomic_load(&p->pid);
	double age_ms = (double)(sched_now_ns() - p->born_ns) / 1e6;
	char names[512];
	size_t nlen = proc_names(p, names, sizeof(names));
	if (nlen > sizeof(names))
		nlen = 0;                   /* (too many to show: none shown) */
	struct symbolize *s = malloc(sizeof(*s));
	if (s != NULL) {
		s->mod = p->inst != NULL ? engine_instance_module(p->inst) : NULL;
		s->res = res;
		s->n = 0;
		if (s->mod != NULL && res->nframes > 0)
			sched_call_on_thread_stack(symbolize, s);
	}
	static const struct symbolize none = { .n = 0 };
	const struct symbolize *sym = s != NULL ? s : &none;
	size_t skip = why->kind == WISP_EXIT_TRAP && why->code == WISP_TRAP_PANIC
	              ? panic_frames_to_skip(sym) : 0;
	if (log_is_json(r)) {
		json_body(r, p, pid, why, names, nlen, age_ms, atomic_load_explicit(&p->reductions, memory_order_relaxed), sym, skip);
	} else {
		text_header(r, p, pid, why, names, nlen);
		text_body(r, age_ms, atomic_load_explicit(&p->reductions, memory_order_relaxed), sym, skip);
	}
	free(s);
	log_end(log, r);
}
