/* One-pass CPU kernels for the handout's network, compiled once per machine by
 * torch_tanhnet/kernels/cpu.py (gcc -O3 -march=native, -DTN_DOUBLE for float64).
 *
 * The maths are the handout's equations (../docs/derivation.md); what is new is the
 * schedule: samples go through in blocks of BLOCK, each block's hidden layer lives in
 * a small buffer (never in memory), the transcendental functions are vectorised
 * across samples (#pragma omp simd, glibc's libmvec), and large N is split into a few
 * contiguous chunks per thread (a pool of pthreads, thread_pool.h), with the partial
 * sums added in a fixed order so that results do not depend on timing. The handout's own shape (D = 2, H = 3)
 * has a training job of its own with the sizes fixed at compile time
 * (fused_loss_job_seed); every other shape runs the general blocks.
 *
 * Sums over samples are accumulated per block in the working precision and across
 * blocks in double. All pointers are to contiguous row-major arrays:
 * X (N, D), U (H, D), b (H), W (1, H), c (1), y (N), Hs (N, H), z (N), zbar (N), dX (N, D).
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef TN_DOUBLE
typedef double real;
#define TANH tanh
#define EXP exp
#define LOG1P log1p
#define FABS fabs
#else
typedef float real;
#define TANH tanhf
#define EXP expf
#define LOG1P log1pf
#define FABS fabsf
#endif

/* Vector variants from glibc's libmvec (what <math.h> declares only under -ffast-math, whose other
 * liberties with NaN and infinity this code does not want). */
#pragma omp declare simd notinbranch
float tanhf(float);
#pragma omp declare simd notinbranch
float expf(float);
#pragma omp declare simd notinbranch
float log1pf(float);
#pragma omp declare simd notinbranch
double tanh(double);
#pragma omp declare simd notinbranch
double exp(double);
#pragma omp declare simd notinbranch
double log1p(double);

#define BLOCK 256
#define MAX_THREADS 64

#include "thread_pool.h"

typedef struct {
    const real *X, *U, *b, *W, *c, *y, *Hs, *zbar_in;
    real *z_out, *H_out, *dX, *zbar_out;
    int64_t D, H;
    double inv_n, scale;
    int64_t begin, end;
    /* per-thread partial sums: loss, dU (H*D), db (H), dW (H), dc */
    double *acc;
    int status;
} Task;

/* The partial sums of one thread: [ε, Ū (H*D), b̄ (H), W̄ (H), c̄]. */
static int64_t acc_size(int64_t D, int64_t H) { return 1 + H * D + 2 * H + 1; }

/* Part `part` of `parts` of the samples [0, N), in whole blocks: [*begin, *end). */
static void chunk_bounds(int64_t N, int64_t part, int64_t parts, int64_t *begin, int64_t *end) {
    const int64_t blocks = (N + BLOCK - 1) / BLOCK;
    *begin = blocks * part / parts * BLOCK;
    *end = blocks * (part + 1) / parts * BLOCK;
    if (*end > N) *end = N;
}

/* z̄_i = (σ(z_i) − y_i)/N and L_i = softplus(z_i) − y_i z_i for a block; returns Σ L_i. */
static real cost_block(const real *z, const real *y, real *zb, int64_t n, real inv_n) {
    real lsum = 0;
#pragma omp simd reduction(+ : lsum)
    for (int64_t t = 0; t < n; t++) {
        real zt = z[t], yt = y[t];
        real e = EXP(-FABS(zt));                      /* e^(−|z|), never overflows */
        /* L = y log(1 + e^(−z)) + (1 − y) log(1 + e^z) = (max(z, 0) − y z) + log1p(e^(−|z|)), in that order:
         * the bracket is exactly 0 for a confident right answer, so its cost e^(−|z|) is kept (cost.py) */
        lsum += ((zt > 0 ? zt : 0) - yt * zt) + LOG1P(e);
        real r = 1 / (1 + e), o = zt >= 0 ? r : e * r; /* o = σ(z): 1/(1 + e^(−z)) or e^z/(1 + e^z) */
        zb[t] = (o - yt) * inv_n;                     /* z̄ = (o − y)/N */
    }
    return lsum;
}

/* The block's samples [i, i+n) of X, one row per feature: xs[k*BLOCK + t] = x_(i+t),k. */
static void load_block(const Task *a, int64_t i, int64_t n, real *xs) {
    const int64_t D = a->D;
    const real *X = a->X + i * D;
    for (int64_t k = 0; k < D; k++) {
        real *xk = xs + k * BLOCK;
        for (int64_t t = 0; t < n; t++) xk[t] = X[t * D + k];
    }
}

