/* Every C kernel over shapes, schedules and edge sizes, for tests/test_kernels_sanitized.py, which builds
 * this file (with the kernels' source included) under AddressSanitizer and UndefinedBehaviorSanitizer,
 * once in float32 and once with -DTN_DOUBLE. Exit code 0: every call returned 0 (or 2 where a lane kernel
 * was asked of a float64 build) and no sanitizer spoke (they abort at the first error). */
#include <stdio.h>
#include <stdlib.h>
#include "tanhnet_kernels.c"

static real *filled(int64_t n, int64_t seed) { /* n values in [-1, 1], or one value for n = 0 */
    real *p = malloc(sizeof(real) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < (n > 0 ? n : 1); i++) p[i] = (real)(((i * 7919 + seed * 104729) % 2001) / 1000.0 - 1.0);
    return p;
}

#define CHECK(call, ok2)                                                            \
    do {                                                                            \
        int st_ = (call);                                                           \
        if (st_ != 0 && !(ok2 && st_ == 2)) {                                       \
            fprintf(stderr, "%s returned %d (line %d)\n", #call, st_, __LINE__);    \
            return 1;                                                               \
        }                                                                           \
    } while (0)

int main(void) {
    const int64_t shapes[][2] = {{2, 3}, {3, 5}, {1, 1}};
    for (int sh = 0; sh < 3; sh++)
        for (int64_t K = 1; K <= 37; K += 12)
            for (int64_t N = 1; N <= 600; N += 299) {
                const int64_t D = shapes[sh][0], H = shapes[sh][1];
                for (int shared = 0; shared < 2; shared++) {
                    const int64_t xs = shared ? 0 : N * D, ys = shared ? 0 : N;
                    real *X = filled(shared ? N * D : K * N * D, 1), *y = filled(shared ? N : K * N, 2);
                    real *U = filled(K * H * D, 3), *b = filled(K * H, 4), *W = filled(K * H, 5), *c = filled(K, 6);
                    real *eps = filled(K, 0), *dU = filled(K * H * D, 0), *db = filled(K * H, 0);
                    real *dW = filled(K * H, 0), *dc = filled(K, 0), *dX = filled(K * N * D, 0);
                    double *out = malloc(sizeof(double) * 4 * (size_t)K);
                    for (int threads = 1; threads <= 3; threads += 2)
                        for (int64_t splits = 1; splits <= 3; splits += 2) {
                            for (int lanes = 0; lanes < 2; lanes++)
                                CHECK(tn_ensemble_fused_loss(X, xs, y, ys, U, b, W, c, K, N, D, H, NULL, eps, dU, db,
                                                             dW, dc, splits, lanes, threads), lanes);
                            CHECK(tn_ensemble_fused_loss(X, xs, y, ys, U, b, W, c, K, N, D, H, dX, eps, dU, db, dW,
                                                         dc, splits, 0, threads), 0);
                            CHECK(tn_ensemble_evaluate(X, xs, y, ys, U, b, W, c, K, N, D, H, N / 2, out, threads), 0);
                        }
                    free(X), free(y), free(U), free(b), free(W), free(c), free(eps), free(dU), free(db), free(dW);
                    free(dc), free(dX), free(out);
                }
            }
    for (int64_t N = 1; N <= 40000; N = N * 7 + 3) { /* one network: up to several chunks a thread */
        for (int sh = 0; sh < 3; sh++) {
            const int64_t D = shapes[sh][0], H = shapes[sh][1];
            real *X = filled(N * D, 1), *y = filled(N, 2), *U = filled(H * D, 3), *b = filled(H, 4), *W = filled(H, 5);
            real *c = filled(1, 6), *g = filled(H * D + 2 * H + 2, 0), *dX = filled(N * D, 0), *z = filled(N, 0);
            real *Hs = filled(N * H, 0), *zbar = filled(N, 0);
            for (int threads = 1; threads <= 4; threads++) {
                CHECK(tn_fused_loss(X, y, U, b, W, c, N, D, H, NULL, g, g + 1, g + 1 + H * D, g + 1 + H * D + H,
                                    g + 1 + H * D + 2 * H, threads), 0);
                CHECK(tn_fused_loss(X, y, U, b, W, c, N, D, H, dX, g, g + 1, g + 1 + H * D, g + 1 + H * D + H,
                                    g + 1 + H * D + 2 * H, threads), 0);
                CHECK(tn_forward(X, U, b, W, c, N, D, H, z, Hs, threads), 0);
                CHECK(tn_cost(z, y, N, 1.0, zbar, g, threads), 0);
                CHECK(tn_backward(X, U, W, Hs, zbar, N, D, H, dX, g + 1, g + 1 + H * D, g + 1 + H * D + H,
                                  g + 1 + H * D + 2 * H, threads), 0);
            }
            free(X), free(y), free(U), free(b), free(W), free(c), free(g), free(dX), free(z), free(Hs), free(zbar);
        }
    }
    real x[37], r[37];
    for (int i = 0; i < 37; i++) x[i] = (real)(i - 18) * 0.5f;
    for (int which = 0; which < 4; which++) CHECK(tn_vector_maths(which, x, r, 37), 1);
    puts("clean");
    return 0;
}
