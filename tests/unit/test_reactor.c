/* Unit tests for src/io: registered (edge-triggered) fds — each edge
 * reported to the waiter published at the time, a ticket that refuses to
 * park after an edge, a closed file's late events dropped once its number
 * is registered again — and, with real threads, no lost wake-up between a
 * waiter's EAGAIN and its park, and no event delivered to the next user of
 * a closed fd's number while another thread polls. */
#include "unit.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "io/reactor.h"

#define MAX_SEEN 16

struct seen {
	int n;
	uint64_t tokens[MAX_SEEN];
};

static void record(uint64_t token, void *arg)
{
	struct seen *s = arg;
	if (s->n < MAX_SEEN)
		s->tokens[s->n] = token;
	s->n++;
}

static void pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

static void drain(int fd)
{
	char buf[256];
	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

/* Register fd and take the events its registration reports at once, so
 * that what the test polls next is what it did after. */
static void watch_quiet(struct reactor *r, int fd, struct seen *s)
{
	assert_int_equal(reactor_watch(r, fd), 0);
	while (reactor_poll(r, 0, 64, record, s) > 0)
		;
}

static void an_edge_wakes_the_published_waiter_once(void **state)
{
	(void)state;
	struct reactor r;
	assert_int_equal(reactor_init(&r), 0);
	int sv[2];
	pair(sv);
	struct seen s = { 0 };
	/* Registration reports what is ready already (writable): no waiter. */
	watch_quiet(&r, sv[0], &s);
	assert_int_equal(s.n, 0);
	drain(sv[0]);
	uint64_t t = reactor_ticket(&r, sv[0]);
	assert_true(reactor_expect(&r, sv[0], REACTOR_READ, t, 42));
	assert_int_equal(write(sv[1], "x", 1), 1);
	assert_int_equal(reactor_poll(&r, 1000000000, 64, record, &s), 1);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.tokens[0], 42);
	/* The publication was consumed: a second edge is only counted. */
	assert_int_equal(write(sv[1], "y", 1), 1);
	assert_int_equal(reactor_poll(&r, 1000000000, 64, record, &s), 1);
	assert_int_equal(s.n, 1);
	assert_true(reactor_ticket(&r, sv[0]) != t);
	close(sv[0]);
	close(sv[1]);
	reactor_destroy(&r);
}

static void an_edge_since_the_ticket_refuses_the_park(void **state)
{
	(void)state;
	struct reactor r;
	assert_int_equal(reactor_init(&r), 0);
	int sv[2];
	pair(sv);
	struct seen s = { 0 };
	watch_quiet(&r, sv[0], &s);
	uint64_t t = reactor_ticket(&r, sv[0]);
	/* The data comes after the reader's EAGAIN, and the poller takes its
	 * edge before the reader publishes: the reader must not park. */
	assert_int_equal(write(sv[1], "x", 1), 1);
	assert_int_equal(reactor_poll(&r, 1000000000, 64, record, &s), 1);
	assert_false(reactor_expect(&r, sv[0], REACTOR_READ, t, 7));
	/* Nothing was left published: a later edge reports nobody. */
	assert_int_equal(write(sv[1], "y", 1), 1);
	assert_int_equal(reactor_poll(&r, 1000000000, 64, record, &s), 1);
	assert_int_equal(s.n, 0);
	close(sv[0]);
	close(sv[1]);
	reactor_destroy(&r);
}

static void a_reused_fd_number_drops_the_old_files_events(void **state)
{
	(void)state;
	struct reactor r;
	assert_int_equal(reactor_init(&r), 0);
	int old[2];
	pair(old);
	struct seen s = { 0 };
	watch_quiet(&r, old[0], &s);
	/* Another descriptor keeps the old file open, so its registration
	 * outlives the close of its number (as a socket a child program
	 * inherited would). */
	int keep = dup(old[0]);
	assert_true(keep >= 0);
	int num = old[0];
	close(old[0]);
	int fresh[2];
	pair(fresh);
	if (fresh[0] != num) {       /* take the number the old file had */
		assert_int_equal(dup2(fresh[0], num), num);
		close(fresh[0]);
		fresh[0] = num;
	}
	assert_int_equal(reactor_watch(&r, fresh[0]), 0);
	while (reactor_poll(&r, 0, 64, record, &s) > 0)
		;
	uint64_t t = reactor_ticket(&r, fresh[0]);
	assert_true(reactor_expect(&r, fresh[0], REACTOR_READ, t, 77));
	/* The old file's edge is harvested under the old generation. */
	assert_int_equal(write(old[1], "old", 3), 3);
	while (reactor_poll(&r, 50000000, 64, record, &s) > 0)
		;
	assert_int_equal(s.n, 0);
	/* The new file's own edge reaches its waiter. */
	assert_int_equal(write(fresh[1], "new", 3), 3);
	assert_int_equal(reactor_poll(&r, 1000000000, 64, record, &s), 1);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.tokens[0], 77);
	close(keep);
	close(old[1]);
	close(fresh[0]);
	close(fresh[1]);
	reactor_destroy(&r);
}