/* G = X Uᵀ + b, H = tanh(G) into h[j*BLOCK + t]; z = H Wᵀ + c into z[t]; from the loaded block xs. */
static void forward_block(const Task *a, int64_t n, const real *xs, real *h, real *z) {
    const int64_t D = a->D, H = a->H;
    for (int64_t j = 0; j < H; j++) {
        const real *u = a->U + j * D;
        const real bj = a->b[j];
        real *hj = h + j * BLOCK;
#pragma omp simd
        for (int64_t t = 0; t < n; t++) hj[t] = bj;
        for (int64_t k = 0; k < D; k++) {
            const real ujk = u[k], *xk = xs + k * BLOCK;
#pragma omp simd
            for (int64_t t = 0; t < n; t++) hj[t] += ujk * xk[t]; /* g_ij = Σ_k u_jk x_ik + b_j */
        }
#pragma omp simd
        for (int64_t t = 0; t < n; t++) hj[t] = TANH(hj[t]); /* h_ij = tanh(g_ij) */
    }
    const real c = a->c[0];
#pragma omp simd
    for (int64_t t = 0; t < n; t++) z[t] = c;
    for (int64_t j = 0; j < H; j++) {
        const real wj = a->W[j];
        const real *hj = h + j * BLOCK;
#pragma omp simd
        for (int64_t t = 0; t < n; t++) z[t] += wj * hj[t]; /* z_i = Σ_j w_j h_ij + c */
    }
}

/* From z̄ (zb[t]), H (h[j*BLOCK + t]) and the loaded block xs: W̄, c̄, then Ḡ, Ū, b̄ (into acc) and X̄. */
static void backward_block(const Task *a, int64_t i, int64_t n, const real *xs, const real *h, const real *zb,
                           real *gb, double *acc) {
    const int64_t D = a->D, H = a->H;
    double *dU = acc + 1, *db = dU + H * D, *dW = db + H, *dc = dW + H;
    real cs = 0;
#pragma omp simd reduction(+ : cs)
    for (int64_t t = 0; t < n; t++) cs += zb[t];
    *dc += cs; /* c̄ = Σ_i z̄_i */
    for (int64_t j = 0; j < H; j++) {
        const real *hj = h + j * BLOCK;
        real *gj = gb + j * BLOCK;
        const real wj = a->W[j];
        real ws = 0, bs = 0;
#pragma omp simd reduction(+ : ws, bs)
        for (int64_t t = 0; t < n; t++) {
            ws += zb[t] * hj[t];                       /* w̄_j = Σ_i z̄_i h_ij */
            real g = zb[t] * wj * (1 - hj[t] * hj[t]); /* ḡ_ij = z̄_i w_j (1 − h_ij²) */
            gj[t] = g;
            bs += g;                                   /* b̄_j = Σ_i ḡ_ij */
        }
        dW[j] += ws;
        db[j] += bs;
        for (int64_t k = 0; k < D; k++) {
            const real *xk = xs + k * BLOCK;
            real us = 0;
#pragma omp simd reduction(+ : us)
            for (int64_t t = 0; t < n; t++) us += gj[t] * xk[t]; /* ū_jk = Σ_i ḡ_ij x_ik */
            dU[j * D + k] += us;
        }
    }
    if (a->dX) {
        real *dX = a->dX + i * D;
        real dx[BLOCK];
        for (int64_t k = 0; k < D; k++) {
#pragma omp simd
            for (int64_t t = 0; t < n; t++) dx[t] = 0;
            for (int64_t j = 0; j < H; j++) {
                const real *gj = gb + j * BLOCK;
                const real ujk = a->U[j * D + k];
#pragma omp simd
                for (int64_t t = 0; t < n; t++) dx[t] += gj[t] * ujk; /* x̄_ik = Σ_j ḡ_ij u_jk */
            }
            for (int64_t t = 0; t < n; t++) dX[t * D + k] = dx[t];
        }
    }
}

/* ---- the four jobs, each over one chunk [begin, end) ---- */

