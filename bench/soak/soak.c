/*
 * soak.c — the churn soak guest (issue 7 step 5), run by bench/soak.py.
 *
 *   wisp run soak.wasm SECONDS GROUPS WORKERS CRASH_PERMILLE SEED
 *
 * main is the top supervisor (traps exits). It starts a tally process, a
 * counter process and GROUPS group supervisors (linked); each group
 * supervisor traps exits and keeps WORKERS workers alive, restarting any
 * that crash. A worker loops over steps, each one of:
 *   - peer exchange: asks its supervisor for a random live sibling, monitors
 *     it, sends it 1..4 DATA messages and waits until each is acked or the
 *     sibling's DOWN arrives (serving its own mailbox meanwhile);
 *   - counter: a DATA request to the counter process (never crashes);
 *   - helper: spawns a short-lived helper process (monitored) that sends it
 *     one DATA message and ends; waits for the message and the DOWN;
 *   - timers: sets 1..4 send_after timers to itself (0..2 ms), cancels each
 *     with probability 1/2, and waits for the ones not cancelled; sets a
 *     timer an hour away with a 4 KiB payload and cancels it (its memory
 *     must be freed at once, or RSS grows);
 *   - flood: spawns a victim with a 256 KiB memory limit that never
 *     receives, floods it with 8 KiB messages and waits for its DOWN, whose
 *     reason must be LIMIT (the host ends a process its mailbox overfills).
 * After a step it crashes (__builtin_trap) with CRASH_PERMILLE/1000.
 *
 * Exact accounting. Every counted DATA message is counted by its sender when
 * sent and by its receiver when received; both report their counter deltas
 * to the tally (a synchronous request) before any point where they may
 * crash, every 64 steps, and before ending. A receiver acks a peer DATA
 * message right after counting it, with no crash point in between, and a
 * worker never crashes with unacked messages outstanding. A message sent to
 * a process that dies is dropped (docs/abi.md); since a process's last acks
 * reach the sender before its DOWN (docs/abi.md, ordering), the messages
 * still unacked when the sender receives the peer's DOWN are exactly the
 * ones dropped: the sender counts them as drops. So at the end
 *   peer_sent == peer_received + drops, counter_sent == counter_received,
 *   helper_sent == helper_received
 * must hold exactly. main prints `STAT ...` lines every 2 s and a final
 * `RESULT ...` line; exit status 0 iff everything matched.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wisp/guest.h>

enum {
	T_PEER = 1, T_ACK, T_HELPER, T_COUNT, T_REPORT, T_SNAP, T_GETPEER,
	T_STOP, T_DONE, T_STARTED, T_SUP, T_FINAL, T_TIMER, T_FLOOD,
};

/* Counter deltas a worker/helper/supervisor reports to the tally. */
enum {
	C_PEER_SENT, C_PEER_RECV, C_DROPS, C_COUNTER_SENT, C_COUNTER_RECV,
	C_HELPER_SENT, C_HELPER_RECV, C_HELPERS_SPAWNED, C_HELPERS_ENDED,
	C_WORKERS_STARTED, C_WORKERS_ENDED, C_CRASHES, C_RESTARTS, C_STEPS,
	C_TIMERS_SET, C_TIMERS_CANCELLED, C_TIMERS_RECV, C_FAR_SET, C_FAR_CANCELLED,
	C_FLOODS, C_FLOOD_LIMITS,
	C_N
};
static const char *const NAMES[C_N] = {
	"peer_sent", "peer_recv", "drops", "counter_sent", "counter_recv",
	"helper_sent", "helper_recv", "helpers_spawned", "helpers_ended",
	"workers_started", "workers_ended", "crashes", "restarts", "steps",
	"timers_set", "timers_cancelled", "timers_recv", "far_set", "far_cancelled",
	"floods", "flood_limits",
};

struct delta { uint64_t c[C_N]; };

