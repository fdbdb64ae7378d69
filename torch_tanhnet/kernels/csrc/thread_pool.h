/* parallel(job, tasks, size, n): job(&tasks[r]) for r in [0, n), task 0 on the calling thread, the others on
 * worker threads that outlive the call. Included by tanhnet_kernels.c.
 *
 * Why a pool: on the 2-vCPU development machine, starting and joining a pthread for each call cost
 * 45–150 µs (an idle vCPU wakes slowly), a quarter of a whole training step of 1024 networks. Here a
 * worker that has just finished spins for up to SPIN_NS waiting for the next job, which in a training
 * loop comes a few hundred µs later, and only then sleeps on a condition variable. After its first 20 µs
 * the wait calls sched_yield, so any other thread that wants the core (torch's own, another process's)
 * gets it.
 *
 * One job runs at a time: a caller that finds the pool busy (another Python thread in a kernel, since
 * ctypes lets go of the GIL) runs its tasks itself, one after another, so calls never wait on each
 * other. A forked child starts with no workers (pthread_atfork) and makes its own. Tasks must write
 * their results only into their own task (or rows of their own); the pool adds no ordering, so results
 * never depend on timing.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#define SPIN_NS 500000     /* a worker waits this long for the next job before it sleeps (0.5 ms) */
#define YIELD_AFTER_NS 20000 /* and spins for the first 20 µs of it, then gives way to any other thread */

/* What worker w runs: job(task) each time its generation moves on. Only the caller that holds
 * pool.busy writes a mailbox, and only while its worker is idle. */
typedef struct {
    atomic_uint_fast64_t generation;
    uint_fast64_t first; /* the generation when the worker started */
    void *(*job)(void *);
    void *task;
    char pad[64];
} Mailbox;

static struct {
    pthread_mutex_t busy; /* held by the caller whose job runs */
    pthread_mutex_t lock; /* guards sleeping and the condition variable */
    pthread_cond_t wake;
    atomic_int pending; /* tasks given to workers and not yet done */
    int workers;        /* started so far */
    int sleeping;
    Mailbox box[MAX_THREADS];
} pool = {.busy = PTHREAD_MUTEX_INITIALIZER, .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *worker(void *arg) {
    Mailbox *box = arg;
    uint_fast64_t seen = box->first, g;
    for (;;) {
        for (int64_t t0 = now_ns(), t = t0;
             (g = atomic_load_explicit(&box->generation, memory_order_acquire)) == seen && t - t0 < SPIN_NS;
             t = now_ns()) {
            if (t - t0 < YIELD_AFTER_NS) for (int i = 0; i < 64; i++) cpu_relax();
            else sched_yield(); /* let any other thread have this core */
        }
        if (g == seen) {
            pthread_mutex_lock(&pool.lock);
            pool.sleeping++;
            while ((g = atomic_load_explicit(&box->generation, memory_order_acquire)) == seen)
                pthread_cond_wait(&pool.wake, &pool.lock);
            pool.sleeping--;
            pthread_mutex_unlock(&pool.lock);
        }
        seen = g;
        box->job(box->task);
        atomic_fetch_sub_explicit(&pool.pending, 1, memory_order_release);
    }
    return NULL;
}

static void pool_after_fork(void) { /* the child has none of the parent's threads */
    pthread_mutex_init(&pool.busy, NULL);
    pthread_mutex_init(&pool.lock, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pool.workers = 0;
    pool.sleeping = 0;
}

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static void pool_init(void) { pthread_atfork(NULL, NULL, pool_after_fork); }

static void parallel(void *(*job)(void *), void *tasks, size_t size, int n) {
    char *t = tasks;
    if (n <= 1 || pthread_once(&pool_once, pool_init) != 0 || pthread_mutex_trylock(&pool.busy) != 0) {
        for (int r = 0; r < n; r++) job(t + (size_t)r * size);
        return;
    }
    while (pool.workers < n - 1 && pool.workers < MAX_THREADS) { /* worker w runs task w + 1 */
        Mailbox *box = &pool.box[pool.workers];
        box->first = atomic_load(&box->generation);
        pthread_t id;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        const int ok = pthread_create(&id, &attr, worker, box) == 0;
        pthread_attr_destroy(&attr);
        if (!ok) break;
        pool.workers++;
    }
    const int on_workers = n - 1 < pool.workers ? n - 1 : pool.workers; /* tasks 1 .. on_workers */
    atomic_store(&pool.pending, on_workers);
    for (int w = 0; w < on_workers; w++) {
        pool.box[w].job = job;
        pool.box[w].task = t + (size_t)(w + 1) * size;
        atomic_fetch_add_explicit(&pool.box[w].generation, 1, memory_order_release);
    }
    pthread_mutex_lock(&pool.lock);
    if (pool.sleeping) pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    job(t);
    for (int r = on_workers + 1; r < n; r++) job(t + (size_t)r * size); /* workers that could not start */
    for (int64_t t0 = now_ns(); atomic_load_explicit(&pool.pending, memory_order_acquire) > 0;) {
        cpu_relax();
        if (now_ns() - t0 > SPIN_NS) sched_yield(); /* a worker that has no core yet */
    }
    pthread_mutex_unlock(&pool.busy);
}