static void *fused_loss_job(void *p) { /* ε and every gradient in one pass */
    Task *a = p;
    real *buf = malloc(sizeof(real) * BLOCK * (2 * a->H + a->D + 2));
    if (!buf) { a->status = 1; return NULL; }
    real *h = buf, *gb = h + a->H * BLOCK, *xs = gb + a->H * BLOCK, *z = xs + a->D * BLOCK, *zb = z + BLOCK;
    for (int64_t i = a->begin; i < a->end; i += BLOCK) {
        int64_t n = a->end - i < BLOCK ? a->end - i : BLOCK;
        load_block(a, i, n, xs);
        forward_block(a, n, xs, h, z);
        a->acc[0] += cost_block(z, a->y + i, zb, n, (real)a->inv_n) * a->inv_n; /* ε = (1/N) Σ_i L_i */
        backward_block(a, i, n, xs, h, zb, gb, a->acc);
    }
    free(buf);
    return NULL;
}

/* The same job for the handout's own network (D = 2, H = 3) when X needs no gradient, with the shapes
 * known to the compiler: per block, one vectorised loop for each transcendental function (a vector
 * call clobbers every vector register, so nothing else is kept live across it), then one loop for
 * all 13 gradient sums, held in registers. Sums are per block in the working precision, across
 * blocks in double, as above. */
static void *fused_loss_job_seed(void *p) {
    Task *a = p;
    const real *X = a->X, *y = a->y;
    const real u00 = a->U[0], u01 = a->U[1], u10 = a->U[2], u11 = a->U[3], u20 = a->U[4], u21 = a->U[5];
    const real b0 = a->b[0], b1 = a->b[1], b2 = a->b[2], w0 = a->W[0], w1 = a->W[1], w2 = a->W[2], c = a->c[0];
    const real inv_n = (real)a->inv_n;
    double *acc = a->acc; /* [ε, Ū (3×2), b̄ (3), W̄ (3), c̄] */
    real x0s[BLOCK], x1s[BLOCK], h0[BLOCK], h1[BLOCK], h2[BLOCK], zb[BLOCK];
    for (int64_t i = a->begin; i < a->end; i += BLOCK) {
        const int64_t n = a->end - i < BLOCK ? a->end - i : BLOCK;
        const real *x = X + 2 * i, *yb = y + i;
#pragma omp simd
        for (int64_t t = 0; t < n; t++) {
            const real x0 = x[2 * t], x1 = x[2 * t + 1];
            x0s[t] = x0;
            x1s[t] = x1;
            h0[t] = u00 * x0 + u01 * x1 + b0; /* g_ij = Σ_k u_jk x_ik + b_j */
            h1[t] = u10 * x0 + u11 * x1 + b1;
            h2[t] = u20 * x0 + u21 * x1 + b2;
        }
#pragma omp simd
        for (int64_t t = 0; t < n; t++) h0[t] = TANH(h0[t]); /* h_ij = tanh(g_ij) */
#pragma omp simd
        for (int64_t t = 0; t < n; t++) h1[t] = TANH(h1[t]);
#pragma omp simd
        for (int64_t t = 0; t < n; t++) h2[t] = TANH(h2[t]);
        real L = 0;
#pragma omp simd reduction(+ : L)
        for (int64_t t = 0; t < n; t++) {
            const real z = w0 * h0[t] + w1 * h1[t] + w2 * h2[t] + c; /* z_i = Σ_j w_j h_ij + c */
            const real e = EXP(-FABS(z));                           /* e^(−|z|), never overflows */
            L += ((z > 0 ? z : 0) - yb[t] * z) + LOG1P(e); /* L, the bracket first (see cost_block) */
            const real r = 1 / (1 + e), o = z >= 0 ? r : e * r; /* o = σ(z) */
            zb[t] = (o - yb[t]) * inv_n;                        /* z̄ = (o − y)/N */
        }
        real du00 = 0, du01 = 0, du10 = 0, du11 = 0, du20 = 0, du21 = 0;
        real db0 = 0, db1 = 0, db2 = 0, dw0 = 0, dw1 = 0, dw2 = 0, dc = 0;
#pragma omp simd reduction(+ : du00, du01, du10, du11, du20, du21, db0, db1, db2, dw0, dw1, dw2, dc)
        for (int64_t t = 0; t < n; t++) {
            const real x0 = x0s[t], x1 = x1s[t], z = zb[t];
            dc += z;          /* c̄ = Σ_i z̄_i */
            dw0 += z * h0[t]; /* w̄_j = Σ_i z̄_i h_ij */
            dw1 += z * h1[t];
            dw2 += z * h2[t];
            const real g0 = z * w0 * (1 - h0[t] * h0[t]); /* ḡ_ij = z̄_i w_j (1 − h_ij²) */
            const real g1 = z * w1 * (1 - h1[t] * h1[t]);
            const real g2 = z * w2 * (1 - h2[t] * h2[t]);
            db0 += g0; /* b̄_j = Σ_i ḡ_ij */
            db1 += g1;
            db2 += g2;
            du00 += g0 * x0; /* ū_jk = Σ_i ḡ_ij x_ik */
            du01 += g0 * x1;
            du10 += g1 * x0;
            du11 += g1 * x1;
            du20 += g2 * x0;
            du21 += g2 * x1;
        }
        const double sums[14] = {L * a->inv_n, du00, du01, du10, du11, du20, du21, db0, db1, db2, dw0, dw1, dw2, dc};
        for (int q = 0; q < 14; q++) acc[q] += sums[q];
    }
    return NULL;
}

