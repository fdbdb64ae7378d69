/* The handout's network (D = 2, H = 3) for LANES networks at once, one network per vector lane (float32).
 *
 * Included by tanhnet_kernels.c for tn_ensemble_fused_loss. The sample-by-sample job
 * (fused_loss_job_seed) vectorises over the samples of one network; with a few hundred samples a
 * network it ends each block with 14 horizontal sums and calls glibc's vector functions, which spill
 * everything. Here lane l holds network k0 + l: its 13 weights and 14 running sums sit in registers,
 * each sample is one broadcast (shared X) or gather (X per network), and no sum crosses lanes. The
 * maths are inline (vector_maths.h). Samples go in sub-blocks of SUB, in three passes that each have
 * independent work per sample, so the processor overlaps samples: tanh of the hidden layer, then the
 * cost and z̄, then the 13 gradient sums. Sums are per sub-block in float32, across sub-blocks in
 * double, as in the other kernels.
 */
#include "vector_maths.h"

#define SUB 64

/* Lane l's value of the per-network array p (element `at` of network k_l's row of `stride` floats). */
static inline __attribute__((always_inline)) vf lane_gather(const float *p, const int64_t *row, int64_t at) {
    vf v;
    for (int l = 0; l < LANES; l++) v[l] = p[row[l] + at];
    return v;
}

/* One unit: networks [k0, k0 + LANES) (the last ones repeated past K, never written) over samples
 * [begin, end); each network's 14 sums [ε, Ū (3×2), b̄ (3), W̄ (3), c̄] into acc + A·(k·splits + s).
 * `shared` (a constant at each call) says X and y are one set for all networks. */
static inline __attribute__((always_inline)) void lanes_unit(const EnsembleTask *e, int64_t k0, int64_t s,
                                                             int64_t begin, int64_t end, const int shared) {
    const int64_t K = e->K, A = acc_size(2, 3);
    int64_t k_of[LANES], x_row[LANES], y_row[LANES];
    vf w[13]; /* the weights [U (3×2), b (3), W (3), c], network k_l's in lane l */
    for (int l = 0; l < LANES; l++) {
        const int64_t k = k0 + l < K ? k0 + l : K - 1;
        k_of[l] = k;
        x_row[l] = k * e->x_stride;
        y_row[l] = k * e->y_stride;
        for (int q = 0; q < 6; q++) w[q][l] = e->U[6 * k + q];
        for (int j = 0; j < 3; j++) w[6 + j][l] = e->b[3 * k + j], w[9 + j][l] = e->W[3 * k + j];
        w[12][l] = e->c[k];
    }
    const vf u00 = w[0], u01 = w[1], u10 = w[2], u11 = w[3], u20 = w[4], u21 = w[5];
    const vf b0 = w[6], b1 = w[7], b2 = w[8], w0 = w[9], w1 = w[10], w2 = w[11], c = w[12];
    const float inv_n = (float)e->proto.inv_n;
    double sums[14][LANES] = {{0}};
    vf X0[SUB], X1[SUB], Y[SUB], H0[SUB], H1[SUB], H2[SUB], ZB[SUB];
    for (int64_t i0 = begin; i0 < end; i0 += SUB) {
        const int64_t n = end - i0 < SUB ? end - i0 : SUB;
        for (int64_t t = 0; t < n; t++) { /* pass 1: the hidden layer */
            const int64_t i = i0 + t;
            const vf x0 = shared ? vsplat(e->X[2 * i]) : lane_gather(e->X, x_row, 2 * i);
            const vf x1 = shared ? vsplat(e->X[2 * i + 1]) : lane_gather(e->X, x_row, 2 * i + 1);
            X0[t] = x0, X1[t] = x1;
            Y[t] = shared ? vsplat(e->y[i]) : lane_gather(e->y, y_row, i);
            H0[t] = vtanh(u00 * x0 + u01 * x1 + b0); /* h_ij = tanh(g_ij), g_ij = Σ_k u_jk x_ik + b_j */
            H1[t] = vtanh(u10 * x0 + u11 * x1 + b1);
            H2[t] = vtanh(u20 * x0 + u21 * x1 + b2);
        }
        vf L = {0};
        for (int64_t t = 0; t < n; t++) { /* pass 2: the cost and z̄ */
            const vf z = w0 * H0[t] + w1 * H1[t] + w2 * H2[t] + c; /* z_i = Σ_j w_j h_ij + c */
            const vf e_ = vexp_neg(-vabs(z));                      /* e^(−|z|), never overflows */
            L += (vmax(z, vsplat(0.0f)) - Y[t] * z) + vlog1p_unit(e_); /* L: the bracket first (cost_block) */
            ZB[t] = (vsigmoid_from(z, e_) - Y[t]) * inv_n;          /* z̄ = (σ(z) − y)/N */
        }
        vf du00 = {0}, du01 = {0}, du10 = {0}, du11 = {0}, du20 = {0}, du21 = {0};
        vf db0 = {0}, db1 = {0}, db2 = {0}, dw0 = {0}, dw1 = {0}, dw2 = {0}, dc = {0};
        for (int64_t t = 0; t < n; t++) { /* pass 3: the 13 gradient sums */
            const vf zb = ZB[t], h0 = H0[t], h1 = H1[t], h2 = H2[t], x0 = X0[t], x1 = X1[t];
            dc += zb;                                   /* c̄ = Σ_i z̄_i */
            dw0 += zb * h0, dw1 += zb * h1, dw2 += zb * h2; /* w̄_j = Σ_i z̄_i h_ij */
            const vf g0 = zb * w0 * (1.0f - h0 * h0);   /* ḡ_ij = z̄_i w_j (1 − h_ij²) */
            const vf g1 = zb * w1 * (1.0f - h1 * h1);
            const vf g2 = zb * w2 * (1.0f - h2 * h2);
            db0 += g0, db1 += g1, db2 += g2;            /* b̄_j = Σ_i ḡ_ij */
            du00 += g0 * x0, du01 += g0 * x1;           /* ū_jk = Σ_i ḡ_ij x_ik */
            du10 += g1 * x0, du11 += g1 * x1;
            du20 += g2 * x0, du21 += g2 * x1;
        }
        const vf part[14] = {L, du00, du01, du10, du11, du20, du21, db0, db1, db2, dw0, dw1, dw2, dc};
        for (int l = 0; l < LANES; l++) sums[0][l] += (double)part[0][l] * e->proto.inv_n; /* ε = (1/N) Σ_i L_i */
        for (int q = 1; q < 14; q++)
            for (int l = 0; l < LANES; l++) sums[q][l] += (double)part[q][l];
    }
    for (int l = 0; l < LANES && k0 + l < K; l++) {
        double *row = e->acc + A * (k_of[l] * e->splits + s);
        for (int q = 0; q < 14; q++) row[q] = sums[q][l];
    }
}

/* Unit u of the lane schedule: lane group u / splits, chunk u % splits of the samples (whole blocks). */
static void lanes_job_seed(const EnsembleTask *e, int64_t u) {
    const int64_t s = u % e->splits;
    int64_t begin, end;
    chunk_bounds(e->N, s, e->splits, &begin, &end);
    if (e->x_stride == 0 && e->y_stride == 0) lanes_unit(e, u / e->splits * LANES, s, begin, end, 1);
    else lanes_unit(e, u / e->splits * LANES, s, begin, end, 0);
}
