/* Unit tests for src/proc's data structures: mailboxes (order, closing,
 * concurrent senders), the process table (generations, reuse, retirement)
 * and the registry (names, exits, resizing). Processes running for real
 * are tested in test_runtime.c and end to end. */
#include "unit.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proc/caps.h"
#include "proc/mailbox.h"
#include "proc/proc_impl.h"

/* ---- mailbox ---- */

static struct msg *msg_n(uint64_t from, uint64_t n)
{
	return msg_new(MSG_DATA, 1, from, n, 0, &n, sizeof(n));
}

static void mailbox_keeps_send_order(void **state)
{
	struct mailbox mb;
	mbox_init(&mb);
	for (uint64_t i = 0; i < 10; i++)
		assert_true(mbox_push(&mb, msg_n(7, i)));
	struct msg *m = mbox_take_all(&mb);
	for (uint64_t i = 0; i < 10; i++) {
		assert_non_null(m);
		assert_int_equal(m->tag, i);
		struct msg *next = m->next;
		mbox_append(&mb, m);
		m = next;
	}
	assert_null(m);
	assert_null(mbox_take_all(&mb));
	/* remove from the middle, the head and the tail */
	struct msg *prev = mb.first->next->next;         /* tag 2 */
	struct msg *x = prev->next;                       /* tag 3 */
	mbox_remove(&mb, prev, x);
	msg_free(x);
	x = mb.first;
	mbox_remove(&mb, NULL, x);
	msg_free(x);
	uint64_t want[] = { 1, 2, 4, 5, 6, 7, 8, 9 };
	size_t k = 0;
	for (struct msg *q = mb.first; q; q = q->next)
		assert_int_equal(q->tag, want[k++]);
	assert_int_equal(k, 8);
	assert_int_equal(mb.last->tag, 9);
	mbox_clear(&mb);
	assert_null(mb.first);
	assert_null(mb.last);
}

static void closed_mailbox_refuses_and_returns_what_it_had(void **state)
{
	struct mailbox mb;
	mbox_init(&mb);
	assert_true(mbox_push(&mb, msg_n(1, 1)));
	assert_true(mbox_push(&mb, msg_n(1, 2)));
	struct msg *left = mbox_close(&mb);
	assert_int_equal(left->tag, 1);
	assert_int_equal(left->next->tag, 2);
	assert_null(left->next->next);
	struct msg *late = msg_n(1, 3);
	assert_false(mbox_push(&mb, late));     /* not consumed: ours to free */
	msg_free(late);
	msg_free(left->next);
	msg_free(left);
	assert_null(mbox_take_all(&mb));
}

#define SENDERS 4
#define PER_SENDER 20000

struct sender {
	struct mailbox *mb;
	uint64_t id;
};

static void *send_many(void *arg)
{
	struct sender *s = arg;
	for (uint64_t i = 0; i < PER_SENDER; i++)
		while (!mbox_push(s->mb, msg_n(s->id, i)))
			;
	return NULL;
}

/* Concurrent senders: nothing lost, each sender's messages in its order. */
static void concurrent_senders_keep_their_own_order(void **state)
{
	struct mailbox mb;
	mbox_init(&mb);
	pthread_t th[SENDERS];
	struct sender s[SENDERS];
	for (int i = 0; i < SENDERS; i++) {
		s[i] = (struct sender){ &mb, (uint64_t)i };
		pthread_create(&th[i], NULL, send_many, &s[i]);
	}
	uint64_t next[SENDERS] = { 0 };
	uint64_t got = 0;
	while (got < SENDERS * PER_SENDER) {
		struct msg *m = mbox_take_all(&mb);
		while (m) {
			struct msg *n = m->next;
			assert_int_equal(m->tag, next[m->from]);
			next[m->from]++;
			got++;
			msg_free(m);
			m = n;
		}
	}
	for (int i = 0; i < SENDERS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < SENDERS; i++)
		assert_int_equal(next[i], PER_SENDER);
}