static void *forward_job(void *p) { /* z and H, for the composed path */
    Task *a = p;
    real *buf = malloc(sizeof(real) * BLOCK * (a->H + a->D));
    if (!buf) { a->status = 1; return NULL; }
    real *h = buf, *xs = h + a->H * BLOCK;
    for (int64_t i = a->begin; i < a->end; i += BLOCK) {
        int64_t n = a->end - i < BLOCK ? a->end - i : BLOCK;
        load_block(a, i, n, xs);
        forward_block(a, n, xs, h, a->z_out + i);
        for (int64_t t = 0; t < n; t++)
            for (int64_t j = 0; j < a->H; j++) a->H_out[(i + t) * a->H + j] = h[j * BLOCK + t];
    }
    free(buf);
    return NULL;
}

static void *backward_job(void *p) { /* the network's backward from z̄ and the saved H */
    Task *a = p;
    real *buf = malloc(sizeof(real) * BLOCK * (2 * a->H + a->D));
    if (!buf) { a->status = 1; return NULL; }
    real *h = buf, *gb = h + a->H * BLOCK, *xs = gb + a->H * BLOCK;
    for (int64_t i = a->begin; i < a->end; i += BLOCK) {
        int64_t n = a->end - i < BLOCK ? a->end - i : BLOCK;
        load_block(a, i, n, xs);
        for (int64_t j = 0; j < a->H; j++)
            for (int64_t t = 0; t < n; t++) h[j * BLOCK + t] = a->Hs[(i + t) * a->H + j];
        backward_block(a, i, n, xs, h, a->zbar_in + i, gb, a->acc);
    }
    free(buf);
    return NULL;
}

static void *cost_job(void *p) { /* ε's sum, and z̄ scaled by ε̄ when zbar_out is given */
    Task *a = p;
    real zb[BLOCK];
    for (int64_t i = a->begin; i < a->end; i += BLOCK) {
        int64_t n = a->end - i < BLOCK ? a->end - i : BLOCK;
        a->acc[0] += cost_block(a->z_out + i, a->y + i, zb, n, (real)a->inv_n) * a->inv_n;
        if (a->zbar_out)
            for (int64_t t = 0; t < n; t++) a->zbar_out[i + t] = zb[t] * (real)a->scale;
    }
    return NULL;
}

/* Where the sums go, in the working precision; any pointer may be NULL. */
typedef struct {
    real *eps, *dU, *db, *dW, *dc;
} Outputs;

/* A thread's share of run(): chunks taken one at a time from a shared counter. */
typedef struct {
    void *(*job)(void *);
    Task *chunks;
    int64_t n;
    atomic_int_fast64_t *next;
} Runner;

static void *drain(void *p) {
    Runner *r = p;
    for (int64_t c = atomic_fetch_add(r->next, 1); c < r->n; c = atomic_fetch_add(r->next, 1)) r->job(&r->chunks[c]);
    return NULL;
}

#define CHUNKS_PER_THREAD 4

/* Split [0, N) into chunks of whole blocks (one with one thread, CHUNKS_PER_THREAD a thread with more),
 * run `job` on each, the threads taking chunks one at a time (a core that runs slow takes fewer), add
 * the chunks' partial sums in chunk order (so the result depends on N and the thread count, never on
 * timing) and write them to `out`. */
