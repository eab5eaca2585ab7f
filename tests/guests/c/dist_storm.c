/*
 * dist_storm.c — many pairs of processes on two nodes playing ping-pong
 * across their one connection while it is cut or the other node is
 * killed (tests/e2e/test_dist_storm.py). The connection is read by
 * whichever scheduler polls, one reader at a time; this is what must hold
 * whichever thread reads, and whichever tears the connection down.
 *
 *   storm PEER K M   register as "hub", connect to PEER (retrying until it
 *                    listens) and start K pingers. Pinger i asks PEER's
 *                    hub for a partner (its hub spawns a worker for it,
 *                    which monitors the pinger and says ready), links to
 *                    and monitors the worker, and plays ping-pong with it
 *                    with WINDOW numbers in flight: PING (i, s) for s = 0,
 *                    1, 2, ... is answered PONG (i, s). Each side checks
 *                    that every number is the next one (none lost,
 *                    repeated or out of order) and that nothing of its
 *                    partner's comes after the partner's EXIT or DOWN.
 *                    This node's workers do the same for PEER's pingers.
 *                    Prints
 *                      "running"  once each of its pingers had M answers
 *                    and, once each of its K pingers and K workers has
 *                    had its partner's EXIT and DOWN:
 *                      "pingers K exit E down D bad B"
 *                      "workers K exit E down D bad B"
 *                    (E, D: how many had reason NOCONNECTION; B: numbers
 *                    out of order, and messages after the EXIT or DOWN).
 *                    Then it reaches PEER's hub again (retrying every
 *                    100 ms: a new connection) and prints "reconnected".
 *                    It answers hubs' calls until killed.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wisp/guest.h>

#define HELLO 1     /* pinger -> PEER's hub: payload i */
#define READY 2     /* worker -> pinger */
#define PING 3      /* (i, s) */
#define PONG 4      /* (i, s) */
#define REACHED 5   /* pinger -> its hub: M answers */
#define PRESULT 6   /* pinger -> its hub: struct result */
#define WRESULT 7   /* worker -> its hub: struct result */
#define CALL 8      /* hub -> PEER's hub, after the loss */
#define ANSWER 9

#define WINDOW 8
#define MS 1000000LL

struct pair_msg {
	uint32_t i;
	uint32_t s;
};

struct result {
	uint32_t exit_kind, down_kind;   /* 0xffffffff: none came */
	uint32_t bad;
};

struct pinger_arg {
	wisp_pid_t hub;
	uint32_t i, m;
	char peer[200];
};

struct worker_arg {
	wisp_pid_t hub, pinger;
	uint32_t i;
};

#define NONE 0xffffffffu

static uint32_t reason_kind(const char *buf)
{
	struct wisp_exit_reason r;
	memcpy(&r, buf, sizeof r);
	return r.kind;
}

/* What a partner's EXIT or DOWN, or a message after them, does to r;
 * true once both came. */
static bool partner_ended(struct result *r, const struct wisp_msg_info *info, const char *buf,
                          wisp_pid_t partner, uint64_t mon)
{
	if (info->kind == WISP_MSG_EXIT && info->from == partner)
		r->exit_kind = reason_kind(buf);
	else if (info->kind == WISP_MSG_DOWN && info->tag == mon)
		r->down_kind = reason_kind(buf);
	return r->exit_kind != NONE && r->down_kind != NONE;
}

static void pinger(const void *arg, uint32_t len)
{
	(void)len;
	struct pinger_arg a;
	memcpy(&a, arg, sizeof a);
	wisp_trap_exit(1);
	struct wisp_msg_info info;
	char buf[64];
	uint64_t ready_tag[1] = { READY };
	wisp_node_send_name(a.peer, "hub", HELLO, &a.i, sizeof a.i);
	if (wisp_receive(ready_tag, 1, 60000 * MS, buf, sizeof buf, &info) != WISP_OK)
		exit(20);
	wisp_pid_t w = info.from;
	uint64_t mon;
	wisp_link(w);
	wisp_monitor(w, &mon);
	struct result r = { NONE, NONE, 0 };
	uint32_t next_send = 0, next_pong = 0;
	for (; next_send < WINDOW; next_send++) {
		struct pair_msg p = { a.i, next_send };
		wisp_send(w, PING, &p, sizeof p);
	}
	for (;;) {
		if (wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info) != WISP_OK)
			continue;
		if (info.kind == WISP_MSG_DATA && info.tag == PONG && info.from == w) {
			struct pair_msg p;
			memcpy(&p, buf, sizeof p);
			bool after_end = r.exit_kind != NONE || r.down_kind != NONE;
			if (after_end || info.len != sizeof p || p.i != a.i || p.s != next_pong)
				r.bad++;
			next_pong = p.s + 1;
			if (next_pong == a.m)
				wisp_send(a.hub, REACHED, "", 0);
			if (!after_end) {
				struct pair_msg q = { a.i, next_send++ };
				wisp_send(w, PING, &q, sizeof q);
			}
		} else if (info.kind != WISP_MSG_DATA && partner_ended(&r, &info, buf, w, mon)) {
			wisp_send(a.hub, PRESULT, &r, sizeof r);
			return;
		}
	}
}