static void a_moved_registration_is_kept(void **state)
{
	(void)state;
	struct reactor r;
	assert_int_equal(reactor_init(&r), 0);
	int sv[2];
	pair(sv);
	assert_int_equal(reactor_watch(&r, sv[0]), 0);
	/* The socket's next owner registers it again: the same file, kept. */
	struct seen s = { 0 };
	watch_quiet(&r, sv[0], &s);
	uint64_t t = reactor_ticket(&r, sv[0]);
	assert_true(reactor_expect(&r, sv[0], REACTOR_READ, t, 5));
	assert_int_equal(write(sv[1], "x", 1), 1);
	assert_int_equal(reactor_poll(&r, 1000000000, 64, record, &s), 1);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.tokens[0], 5);
	close(sv[0]);
	close(sv[1]);
	reactor_destroy(&r);
}

/* Closing a registered fd whose file lives on in another descriptor (a
 * copy given to a child program): unwatched first, the file leaves the
 * set, and its later edges cost the poller nothing. */
static void an_unwatched_fd_leaves_the_set_though_its_file_lives(void **state)
{
	(void)state;
	struct reactor r;
	assert_int_equal(reactor_init(&r), 0);
	int sv[2];
	pair(sv);
	struct seen s = { 0 };
	watch_quiet(&r, sv[0], &s);
	int copy = dup(sv[0]);
	assert_true(copy >= 0);
	reactor_unwatch(&r, sv[0]);
	close(sv[0]);
	assert_int_equal(write(sv[1], "x", 1), 1);
	assert_int_equal(reactor_poll(&r, 50000000, 64, record, &s), 0);
	assert_int_equal(s.n, 0);
	close(copy);
	close(sv[1]);
	reactor_destroy(&r);
}

/* A connected TCP pair on the loopback: *srv non-blocking. */
static void tcp_pair(int *cli, int *srv)
{
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&a, &al), 0);
	*cli = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(*cli, (struct sockaddr *)&a, sizeof(a)), 0);
	*srv = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	assert_true(*srv >= 0);
	close(l);
}

/* A short read says the socket is empty, so the next read may wait
 * without reading — except when the read stopped at TCP's urgent mark,
 * with bytes after it queued and no edge to come. */
static void a_read_stopped_at_urgent_data_is_not_taken_for_empty(void **state)
{
	(void)state;
	struct reactor r;
	assert_int_equal(reactor_init(&r), 0);
	int cli, srv;
	tcp_pair(&cli, &srv);
	struct seen s = { 0 };
	watch_quiet(&r, srv, &s);
	/* Plain data first: a short read after every edge was taken is
	 * drained (the shortcut applies). */
	assert_int_equal(send(cli, "xy", 2, 0), 2);
	while (reactor_poll(&r, 100000000, 64, record, &s) > 0)
		;
	uint64_t t = reactor_ticket(&r, srv);
	char buf[16];
	assert_int_equal(recv(srv, buf, sizeof(buf), 0), 2);
	assert_true(reactor_drained(&r, srv, t));
	/* Now "ab", urgent "c", "de": the read stops at the mark. */
	assert_int_equal(send(cli, "ab", 2, 0), 2);
	assert_int_equal(send(cli, "c", 1, MSG_OOB), 1);
	assert_int_equal(send(cli, "de", 2, 0), 2);
	usleep(50000);
	while (reactor_poll(&r, 100000000, 64, record, &s) > 0)
		;
	t = reactor_ticket(&r, srv);
	assert_int_equal(recv(srv, buf, sizeof(buf), 0), 2);
	assert_memory_equal(buf, "ab", 2);
	assert_false(reactor_drained(&r, srv, t));
	assert_int_equal(recv(srv, buf, sizeof(buf), 0), 2);
	assert_memory_equal(buf, "de", 2);
	close(cli);
	close(srv);
	reactor_destroy(&r);
}