static int run(void *(*job)(void *), Task proto, int64_t N, int threads, Outputs out) {
    const int64_t D = proto.D, H = proto.H, A = acc_size(D, H);
    int64_t blocks = (N + BLOCK - 1) / BLOCK;
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads > blocks) threads = (int)(blocks > 0 ? blocks : 1);
    int64_t chunks = threads == 1 ? 1 : (int64_t)threads * CHUNKS_PER_THREAD;
    if (chunks > blocks) chunks = blocks > 0 ? blocks : 1;
    Task *tasks = malloc(sizeof(Task) * (size_t)chunks);
    double *acc = calloc((size_t)(A * (chunks + 1)), sizeof(double));
    if (!tasks || !acc) {
        free(tasks);
        free(acc);
        return 1;
    }
    for (int64_t r = 0; r < chunks; r++) {
        tasks[r] = proto;
        chunk_bounds(N, r, chunks, &tasks[r].begin, &tasks[r].end);
        tasks[r].acc = acc + A * (r + 1);
        tasks[r].status = 0;
    }
    atomic_int_fast64_t next = 0;
    Runner runners[MAX_THREADS];
    for (int r = 0; r < threads; r++) runners[r] = (Runner){job, tasks, chunks, &next};
    parallel(drain, runners, sizeof(Runner), threads);
    int status = 0;
    for (int64_t r = 0; r < chunks; r++) {
        status |= tasks[r].status;
        for (int64_t q = 0; q < A; q++) acc[q] += tasks[r].acc[q];
    }
    /* acc = [ε, Ū (H*D), b̄ (H), W̄ (H), c̄] */
    if (out.eps) out.eps[0] = (real)acc[0];
    if (out.dU) for (int64_t q = 0; q < H * D; q++) out.dU[q] = (real)acc[1 + q];
    if (out.db) for (int64_t j = 0; j < H; j++) out.db[j] = (real)acc[1 + H * D + j];
    if (out.dW) for (int64_t j = 0; j < H; j++) out.dW[j] = (real)acc[1 + H * D + H + j];
    if (out.dc) out.dc[0] = (real)acc[1 + H * D + 2 * H];
    free(tasks);
    free(acc);
    return status;
}

/* ε and the gradients at ε̄ = 1: Ū (H, D), b̄ (H), W̄ (1, H), c̄ (1); X̄ into dX when given. */
int tn_fused_loss(const real *X, const real *y, const real *U, const real *b, const real *W, const real *c,
                  int64_t N, int64_t D, int64_t H, real *dX, real *eps, real *dU, real *db, real *dW, real *dc,
                  int threads) {
    Task t = {0};
    t.X = X; t.y = y; t.U = U; t.b = b; t.W = W; t.c = c; t.D = D; t.H = H; t.dX = dX;
    t.inv_n = 1.0 / (double)N;
    Outputs out = {eps, dU, db, dW, dc};
    return run(D == 2 && H == 3 && !dX ? fused_loss_job_seed : fused_loss_job, t, N, threads, out);
}

/* z (N) and H (N, H). */
int tn_forward(const real *X, const real *U, const real *b, const real *W, const real *c, int64_t N, int64_t D,
               int64_t H, real *z, real *Hout, int threads) {
    Task t = {0};
    t.X = X; t.U = U; t.b = b; t.W = W; t.c = c; t.D = D; t.H = H; t.z_out = z; t.H_out = Hout;
    Outputs none = {0};
    return run(forward_job, t, N, threads, none);
}

/* Ū, b̄, W̄, c̄ from z̄ and the saved H; X̄ into dX when given. */
int tn_backward(const real *X, const real *U, const real *W, const real *Hs, const real *zbar, int64_t N,
                int64_t D, int64_t H, real *dX, real *dU, real *db, real *dW, real *dc, int threads) {
    Task t = {0};
    t.X = X; t.U = U; t.W = W; t.Hs = Hs; t.zbar_in = zbar; t.D = D; t.H = H; t.dX = dX;
    Outputs out = {NULL, dU, db, dW, dc};
    return run(backward_job, t, N, threads, out);
}

/* ε = (1/N) Σ L(z_i, y_i) into eps (when given); with zbar given, also z̄_i = scale · (σ(z_i) − y_i)/N. */
int tn_cost(const real *z, const real *y, int64_t N, double scale, real *zbar, real *eps, int threads) {
    Task t = {0};
    t.z_out = (real *)z; t.y = y; t.D = 0; t.H = 0; t.zbar_out = zbar; t.scale = scale;
    t.inv_n = 1.0 / (double)N;
    Outputs out = {eps, NULL, NULL, NULL, NULL};
    return run(cost_job, t, N, threads, out);
}