static void worker(const void *arg, uint32_t len)
{
	(void)len;
	struct worker_arg a;
	memcpy(&a, arg, sizeof a);
	wisp_trap_exit(1);
	uint64_t mon;
	wisp_monitor(a.pinger, &mon);
	wisp_send(a.pinger, READY, "", 0);
	struct result r = { NONE, NONE, 0 };
	uint32_t next = 0;
	for (;;) {
		struct wisp_msg_info info;
		char buf[64];
		if (wisp_receive(NULL, 0, WISP_INFINITY, buf, sizeof buf, &info) != WISP_OK)
			continue;
		if (info.kind == WISP_MSG_DATA && info.tag == PING && info.from == a.pinger) {
			struct pair_msg p;
			memcpy(&p, buf, sizeof p);
			if (r.exit_kind != NONE || r.down_kind != NONE || info.len != sizeof p ||
			    p.i != a.i || p.s != next)
				r.bad++;
			next = p.s + 1;
			wisp_send(a.pinger, PONG, &p, sizeof p);
		} else if (info.kind != WISP_MSG_DATA && partner_ended(&r, &info, buf, a.pinger, mon)) {
			wisp_send(a.hub, WRESULT, &r, sizeof r);
			return;
		}
	}
}

struct tally {
	uint32_t n, exits, downs, bad;
};

static void count(struct tally *t, const char *buf)
{
	struct result r;
	memcpy(&r, buf, sizeof r);
	t->n++;
	t->exits += r.exit_kind == WISP_EXIT_NOCONNECTION;
	t->downs += r.down_kind == WISP_EXIT_NOCONNECTION;
	t->bad += r.bad;
}

/* Until PEER's hub answers a call (it may not be registered yet when the
 * connection is up), answering its calls meanwhile. */
static void meet(const char *peer)
{
	uint64_t tags[2] = { CALL, ANSWER };
	for (;;) {
		struct wisp_msg_info info;
		char buf[8];
		wisp_node_send_name(peer, "hub", CALL, "", 0);
		int64_t deadline = 100 * MS;
		while (wisp_receive(tags, 2, deadline, buf, sizeof buf, &info) == WISP_OK) {
			if (info.tag == ANSWER)
				return;
			wisp_send(info.from, ANSWER, "", 0);
		}
	}
}

static int storm(const char *peer, uint32_t k, uint32_t m)
{
	if (wisp_register_name("hub", wisp_self()) != WISP_OK)
		return 3;
	while (wisp_node_connect_name(peer) != WISP_OK)
		wisp_sleep(100 * MS);
	meet(peer);
	for (uint32_t i = 0; i < k; i++) {
		struct pinger_arg a = { wisp_self(), i, m, "" };
		snprintf(a.peer, sizeof a.peer, "%s", peer);
		if (wisp_spawn(pinger, &a, sizeof a) == 0)
			return 4;
	}
	struct tally pingers = { 0 }, workers = { 0 };
	uint32_t reached = 0;
	bool told = false, reconnected = false;
	for (;;) {
		struct wisp_msg_info info;
		char buf[64];
		int64_t wait = told && !reconnected ? 100 * MS : WISP_INFINITY;
		int32_t rc = wisp_receive(NULL, 0, wait, buf, sizeof buf, &info);
		if (rc == WISP_ETIMEDOUT) {
			wisp_node_send_name(peer, "hub", CALL, "", 0);
			continue;
		}
		if (rc != WISP_OK || info.kind != WISP_MSG_DATA)
			continue;
		if (info.tag == HELLO && info.len == sizeof(uint32_t)) {
			struct worker_arg a = { wisp_self(), info.from, 0 };
			memcpy(&a.i, buf, sizeof a.i);
			if (wisp_spawn(worker, &a, sizeof a) == 0)
				return 5;
		} else if (info.tag == REACHED && ++reached == k) {
			printf("running\n");
			fflush(stdout);
		} else if (info.tag == PRESULT) {
			count(&pingers, buf);
		} else if (info.tag == WRESULT) {
			count(&workers, buf);
		} else if (info.tag == CALL) {
			wisp_send(info.from, ANSWER, "", 0);
		} else if (info.tag == ANSWER && told && !reconnected) {
			reconnected = true;
			printf("reconnected\n");
			fflush(stdout);
		}
		if (!told && pingers.n == k && workers.n == k) {
			told = true;
			printf("pingers %u exit %u down %u bad %u\n", k, pingers.exits, pingers.downs,
			       pingers.bad);
			printf("workers %u exit %u down %u bad %u\n", k, workers.exits, workers.downs,
			       workers.bad);
			fflush(stdout);
		}
	}
}

int main(int argc, char **argv)
{
	if (argc >= 5 && strcmp(argv[1], "storm") == 0)
		return storm(argv[2], (uint32_t)atoi(argv[3]), (uint32_t)atoi(argv[4]));
	fprintf(stderr, "usage: dist_storm storm PEER K M\n");
	return 2;
}