/* The peer's data and its end of stream, both taken by the poller before
 * the reader's ticket: the short read that gets the data does not say the
 * socket is empty (the next read returns the end, and no edge is to come:
 * a reader that waited instead would wait for ever). */
static void a_short_read_before_the_peers_end_is_not_taken_for_empty(void **state)
{
	(void)state;
	struct reactor r;
	assert_int_equal(reactor_init(&r), 0);
	int cli, srv;
	tcp_pair(&cli, &srv);
	struct seen s = { 0 };
	watch_quiet(&r, srv, &s);
	assert_int_equal(send(cli, "ab", 2, 0), 2);
	assert_int_equal(shutdown(cli, SHUT_WR), 0);
	usleep(50000);
	while (reactor_poll(&r, 100000000, 64, record, &s) > 0)
		;
	uint64_t t = reactor_ticket(&r, srv);
	char buf[16];
	assert_int_equal(recv(srv, buf, sizeof(buf), 0), 2);
	assert_false(reactor_drained(&r, srv, t));
	assert_int_equal(recv(srv, buf, sizeof(buf), 0), 0);
	close(cli);
	close(srv);
	reactor_destroy(&r);
}

/* ---- with threads ---- */

#define ROUNDS 20000

struct race {
	struct reactor r;
	int sv[2];
	atomic_bool stop;
	atomic_int ready_round;     /* the waiter is about to read for it */
	atomic_int woken;           /* the latest token the poller reported */
	atomic_int stale;           /* reports for a round not yet written */
	atomic_int written;         /* the latest round whose byte was sent */
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

static void wake_waiter(uint64_t token, void *arg)
{
	struct race *x = arg;
	if ((int)token > atomic_load(&x->written))
		atomic_fetch_add(&x->stale, 1);
	pthread_mutex_lock(&x->lock);
	atomic_store(&x->woken, (int)token);
	pthread_cond_broadcast(&x->cond);
	pthread_mutex_unlock(&x->lock);
}

static void *poller(void *arg)
{
	struct race *x = arg;
	while (!atomic_load(&x->stop))
		reactor_poll(&x->r, 1000000, 64, wake_waiter, x);
	return NULL;
}

static void *writer(void *arg)
{
	struct race *x = arg;
	for (int i = 1; i <= ROUNDS; i++) {
		while (atomic_load(&x->ready_round) < i)
			if (atomic_load(&x->stop))
				return NULL;
		/* A random moment: before, during or after the waiter's park. */
		for (int spin = rand() % 2000; spin > 0; spin--)
			__asm__ volatile("" ::: "memory");
		atomic_store(&x->written, i);
		ssize_t w = write(x->sv[1], "x", 1);
		(void)w;
	}
	return NULL;
}

/* Park (the condition variable stands for a process's park) until the
 * poller reports `token`; false after 10 s: a lost wake-up. */
static bool park(struct race *x, int token)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&x->lock);
	int rc = 0;
	while (atomic_load(&x->woken) != token && rc == 0)
		rc = pthread_cond_timedwait(&x->cond, &x->lock, &until);
	pthread_mutex_unlock(&x->lock);
	return rc == 0;
}

/* Each round's byte is written at any moment around the reader's EAGAIN
 * and park, while another thread polls: a lost edge leaves the reader
 * parked for good (the test fails after 10 s). */