/* ---- K networks at once (torch_tanhnet/ensemble/fused.py) ----
 *
 * Network k has its own weights U + k·H·D, b + k·H, W + k·H, c + k and reads its data at
 * X + k·x_stride, y + k·y_stride (a stride of 0: one X or y shared by all networks). The work is
 * K·splits units: unit u is network u / splits, chunk u % splits of its samples (whole blocks).
 * The threads take units one at a time from a shared counter (so a core that runs slow, as a shared
 * vCPU may, takes fewer), each running the single network's job (fused_loss_job_seed for D = 2, H = 3
 * without X̄, else fused_loss_job) into the unit's own row of partial sums; then each network's rows
 * are added in chunk order. So with many networks each thread takes whole networks and nothing is
 * shared, with few networks and many samples each network is split over the threads as tn_fused_loss
 * splits one; either way the result depends on (K, N, splits), never on timing or on which thread
 * ran what.
 *
 * With `lanes` (float32, D = 2, H = 3, no X̄), a unit is instead LANES networks side by side in the
 * lanes of the vector registers (ensemble_lanes.h): ⌈K/LANES⌉·splits units, unit u is networks
 * [LANES·(u / splits), LANES·(u / splits + 1)), chunk u % splits; the rows of partial sums are the same. */
typedef struct {
    Task proto; /* D, H, inv_n; the pointers are set per unit */
    const real *X, *y, *U, *b, *W, *c;
    real *dX;
    int64_t K, N, x_stride, y_stride, splits, units;
    atomic_int_fast64_t *next; /* the next unit not yet taken, shared by the threads */
    int lanes; /* 1: units are groups of LANES networks (ensemble_lanes.h) */
    double *acc; /* acc_size(D, H) doubles per network and chunk: row k·splits + s */
    int status;
} EnsembleTask;

#ifndef TN_DOUBLE
#include "ensemble_lanes.h"
#endif

static void *ensemble_job(void *p) {
    EnsembleTask *e = p;
    const int64_t D = e->proto.D, H = e->proto.H, A = acc_size(D, H);
    for (int64_t u = atomic_fetch_add(e->next, 1); u < e->units; u = atomic_fetch_add(e->next, 1)) {
#ifndef TN_DOUBLE
        if (e->lanes) {
            lanes_job_seed(e, u);
            continue;
        }
#endif
        const int64_t k = u / e->splits, s = u % e->splits;
        Task t = e->proto;
        t.X = e->X + k * e->x_stride; t.y = e->y + k * e->y_stride;
        t.U = e->U + k * H * D; t.b = e->b + k * H; t.W = e->W + k * H; t.c = e->c + k;
        t.dX = e->dX ? e->dX + k * e->N * D : NULL; /* X̄_k (N, D) of network k, at ε̄_k = 1 */
        chunk_bounds(e->N, s, e->splits, &t.begin, &t.end);
        t.acc = e->acc + A * u;
        t.status = 0;
        if (D == 2 && H == 3 && !t.dX) fused_loss_job_seed(&t); else fused_loss_job(&t);
        e->status |= t.status;
    }
    return NULL;
}

/* ε (K) and the gradients at ε̄_k = 1 of K networks: Ū (K, H, D), b̄ (K, H), W̄ (K, 1, H), c̄ (K, 1);
 * X̄ (K, N, D) into dX when given (network k's own, even when X is shared). */