static void die(const char *what, int32_t rc)
{
	fprintf(stderr, "soak: %s failed (%d)\n", what, rc);
	fflush(stderr);
	__builtin_trap();
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static void send_or_die(wisp_pid_t to, uint64_t tag, const void *d, uint32_t n)
{
	int32_t rc = wisp_send(to, tag, d, n);
	if (rc != WISP_OK)
		die("wisp_send", rc);
}

/* Synchronous report: the tally has the delta once this returns. */
static void report(wisp_pid_t tally, struct delta *d)
{
	struct wisp_msg_info info;
	char b[8];
	int32_t rc = wisp_request(tally, T_REPORT, d, sizeof *d, WISP_INFINITY, b,
	                          sizeof b, &info);
	if (rc != WISP_OK)
		die("report to tally", rc);
	memset(d, 0, sizeof *d);
}

/* ---- tally: sums reports; answers snapshots ---- */

static void tally_main(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	struct delta total, d;
	memset(&total, 0, sizeof total);
	for (;;) {
		struct wisp_msg_info info;
		int32_t rc = wisp_receive(NULL, 0, WISP_INFINITY, &d, sizeof d, &info);
		if (rc != WISP_OK)
			die("tally receive", rc);
		if (info.kind != WISP_MSG_DATA)
			continue;
		if (info.tag == T_REPORT && info.len == sizeof d) {
			for (int i = 0; i < C_N; i++)
				total.c[i] += d.c[i];
			if (info.ref)
				send_or_die(info.from, info.ref, "", 0);
		} else if (info.tag == T_SNAP) {
			send_or_die(info.from, info.ref, &total, sizeof total);
		}
	}
}

/* ---- counter: counts the DATA requests it gets ---- */

static void counter_main(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	uint64_t n = 0;
	for (;;) {
		struct wisp_msg_info info;
		char b[64];
		int32_t rc = wisp_receive(NULL, 0, WISP_INFINITY, b, sizeof b, &info);
		if (rc != WISP_OK)
			die("counter receive", rc);
		if (info.kind != WISP_MSG_DATA)
			continue;
		if (info.tag == T_COUNT) {
			n++;
			send_or_die(info.from, info.ref, "", 0);
		} else if (info.tag == T_FINAL) {
			send_or_die(info.from, info.ref, &n, sizeof n);
		}
	}
}

/* ---- helper: one DATA message to its worker, then ends ---- */

struct helper_arg { wisp_pid_t worker, tally; uint64_t value; };

static void helper_main(const void *arg, uint32_t len)
{
	struct helper_arg a;
	if (len != sizeof a)
		die("helper arg", (int32_t)len);
	memcpy(&a, arg, sizeof a);
	uint64_t v = a.value * 2654435761u;
	send_or_die(a.worker, T_HELPER, &v, sizeof v);
	struct delta d;
	memset(&d, 0, sizeof d);
	d.c[C_HELPER_SENT] = 1;
	report(a.tally, &d);
}

/* ---- worker ---- */

struct worker_arg { wisp_pid_t sup, tally, counter; uint64_t seed; uint32_t crash_permille; };

struct worker {
	struct worker_arg a;
	struct delta d;
	uint64_t rng;
	int stopping;
	/* Checked after every step: a worker whose memory changed under it
	 * (another process writing it) says so instead of losing counts. */
	wisp_pid_t self;
	uint64_t reported_at;   /* the step of the last report */
	/* the current peer exchange */
	wisp_pid_t peer;
	uint64_t peer_ref;
	uint32_t outstanding;
	/* the current helper */
	uint64_t helper_ref;
	int helper_msg, helper_down;
	/* timers not cancelled, still to arrive */
	uint32_t timers_due;
	/* the current flood victim */
	uint64_t victim_ref;
	int victim_down;
};

/* Handles one message (any kind). */
static void worker_handle(struct worker *w, struct wisp_msg_info *info, const char *buf)
{
	if (info->kind == WISP_MSG_DOWN) {
		if (w->peer_ref && info->tag == w->peer_ref) {
			w->d.c[C_DROPS] += w->outstanding;
			w->outstanding = 0;
			w->peer_ref = 0;
		} else if (w->helper_ref && info->tag == w->helper_ref) {
			w->helper_down = 1;
			w->d.c[C_HELPERS_ENDED]++;
		} else if (w->victim_ref && info->tag == w->victim_ref) {
			struct wisp_exit_reason why;
			memcpy(&why, buf, sizeof why);
			w->victim_down = 1;
			w->d.c[C_FLOOD_LIMITS] += why.kind == WISP_EXIT_LIMIT;
		} else {
			die("worker: unexpected DOWN", (int32_t)info->tag);
		}
		return;
	}
	if (info->kind == WISP_MSG_EXIT)
		die("worker: unexpected EXIT", 0);
	switch (info->tag) {
	case T_PEER:
		w->d.c[C_PEER_RECV]++;
		send_or_die(info->from, T_ACK, "", 0);
		break;
	case T_ACK:
		if (info->from != w->peer || w->outstanding == 0)
			die("worker: stray ack", 0);
		w->outstanding--;
		break;
	case T_HELPER:
		w->d.c[C_HELPER_RECV]++;
		w->helper_msg = 1;
		break;
	case T_STOP:
		w->stopping = 1;
		break;
	case T_TIMER:
		if (w->timers_due == 0)
			die("worker: a cancelled timer arrived", 0);
		w->timers_due--;
		w->d.c[C_TIMERS_RECV]++;
		break;
	default:
		die("worker: unexpected tag", (int32_t)info->tag);
	}
}

static int worker_pump(struct worker *w, int64_t timeout)
{
	struct wisp_msg_info info;
	char buf[256];   /* a DOWN's reason text included */
	int32_t rc = wisp_receive(NULL, 0, timeout, buf, sizeof buf, &info);
	if (rc == WISP_ETIMEDOUT)
		return 0;
	if (rc != WISP_OK)
		die("worker receive", rc);
	worker_handle(w, &info, buf);
	return 1;
}

static void step_peer(struct worker *w)
{
	struct wisp_msg_info info;
	wisp_pid_t peer = 0;
	int32_t rc = wisp_request(w->a.sup, T_GETPEER, "", 0, WISP_INFINITY, &peer,
	                          sizeof peer, &info);
	if (rc != WISP_OK)
		die("GETPEER", rc);
	if (!peer)
		return;
	w->peer = peer;
	if ((rc = wisp_monitor(peer, &w->peer_ref)) != WISP_OK)
		die("monitor", rc);
	uint32_t k = 1 + (uint32_t)(rng_next(&w->rng) % 4);
	for (uint32_t i = 0; i < k; i++) {
		uint64_t v = rng_next(&w->rng);
		send_or_die(peer, T_PEER, &v, sizeof v);
		w->d.c[C_PEER_SENT]++;
		w->outstanding++;
	}
	while (w->outstanding && w->peer_ref)
		worker_pump(w, WISP_INFINITY);
	if (w->peer_ref) {
		wisp_demonitor(w->peer_ref);   /* flushes a queued DOWN too */
		w->peer_ref = 0;
	}
	w->peer = 0;
}

static void step_counter(struct worker *w)
{
	struct wisp_msg_info info;
	char b[8];
	uint64_t v = rng_next(&w->rng);
	w->d.c[C_COUNTER_SENT]++;
	int32_t rc = wisp_request(w->a.counter, T_COUNT, &v, sizeof v, WISP_INFINITY, b,
	                          sizeof b, &info);
	if (rc != WISP_OK)
		die("counter request", rc);
}

static void step_helper(struct worker *w)
{
	struct helper_arg ha = { wisp_self(), w->a.tally, rng_next(&w->rng) };
	w->helper_msg = w->helper_down = 0;
	if (!wisp_spawn_monitor(helper_main, &ha, sizeof ha, &w->helper_ref))
		die("spawn helper", 0);
	w->d.c[C_HELPERS_SPAWNED]++;
	while (!w->helper_msg || !w->helper_down)
		worker_pump(w, WISP_INFINITY);
	w->helper_ref = 0;
}

static void step_timers(struct worker *w)
{
	uint32_t k = 1 + (uint32_t)(rng_next(&w->rng) % 4);
	char small[16] = { 0 };
	for (uint32_t i = 0; i < k; i++) {
		uint64_t id;
		int64_t delay = (int64_t)(rng_next(&w->rng) % 2000000);
		int32_t rc = wisp_send_after(wisp_self(), T_TIMER, small, sizeof small, delay, &id);
		if (rc != WISP_OK)
			die("send_after", rc);
		w->d.c[C_TIMERS_SET]++;
		/* Cancelled before it fired: it never arrives; else it does. */
		if (rng_next(&w->rng) % 2 && wisp_cancel_timer(id) == WISP_OK)
			w->d.c[C_TIMERS_CANCELLED]++;
		else
			w->timers_due++;
	}
	static char far[4096];
	uint64_t id;
	int32_t rc = wisp_send_after(wisp_self(), T_TIMER, far, sizeof far, 3600000000000LL, &id);
	if (rc != WISP_OK)
		die("send_after far", rc);
	w->d.c[C_FAR_SET]++;
	if ((rc = wisp_cancel_timer(id)) != WISP_OK)
		die("cancel far", rc);
	w->d.c[C_FAR_CANCELLED]++;
	while (w->timers_due)
		worker_pump(w, WISP_INFINITY);
}

static void victim_main(const void *arg, uint32_t len)
{
	(void)arg;
	(void)len;
	uint64_t never = 0x7fffffff;
	char b[8];
	struct wisp_msg_info info;
	wisp_receive(&never, 1, WISP_INFINITY, b, sizeof b, &info);
}

static void step_flood(struct worker *w)
{
	int32_t h;
	int32_t rc = wisp_caps_new(&h);
	if (rc != WISP_OK)
		die("caps_new", rc);
	if ((rc = wisp_caps_limit(h, WISP_LIMIT_MEMORY, 256 << 10)) != WISP_OK)
		die("caps_limit", rc);
	struct wisp_spawned s;
	rc = wisp_spawn_with(h, (uint32_t)(uintptr_t)victim_main, NULL, 0, WISP_SPAWN_MONITOR, &s);
	if (rc != WISP_OK)
		die("spawn victim", rc);
	wisp_caps_free(h);
	w->victim_ref = s.monitor;
	w->victim_down = 0;
	w->d.c[C_FLOODS]++;
	static char chunk[8192];
	for (int i = 0; i < 64 && !w->victim_down; i++) {
		send_or_die(s.pid, T_FLOOD, chunk, sizeof chunk);
		while (worker_pump(w, WISP_NOWAIT))
			;
	}
	while (!w->victim_down)
		worker_pump(w, WISP_INFINITY);
	w->victim_ref = 0;
}

static void worker_main(const void *arg, uint32_t len)
{
	struct worker w;
	memset(&w, 0, sizeof w);
	if (len != sizeof w.a)
		die("worker arg", (int32_t)len);
	memcpy(&w.a, arg, sizeof w.a);
	w.rng = w.a.seed * 0x9E3779B97F4A7C15ull ^ wisp_self();
	if (!w.rng)
		w.rng = 1;
	w.self = wisp_self();
	w.d.c[C_WORKERS_STARTED] = 1;
	report(w.a.tally, &w.d);
	for (uint64_t step = 1;; step++) {
		while (worker_pump(&w, WISP_NOWAIT))
			;
		if (w.stopping)
			break;
		uint64_t r = rng_next(&w.rng) % 100;
		if (r < 50)
			step_peer(&w);
		else if (r < 70)
			step_counter(&w);
		else if (r < 85)
			step_helper(&w);
		else if (r < 97)
			step_timers(&w);
		else
			step_flood(&w);
		w.d.c[C_STEPS]++;
		if (w.self != wisp_self() || w.d.c[C_STEPS] != step - w.reported_at) {
			fprintf(stderr, "soak: worker %" PRIu64 " memory changed under it: self %" PRIu64
			        ", %" PRIu64 " steps counted of %" PRIu64 "\n", (uint64_t)wisp_self(),
			        (uint64_t)w.self, w.d.c[C_STEPS], step - w.reported_at);
			fflush(stderr);
		}
		if (rng_next(&w.rng) % 1000 < w.a.crash_permille) {
			report(w.a.tally, &w.d);
			__builtin_trap();
		}
		if (step % 64 == 0) {
			report(w.a.tally, &w.d);
			w.reported_at = step;
		}
	}
	report(w.a.tally, &w.d);
}

/* ---- group supervisor ---- */

#define MAX_WORKERS 256

struct group_arg { wisp_pid_t top, tally, counter; uint64_t seed; uint32_t workers, crash_permille; };

static void group_main(const void *arg, uint32_t len)
{
	struct group_arg g;
	if (len != sizeof g)
		die("group arg", (int32_t)len);
	memcpy(&g, arg, sizeof g);
	wisp_trap_exit(1);
	wisp_pid_t kids[MAX_WORKERS];
	uint64_t rng = g.seed * 0xD1B54A32D192ED03ull ^ wisp_self();
	uint64_t incarnation = 0;
	struct worker_arg wa = { wisp_self(), g.tally, g.counter, 0, g.crash_permille };
	for (uint32_t i = 0; i < g.workers; i++) {
		wa.seed = g.seed + (++incarnation) * 7919;
		if (!(kids[i] = wisp_spawn_link(worker_main, &wa, sizeof wa)))
			die("spawn worker", 0);
	}
	uint32_t live = g.workers;
	int stopping = 0;
	unsigned odd_ends = 0;
	while (!stopping || live) {
		struct wisp_msg_info info;
		char buf[256];
		int32_t rc = wisp_receive(NULL, 0, 500000000, buf, sizeof buf, &info);
		if (rc == WISP_OK && info.kind == WISP_MSG_EXIT) {
			struct wisp_exit_reason why;
			memcpy(&why, buf, sizeof why);
			uint32_t i;
			for (i = 0; i < g.workers && kids[i] != info.from; i++)
				;
			if (i == g.workers) {
				if (info.from == g.top)
					return;   /* the top supervisor ended */
				die("group: EXIT from a stranger", (int32_t)why.kind);
			}
			/* Reported at once (an asynchronous send: the tally never
			 * ends), so the live count in the STAT lines does not lag. */
			struct delta e;
			memset(&e, 0, sizeof e);
			e.c[C_WORKERS_ENDED] = 1;
			e.c[C_CRASHES] = why.kind != WISP_EXIT_NORMAL;
			kids[i] = 0;
			/* A worker ends normally, or by its own __builtin_trap after
			 * reporting; any other end loses its unreported counts, and
			 * says why here (the first few). */
			const char *text = buf + sizeof why;
			size_t tl = info.len > sizeof why ? info.len - sizeof why : 0;
			if (why.kind != WISP_EXIT_NORMAL &&
			    !(why.kind == WISP_EXIT_TRAP && tl >= 11 && memcmp(text, "unreachable", 11) == 0) &&
			    odd_ends++ < 10)
				fprintf(stderr, "soak: a worker ended unexpectedly: kind %u: %.*s\n", why.kind,
				        (int)tl, text);
			if (stopping || why.kind == WISP_EXIT_NORMAL) {
				live--;
			} else {
				wa.seed = g.seed + (++incarnation) * 7919;
				if (!(kids[i] = wisp_spawn_link(worker_main, &wa, sizeof wa)))
					die("respawn worker", 0);
				e.c[C_RESTARTS] = 1;
			}
			send_or_die(g.tally, T_REPORT, &e, sizeof e);
		} else if (rc == WISP_OK && info.kind == WISP_MSG_DATA && info.tag == T_GETPEER) {
			wisp_pid_t p = 0;
			if (!stopping && g.workers > 1) {
				uint32_t i = (uint32_t)(rng_next(&rng) % g.workers);
				if (kids[i] == info.from)
					i = (i + 1) % g.workers;
				p = kids[i];
			}
			send_or_die(info.from, info.ref, &p, sizeof p);
		} else if (rc == WISP_OK && info.kind == WISP_MSG_DATA && info.tag == T_STOP) {
			stopping = 1;
			for (uint32_t i = 0; i < g.workers; i++)
				if (kids[i])
					send_or_die(kids[i], T_STOP, "", 0);
		} else if (rc != WISP_OK && rc != WISP_ETIMEDOUT) {
			die("group receive", rc);
		}
	}
	send_or_die(g.top, T_DONE, "", 0);
}

/* ---- main: the top supervisor ---- */

static struct delta snapshot(wisp_pid_t tally)
{
	struct delta t;
	struct wisp_msg_info info;
	int32_t rc = wisp_request(tally, T_SNAP, "", 0, WISP_INFINITY, &t, sizeof t, &info);
	if (rc != WISP_OK)
		die("snapshot", rc);
	return t;
}

static void print_counts(const char *head, const struct delta *t, double secs, uint32_t fixed)
{
	uint64_t live = fixed + t->c[C_WORKERS_STARTED] - t->c[C_WORKERS_ENDED]
	                + t->c[C_HELPERS_SPAWNED] - t->c[C_HELPERS_ENDED];
	uint64_t sent = t->c[C_PEER_SENT] + t->c[C_COUNTER_SENT] + t->c[C_HELPER_SENT];
	uint64_t recv = t->c[C_PEER_RECV] + t->c[C_COUNTER_RECV] + t->c[C_HELPER_RECV];
	printf("%s t=%.1f sent=%" PRIu64 " received=%" PRIu64 " live=%" PRIu64, head, secs, sent,
	       recv, live);
	for (int i = 0; i < C_N; i++)
		printf(" %s=%" PRIu64, NAMES[i], t->c[i]);
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: soak.wasm SECONDS GROUPS WORKERS CRASH_PERMILLE SEED\n");
		return 2;
	}
	double seconds = atof(argv[1]);
	uint32_t groups = (uint32_t)atoi(argv[2]);
	uint32_t workers = (uint32_t)atoi(argv[3]);
	uint32_t crash = (uint32_t)atoi(argv[4]);
	uint64_t seed = strtoull(argv[5], NULL, 10);
	if (!groups || groups > 4096 || !workers || workers > MAX_WORKERS) {
		fprintf(stderr, "soak: bad GROUPS/WORKERS\n");
		return 2;
	}
	wisp_trap_exit(1);
	wisp_pid_t tally = wisp_spawn_link(tally_main, NULL, 0);
	wisp_pid_t counter = wisp_spawn_link(counter_main, NULL, 0);
	if (!tally || !counter)
		die("spawn tally/counter", 0);
	wisp_pid_t *sups = calloc(groups, sizeof *sups);
	struct group_arg ga = { wisp_self(), tally, counter, 0, workers, crash };
	for (uint32_t i = 0; i < groups; i++) {
		ga.seed = seed * 1000003u + i;
		if (!(sups[i] = wisp_spawn_link(group_main, &ga, sizeof ga)))
			die("spawn group", 0);
	}
	uint32_t fixed = 3 + groups;
	uint64_t sup_restarts = 0;
	uint64_t t0 = now_ns(), end = t0 + (uint64_t)(seconds * 1e9);
	uint64_t next = t0 + 2000000000u;
	int failed = 0;
	for (;;) {
		uint64_t now = now_ns();
		if (now >= end)
			break;
		if (now >= next) {
			struct delta t = snapshot(tally);
			struct wisp_msg_info ci;
			int32_t crc = wisp_request(counter, T_FINAL, "", 0, WISP_INFINITY,
			                           &t.c[C_COUNTER_RECV], sizeof t.c[0], &ci);
			if (crc != WISP_OK)
				die("counter count", crc);
			print_counts("STAT", &t, (now - t0) / 1e9, fixed);
			printf(" sup_restarts=%" PRIu64 "\n", sup_restarts);
			fflush(stdout);
			next += 2000000000u;
			continue;
		}
		uint64_t wait = (next < end ? next : end) - now;
		struct wisp_msg_info info;
		char buf[256];
		int32_t rc = wisp_receive(NULL, 0, (int64_t)wait, buf, sizeof buf, &info);
		if (rc == WISP_ETIMEDOUT)
			continue;
		if (rc != WISP_OK)
			die("top receive", rc);
		if (info.kind != WISP_MSG_EXIT)
			continue;
		struct wisp_exit_reason why;
		memcpy(&why, buf, sizeof why);
		if (info.from == tally || info.from == counter) {
			fprintf(stderr, "soak: tally/counter ended (reason %u)\n", why.kind);
			return 1;
		}
		for (uint32_t i = 0; i < groups; i++) {
			if (sups[i] == info.from) {
				/* Its workers died with it (links): their last deltas are
				 * lost, so the run can no longer balance exactly. */
				fprintf(stderr, "soak: group supervisor %u ended (reason %u); restarting\n",
				        i, why.kind);
				failed = 1;
				ga.seed = seed * 1000003u + i + 7777777u * ++sup_restarts;
				if (!(sups[i] = wisp_spawn_link(group_main, &ga, sizeof ga)))
					die("respawn group", 0);
			}
		}
	}
	/* Stop: each group stops its workers and says DONE once all ended. */
	for (uint32_t i = 0; i < groups; i++)
		send_or_die(sups[i], T_STOP, "", 0);
	uint64_t done_tag = T_DONE;
	for (uint32_t i = 0; i < groups; i++) {
		struct wisp_msg_info info;
		char buf[64];
		int32_t rc = wisp_receive(&done_tag, 1, 60000000000LL, buf, sizeof buf, &info);
		if (rc != WISP_OK)
			die("waiting for groups to stop", rc);
	}
	uint64_t counted = 0;
	struct wisp_msg_info info;
	int32_t rc = wisp_request(counter, T_FINAL, "", 0, WISP_INFINITY, &counted,
	                          sizeof counted, &info);
	if (rc != WISP_OK)
		die("counter final", rc);
	struct delta t = snapshot(tally);
	/* The counter's own count replaces what no worker reports. */
	t.c[C_COUNTER_RECV] = counted;
	int64_t unaccounted = (int64_t)(t.c[C_PEER_SENT] - t.c[C_PEER_RECV] - t.c[C_DROPS])
	                      + (int64_t)(t.c[C_COUNTER_SENT] - t.c[C_COUNTER_RECV])
	                      + (int64_t)(t.c[C_HELPER_SENT] - t.c[C_HELPER_RECV]);
	int ok = !failed && unaccounted == 0 && t.c[C_HELPERS_SPAWNED] == t.c[C_HELPERS_ENDED]
	         && t.c[C_HELPERS_SPAWNED] == t.c[C_HELPER_SENT]
	         && t.c[C_WORKERS_STARTED] == t.c[C_WORKERS_ENDED]
	         && t.c[C_TIMERS_SET] == t.c[C_TIMERS_CANCELLED] + t.c[C_TIMERS_RECV]
	         && t.c[C_FAR_SET] == t.c[C_FAR_CANCELLED]
	         && t.c[C_FLOODS] == t.c[C_FLOOD_LIMITS];
	print_counts("RESULT", &t, (now_ns() - t0) / 1e9, 3 + groups);
	printf(" sup_restarts=%" PRIu64 " unaccounted=%" PRId64 " ok=%d\n", sup_restarts,
	       unaccounted, ok);
	fflush(stdout);
	return ok ? 0 : 1;
}