static void no_wake_up_is_lost_between_eagain_and_park(void **state)
{
	(void)state;
	struct race x;
	memset(&x, 0, sizeof(x));
	assert_int_equal(reactor_init(&x.r), 0);
	pair(x.sv);
	pthread_mutex_init(&x.lock, NULL);
	pthread_cond_init(&x.cond, NULL);
	assert_int_equal(reactor_watch(&x.r, x.sv[0]), 0);
	pthread_t pt, wt;
	pthread_create(&pt, NULL, poller, &x);
	pthread_create(&wt, NULL, writer, &x);
	int parks = 0, lost = 0;
	for (int i = 1; i <= ROUNDS && lost == 0; i++) {
		uint64_t t = reactor_ticket(&x.r, x.sv[0]);
		atomic_store(&x.ready_round, i);
		char c;
		for (;;) {
			if (read(x.sv[0], &c, 1) == 1)
				break;
			assert_int_equal(errno, EAGAIN);
			/* The way from EAGAIN to the park, of any length: the
			 * edge is often taken by the poller meanwhile. */
			for (int spin = rand() % 20000; spin > 0; spin--)
				__asm__ volatile("" ::: "memory");
			if (reactor_expect(&x.r, x.sv[0], REACTOR_READ, t, (uint64_t)i)) {
				parks++;
				if (!park(&x, i)) {
					lost = i;
					break;
				}
			}
			t = reactor_ticket(&x.r, x.sv[0]);
		}
	}
	atomic_store(&x.stop, true);
	pthread_join(wt, NULL);
	pthread_join(pt, NULL);
	if (lost != 0)
		fail_msg("round %d: the reader never got its wake-up", lost);
	assert_true(parks > 0);
	assert_int_equal(atomic_load(&x.stale), 0);
	close(x.sv[0]);
	close(x.sv[1]);
	pthread_mutex_destroy(&x.lock);
	pthread_cond_destroy(&x.cond);
	reactor_destroy(&x.r);
}

/* ---- closing while another thread polls ---- */

#define CLOSES 5000

struct churn {
	struct reactor r;
	atomic_bool stop;
	atomic_int published;       /* the iteration whose token is out */
	atomic_int written;         /* the iteration whose peer has written */
	atomic_int wrong;           /* a report for an iteration not yet written */
	atomic_int reports;
};

static void check_report(uint64_t token, void *arg)
{
	struct churn *c = arg;
	atomic_fetch_add(&c->reports, 1);
	if ((int)token > atomic_load(&c->written))
		atomic_fetch_add(&c->wrong, 1);
}

static void *churn_poller(void *arg)
{
	struct churn *c = arg;
	while (!atomic_load(&c->stop))
		reactor_poll(&c->r, 1000000, 64, check_report, c);
	return NULL;
}

/* Sockets are registered, written to and closed in a loop, their numbers
 * reused at once, while another thread polls: an event of a closed
 * socket is never reported to the waiter of the next socket under its
 * number (whose peer has not written yet). */
static void a_close_while_another_thread_polls(void **state)
{
	(void)state;
	struct churn c;
	memset(&c, 0, sizeof(c));
	assert_int_equal(reactor_init(&c.r), 0);
	pthread_t pt;
	pthread_create(&pt, NULL, churn_poller, &c);
	for (int i = 1; i <= CLOSES; i++) {
		int sv[2];
		pair(sv);
		assert_int_equal(reactor_watch(&c.r, sv[0]), 0);
		uint64_t t = reactor_ticket(&c.r, sv[0]);
		atomic_store(&c.published, i);
		if (reactor_expect(&c.r, sv[0], REACTOR_READ, t, (uint64_t)i)) {
			atomic_store(&c.written, i);
			ssize_t w = write(sv[1], "x", 1);
			(void)w;
		}
		/* Another descriptor of the old file keeps it registered for
		 * a while (a copy being closed elsewhere) every other round. */
		int keep = (i & 1) ? dup(sv[0]) : -1;
		close(sv[0]);
		if (keep >= 0) {
			ssize_t w = write(sv[1], "late", 4);
			(void)w;
			close(keep);
		}
		close(sv[1]);
	}
	atomic_store(&c.stop, true);
	pthread_join(pt, NULL);
	assert_int_equal(atomic_load(&c.wrong), 0);
	reactor_destroy(&c.r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(an_edge_wakes_the_published_waiter_once),
		cmocka_unit_test(an_edge_since_the_ticket_refuses_the_park),
		cmocka_unit_test(a_reused_fd_number_drops_the_old_files_events),
		cmocka_unit_test(a_moved_registration_is_kept),
		cmocka_unit_test(an_unwatched_fd_leaves_the_set_though_its_file_lives),
		cmocka_unit_test(a_read_stopped_at_urgent_data_is_not_taken_for_empty),
		cmocka_unit_test(a_short_read_before_the_peers_end_is_not_taken_for_empty),
		cmocka_unit_test(no_wake_up_is_lost_between_eagain_and_park),
		cmocka_unit_test(a_close_while_another_thread_polls),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