static void reasons_round_trip(void **state)
{
	struct reason r = { WISP_EXIT_TRAP, 0, "unreachable in f" }, back;
	struct msg *m = msg_reason(MSG_DOWN, 1, 2, 3, &r);
	msg_get_reason(m, &back);
	assert_int_equal(back.kind, WISP_EXIT_TRAP);
	assert_string_equal(back.text, "unreachable in f");
	msg_free(m);
	/* a payload too short for a reason reads as NORMAL */
	m = msg_new(MSG_DOWN, 1, 2, 3, 0, "x", 1);
	msg_get_reason(m, &back);
	assert_int_equal(back.kind, WISP_EXIT_NORMAL);
	msg_free(m);
}

/* ---- the sets a process owns ---- */

/* Random adds and removals against a plain reference array: every lookup
 * agrees, across the switch to the hashed index at 16 entries and back. */
static void pidsets_agree_with_a_reference(void **state)
{
	static struct proc owner;
	owner.mem_limit = UINT64_MAX;
	struct pidset set = { 0 };
	enum { N = 3000 };
	static uint64_t keys[N];
	static bool in[N];
	uint64_t seed = 12345;
	for (int i = 0; i < N; i++)
		keys[i] = (1ull << 63) | (uint64_t)i * 7919 | (uint64_t)(i & 7) << 40;
	for (int round = 0; round < 200000; round++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		int k = (int)((seed >> 33) % (round < 100000 ? N : 40));   /* large, then small */
		if (in[k]) {
			assert_int_equal(proc_set_del_ref(&set, keys[k]), (uint64_t)k + 1);
			in[k] = false;
		} else {
			assert_int_equal(proc_set_add(&owner, &set, keys[k], (uint64_t)k + 1), 0);
			in[k] = true;
		}
		if (round % 997 == 0) {
			uint32_t count = 0;
			for (int i = 0; i < N; i++) {
				assert_int_equal(proc_set_has(&set, keys[i]), in[i]);
				count += in[i];
			}
			assert_int_equal(set.n, count);
		}
	}
	assert_int_equal(proc_set_del_ref(&set, 42), 0);
	/* The room past the first four entries was charged to the owner;
	 * freeing the sets gives it all back. */
	assert_true(atomic_load(&owner.usage) > 0);
	owner.links = set;
	proc_free_sets(&owner);
	assert_int_equal(atomic_load(&owner.usage), 0);
}

/* A set's room counts against its owner's memory limit: past it, an add
 * fails with -ENOMEM and charges nothing. */
static void pidsets_are_charged_to_their_owner(void **state)
{
	static struct proc owner;
	owner.mem_limit = 1024;
	uint32_t added = 0;
	while (proc_set_add(&owner, &owner.watching, added + 1, added + 1) == 0)
		added++;
	assert_true(added >= 4);      /* the first four entries cost nothing */
	assert_true(added < 1024);
	int64_t used = atomic_load(&owner.usage);
	assert_true(used > 0 && used <= 1024);
	assert_int_equal(proc_set_add(&owner, &owner.watching, 1u << 30, 1), -ENOMEM);
	assert_int_equal(atomic_load(&owner.usage), used);
	proc_free_sets(&owner);
	assert_int_equal(atomic_load(&owner.usage), 0);
}

/* ---- process table ---- */

static void ptable_reuses_slots_with_new_generations(void **state)
{
	struct ptable t;
	assert_int_equal(ptable_init(&t, 32), 0);
	struct proc *a = ptable_alloc(&t), *b = ptable_alloc(&t);
	assert_int_equal(a->index, 0);
	assert_int_equal(b->index, 1);
	assert_int_equal(a->gen, 1);
	uint64_t pa = (uint64_t)a->gen << 32 | a->index;
	atomic_store(&a->pid, pa);
	assert_ptr_equal(ptable_get(&t, pa), a);
	assert_ptr_equal(ptable_at(&t, 1), b);
	assert_null(ptable_at(&t, 2));                    /* never allocated */
	assert_null(ptable_at(&t, PT_CHUNK * PT_MAX_CHUNKS));
	assert_null(ptable_get(&t, 0));
	/* host bytes after each struct are zeroed and writable */
	unsigned char *extra = (unsigned char *)a + sizeof(*a);
	for (int i = 0; i < 32; i++)
		assert_int_equal(extra[i], 0);
	atomic_store(&a->pid, 0);
	ptable_release(&t, a);
	struct proc *c = ptable_alloc(&t);
	assert_ptr_equal(c, a);                           /* LIFO: warm */
	assert_int_equal(c->gen, 2);
	/* The old pid finds the struct, but not the same incarnation. */
	atomic_store(&c->pid, (uint64_t)c->gen << 32 | c->index);
	assert_ptr_equal(ptable_get(&t, pa), c);
	assert_true(atomic_load(&c->pid) != pa);
	ptable_destroy(&t);
}