int tn_ensemble_fused_loss(const real *X, int64_t x_stride, const real *y, int64_t y_stride, const real *U,
                           const real *b, const real *W, const real *c, int64_t K, int64_t N, int64_t D, int64_t H,
                           real *dX, real *eps, real *dU, real *db, real *dW, real *dc, int64_t splits,
                           int lanes, int threads) {
    const int64_t A = acc_size(D, H);
    const int64_t blocks = (N + BLOCK - 1) / BLOCK;
    if (splits < 1) splits = 1;
    if (splits > blocks) splits = blocks > 0 ? blocks : 1;
#ifdef TN_DOUBLE
    if (lanes) return 2; /* the lane kernel is float32 only */
    const int64_t items = K;
#else
    if (lanes && (D != 2 || H != 3 || dX)) return 2; /* it is the handout's shape without X̄ */
    const int64_t items = lanes ? (K + LANES - 1) / LANES : K; /* networks, or groups of LANES networks */
#endif
    const int64_t units = items * splits;
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads > units) threads = (int)(units > 0 ? units : 1);
    double *acc = calloc((size_t)(A * (K * splits > 0 ? K * splits : 1)), sizeof(double));
    if (!acc) return 1;
    atomic_int_fast64_t next = 0;
    EnsembleTask tasks[MAX_THREADS];
    for (int r = 0; r < threads; r++) {
        EnsembleTask e = {{0}};
        e.proto.D = D; e.proto.H = H; e.proto.inv_n = 1.0 / (double)N;
        e.X = X; e.y = y; e.U = U; e.b = b; e.W = W; e.c = c; e.dX = dX;
        e.K = K; e.N = N; e.x_stride = x_stride; e.y_stride = y_stride; e.splits = splits; e.lanes = lanes;
        e.units = units;
        e.next = &next;
        e.acc = acc;
        tasks[r] = e;
    }
    int status = 0;
    parallel(ensemble_job, tasks, sizeof(EnsembleTask), threads);
    for (int r = 0; r < threads; r++) status |= tasks[r].status;
    for (int64_t k = 0; k < K; k++) {
        double *sum = acc + A * k * splits; /* network k's first row; its other chunks' rows follow */
        for (int64_t s = 1; s < splits; s++)
            for (int64_t q = 0; q < A; q++) sum[q] += sum[A * s + q];
        /* sum = [ε, Ū (H*D), b̄ (H), W̄ (H), c̄] */
        eps[k] = (real)sum[0];
        for (int64_t q = 0; q < H * D; q++) dU[k * H * D + q] = (real)sum[1 + q];
        for (int64_t j = 0; j < H; j++) db[k * H + j] = (real)sum[1 + H * D + j];
        for (int64_t j = 0; j < H; j++) dW[k * H + j] = (real)sum[1 + H * D + H + j];
        dc[k] = (real)sum[1 + H * D + 2 * H];
    }
    free(acc);
    return status;
}

/* ---- The metrics of K networks (torch_tanhnet/sweep/metrics.py) ----
 *
 * Network k reads its samples at X + k·x_stride, y + k·y_stride as above, and its N samples are two
 * parts side by side: [0, n_first) and [n_first, N) (a training set, then a test set). For each
 * part the job sums the cost L_i and counts the samples classified right ((z_i > 0) = (y_i > ½)):
 * out[4k .. 4k+3] = [Σ L over part 0, correct in part 0, Σ L over part 1, correct in part 1],
 * per block in the working precision, across blocks in double. The threads take networks one at a time
 * from a shared counter; each network's row is written by one thread, so the result never depends on
 * timing. */
typedef struct {
    Task proto; /* D, H */
    const real *X, *y, *U, *b, *W, *c;
    int64_t K, N, n_first, x_stride, y_stride;
    atomic_int_fast64_t *next; /* the next network not yet taken, shared by the threads */
    double *out;
    int status;
} EvaluateTask;

/* z of the block [i, i+n) for the handout's shape (D = 2, H = 3), the sizes known to the compiler as in
 * fused_loss_job_seed: one vectorised loop per transcendental function. h holds 3·BLOCK reals. */
static void seed_forward_block(const Task *a, int64_t i, int64_t n, real *h, real *z) {
    const real *x = a->X + 2 * i;
    const real u00 = a->U[0], u01 = a->U[1], u10 = a->U[2], u11 = a->U[3], u20 = a->U[4], u21 = a->U[5];
    const real b0 = a->b[0], b1 = a->b[1], b2 = a->b[2], w0 = a->W[0], w1 = a->W[1], w2 = a->W[2], c = a->c[0];
    real *h0 = h, *h1 = h + BLOCK, *h2 = h + 2 * BLOCK;
#pragma omp simd
    for (int64_t t = 0; t < n; t++) {
        const real x0 = x[2 * t], x1 = x[2 * t + 1];
        h0[t] = u00 * x0 + u01 * x1 + b0; /* g_ij = Σ_k u_jk x_ik + b_j */
        h1[t] = u10 * x0 + u11 * x1 + b1;
        h2[t] = u20 * x0 + u21 * x1 + b2;
    }
#pragma omp simd
    for (int64_t t = 0; t < n; t++) h0[t] = TANH(h0[t]); /* h_ij = tanh(g_ij) */
#pragma omp simd
    for (int64_t t = 0; t < n; t++) h1[t] = TANH(h1[t]);
#pragma omp simd
    for (int64_t t = 0; t < n; t++) h2[t] = TANH(h2[t]);
#pragma omp simd
    for (int64_t t = 0; t < n; t++) z[t] = w0 * h0[t] + w1 * h1[t] + w2 * h2[t] + c; /* z_i = Σ_j w_j h_ij + c */
}