static void ptable_retires_a_slot_whose_generation_is_used_up(void **state)
{
	struct ptable t;
	assert_int_equal(ptable_init(&t, 0), 0);
	struct proc *a = ptable_alloc(&t);
	a->gen = PROC_GEN_MAX - 1;
	ptable_release(&t, a);
	struct proc *b = ptable_alloc(&t);
	assert_ptr_equal(b, a);
	assert_int_equal(b->gen, PROC_GEN_MAX);           /* the last one */
	/* (31-bit generations: bit 63 of a local pid is never set) */
	assert_false(proc_pid_is_remote((uint64_t)b->gen << 32 | b->index));
	ptable_release(&t, b);                            /* retired */
	struct proc *c = ptable_alloc(&t);
	assert_ptr_not_equal(c, a);
	assert_int_equal(c->index, 1);
	assert_int_equal(c->gen, 1);
	ptable_destroy(&t);
}

/* A push that found the slot over its limit names the incarnation it was
 * meant for: a sender that raced with the slot's reuse (it checked the
 * old pid, the old process died, a new one took the slot, then the push
 * landed) must not end the newcomer. The 30-minute churn soak lost a
 * worker with no memory limit this way ("memory limit: 18446744073709551615
 * bytes"), and with it the counts it had not reported. */
static void a_stale_push_does_not_end_the_next_process_of_the_slot(void **state)
{
	struct proc *p = calloc(1, sizeof(*p));
	p->caps = caps_new();
	uint64_t old = (uint64_t)1 << 32 | 5, now = (uint64_t)2 << 32 | 5;
	atomic_store(&p->pid, now);
	p->mem_limit = UINT64_MAX;
	atomic_store(&p->over_limit, old);    /* left by the late sender */
	proc_check_limit(p);
	assert_false(p->doomed);
	assert_int_equal(atomic_load(&p->over_limit), 0);   /* and forgotten */
	atomic_store(&p->over_limit, now);    /* meant for this one: it ends */
	proc_check_limit(p);
	assert_true(p->doomed);
	assert_int_equal(p->doom_kind, WISP_EXIT_LIMIT);
	free(p->doom_text);
	caps_unref(p->caps);
	free(p);
}

/* ---- registry ---- */

static struct proc *fake_proc(uint64_t pid)
{
	struct proc *p = calloc(1, sizeof(*p));
	atomic_store(&p->pid, pid);
	p->mem_limit = UINT64_MAX;
	return p;
}

static void registry_binds_finds_and_refuses(void **state)
{
	struct registry r;
	assert_int_equal(registry_init(&r), 0);
	struct proc *p = fake_proc(5), *q = fake_proc(6);
	uint64_t pid;
	assert_int_equal(registry_get(&r, "a", 1, &pid), -ENOENT);
	assert_int_equal(registry_put(&r, "a", 1, p, 5), 0);
	assert_int_equal(registry_put(&r, "a", 1, q, 6), -EEXIST);
	assert_int_equal(registry_put(&r, "b", 1, p, 4), -ESRCH);   /* stale pid */
	assert_int_equal(registry_get(&r, "a", 1, &pid), 0);
	assert_int_equal(pid, 5);
	/* names are bytes, not C strings */
	assert_int_equal(registry_put(&r, "x\0y", 3, q, 6), 0);
	assert_int_equal(registry_get(&r, "x\0z", 3, &pid), -ENOENT);
	assert_int_equal(registry_get(&r, "x\0y", 3, &pid), 0);
	assert_int_equal(pid, 6);
	assert_int_equal(registry_del(&r, "a", 1), 0);
	assert_int_equal(registry_del(&r, "a", 1), -ENOENT);
	assert_null(p->names);
	/* exiting: no new names, and the old ones go */
	registry_exit(&r, q);
	assert_int_equal(registry_get(&r, "x\0y", 3, &pid), -ENOENT);
	assert_int_equal(registry_put(&r, "c", 1, q, 6), -ESRCH);
	assert_int_equal(registry_count(&r), 0);
	/* every name was charged to its process and given back */
	assert_int_equal(atomic_load(&p->usage), 0);
	assert_int_equal(atomic_load(&q->usage), 0);
	registry_destroy(&r);
	free(p);
	free(q);
}

/* A name is charged to the process it names: past its limit, ENOMEM. */
static void registry_names_count_against_the_limit(void **state)
{
	struct registry r;
	assert_int_equal(registry_init(&r), 0);
	struct proc *p = fake_proc(5);
	p->mem_limit = 4096;
	char name[16];
	int n = 0, rc = 0;
	while ((rc = registry_put(&r, name, (uint32_t)snprintf(name, sizeof(name), "n%d", n),
	                          p, 5)) == 0)
		n++;
	assert_int_equal(rc, -ENOMEM);
	assert_true(n > 10 && n < 4096 / 8);
	assert_true(atomic_load(&p->usage) <= 4096);
	registry_exit(&r, p);
	assert_int_equal(atomic_load(&p->usage), 0);
	registry_destroy(&r);
	free(p);
}

/* Many names, then churn: the table grows, shrinks back, and an exit
 * removes exactly the exiting process's names. */
static void registry_grows_and_shrinks(void **state)
{
	struct registry r;
	assert_int_equal(registry_init(&r), 0);
	struct proc *p = fake_proc(1), *q = fake_proc(2);
	char name[32];
	for (int i = 0; i < 20000; i++) {
		int n = snprintf(name, sizeof(name), "n%d", i);
		assert_int_equal(registry_put(&r, name, (uint32_t)n, i % 2 ? q : p, i % 2 ? 2 : 1), 0);
	}
	assert_int_equal(registry_count(&r), 20000);
	assert_true(r.cap >= 16384);
	registry_exit(&r, p);                             /* the even ones */
	assert_int_equal(registry_count(&r), 10000);
	uint64_t pid;
	assert_int_equal(registry_get(&r, "n1", 2, &pid), 0);
	assert_int_equal(pid, 2);
	assert_int_equal(registry_get(&r, "n2", 2, &pid), -ENOENT);
	for (int i = 1; i < 20000; i += 2) {
		int n = snprintf(name, sizeof(name), "n%d", i);
		assert_int_equal(registry_del(&r, name, (uint32_t)n), 0);
	}
	assert_int_equal(registry_count(&r), 0);
	assert_true(r.cap <= 128);                        /* shrunk back */
	assert_null(q->names);
	/* register/unregister churn leaves nothing behind */
	for (int i = 0; i < 100000; i++) {
		assert_int_equal(registry_put(&r, "churn", 5, q, 2), 0);
		assert_int_equal(registry_del(&r, "churn", 5), 0);
	}
	assert_true(r.cap <= 128);
	registry_destroy(&r);
	free(p);
	free(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(mailbox_keeps_send_order),
		cmocka_unit_test(closed_mailbox_refuses_and_returns_what_it_had),
		cmocka_unit_test(concurrent_senders_keep_their_own_order),
		cmocka_unit_test(reasons_round_trip),
		cmocka_unit_test(pidsets_agree_with_a_reference),
		cmocka_unit_test(pidsets_are_charged_to_their_owner),
		cmocka_unit_test(ptable_reuses_slots_with_new_generations),
		cmocka_unit_test(ptable_retires_a_slot_whose_generation_is_used_up),
		cmocka_unit_test(a_stale_push_does_not_end_the_next_process_of_the_slot),
		cmocka_unit_test(registry_binds_finds_and_refuses),
		cmocka_unit_test(registry_grows_and_shrinks),
		cmocka_unit_test(registry_names_count_against_the_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