static void *ensemble_evaluate_job(void *p) {
    EvaluateTask *e = p;
    const int64_t D = e->proto.D, H = e->proto.H;
    const int64_t Hb = H > 3 ? H : 3; /* room for seed_forward_block's three rows */
    real *buf = malloc(sizeof(real) * BLOCK * (Hb + D + 1));
    if (!buf) { e->status = 1; return NULL; }
    real *h = buf, *xs = h + Hb * BLOCK, *z = xs + D * BLOCK;
    for (int64_t k = atomic_fetch_add(e->next, 1); k < e->K; k = atomic_fetch_add(e->next, 1)) {
        Task t = e->proto;
        t.X = e->X + k * e->x_stride;
        t.U = e->U + k * H * D; t.b = e->b + k * H; t.W = e->W + k * H; t.c = e->c + k;
        const real *y = e->y + k * e->y_stride;
        double *out = e->out + 4 * k;
        for (int part = 0; part < 2; part++) {
            const int64_t lo = part == 0 ? 0 : e->n_first, hi = part == 0 ? e->n_first : e->N;
            double lsum = 0, right = 0;
            for (int64_t i = lo; i < hi; i += BLOCK) {
                const int64_t n = hi - i < BLOCK ? hi - i : BLOCK;
                if (D == 2 && H == 3) seed_forward_block(&t, i, n, h, z);
                else {
                    load_block(&t, i, n, xs);
                    forward_block(&t, n, xs, h, z);
                }
                real L = 0, r = 0;
#pragma omp simd reduction(+ : L, r)
                for (int64_t s = 0; s < n; s++) {
                    const real zs = z[s], ys = y[i + s];
                    L += ((zs > 0 ? zs : 0) - ys * zs) + LOG1P(EXP(-FABS(zs))); /* L, bracket first (cost_block) */
                    r += (zs > 0) == (ys > (real)0.5) ? 1 : 0;              /* right: (z > 0) = (y > ½) */
                }
                lsum += L;
                right += r;
            }
            out[2 * part] = lsum;
            out[2 * part + 1] = right;
        }
    }
    free(buf);
    return NULL;
}

/* out (K, 4) doubles: each network's Σ L and right answers over its samples [0, n_first) and [n_first, N). */
int tn_ensemble_evaluate(const real *X, int64_t x_stride, const real *y, int64_t y_stride, const real *U,
                         const real *b, const real *W, const real *c, int64_t K, int64_t N, int64_t D, int64_t H,
                         int64_t n_first, double *out, int threads) {
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads > K) threads = (int)(K > 0 ? K : 1);
    atomic_int_fast64_t next = 0;
    EvaluateTask tasks[MAX_THREADS];
    for (int r = 0; r < threads; r++) {
        EvaluateTask e = {{0}};
        e.proto.D = D; e.proto.H = H;
        e.X = X; e.y = y; e.U = U; e.b = b; e.W = W; e.c = c;
        e.N = N; e.n_first = n_first; e.x_stride = x_stride; e.y_stride = y_stride;
        e.K = K;
        e.next = &next;
        e.out = out;
        tasks[r] = e;
    }
    int status = 0;
    parallel(ensemble_evaluate_job, tasks, sizeof(EvaluateTask), threads);
    for (int r = 0; r < threads; r++) status |= tasks[r].status;
    return status;
}

/* ---- The lane kernel's vector maths (vector_maths.h) on n floats, for tests/test_vector_maths.py ----
 * which: 0 tanh x, 1 e^x (x <= 0), 2 log(1 + x) (0 <= x <= 1), 3 σ(x). Returns 2 in the float64 build,
 * which has no lane kernel. */
int tn_vector_maths(int which, const real *x, real *out, int64_t n) {
#ifdef TN_DOUBLE
    (void)which, (void)x, (void)out, (void)n;
    return 2;
#else
    if (which < 0 || which > 3) return 2;
    for (int64_t i = 0; i < n; i += LANES) {
        vf v = {0}, r;
        const int64_t m = n - i < LANES ? n - i : LANES;
        for (int64_t l = 0; l < m; l++) v[l] = x[i + l];
        if (which == 0) r = vtanh(v);
        else if (which == 1) r = vexp_neg(v);
        else if (which == 2) r = vlog1p_unit(v);
        else r = vsigmoid_from(v, vexp_neg(-vabs(v)));
        for (int64_t l = 0; l < m; l++) out[i + l] = r[l];
    }
    return 0;
#endif
}
