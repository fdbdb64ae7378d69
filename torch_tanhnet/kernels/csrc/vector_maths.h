/* float32 maths on LANES values at once, written inline so that a whole training step stays in registers
 * (ensemble_lanes.h). GCC's vector extensions compile them to AVX-512 (or to whatever -march=native has).
 *
 * A call into glibc's vector library (libmvec, what the sample-by-sample kernels use) clobbers every vector
 * register, so a kernel that keeps 13 weights and 14 running sums of 16 networks in registers cannot make
 * one. These are the textbook reductions, checked against float64 over every 7th positive float
 * (tests/test_vector_maths.py, through tn_vector_maths in tanhnet_kernels.c); largest errors found:
 *   vtanh 2.43 ulp, vexp_neg 1.01 ulp (subnormal results included), vlog1p_unit 1.96 ulp,
 *   vsigmoid_from 2.83 ulp
 * (glibc documents up to 2 ulp for its scalar tanhf, expf and log1pf). NaN stays NaN; tanh(±∞) = ±1.
 */
#include <stdint.h>

#define LANES 16
typedef float vf __attribute__((vector_size(4 * LANES)));
typedef int32_t vi __attribute__((vector_size(4 * LANES)));

static inline vf vsplat(float a) { return (vf){0} + a; }
static inline vf vsel(vi m, vf a, vf b) { return (vf)((m & (vi)a) | (~m & (vi)b)); } /* m ? a : b, lane by lane */
/* NaN in a stays NaN (a comparison with NaN is false): a network whose weights have gone to NaN gets a NaN cost. */
static inline vf vmax(vf a, vf b) { return vsel(a < b, b, a); }
static inline vf vmin(vf a, vf b) { return vsel(a > b, b, a); }
static inline vf vabs(vf a) { return (vf)((vi)a & 0x7fffffff); }

/* Round to the nearest integer by adding 1.5·2^23 (|x| < 2^22); the integer is then the low bits of t. */
#define ROUNDER 12582912.0f
/* 2^n for an integer −126 <= n <= 127: n + 127 in the exponent field. */
static inline vf pow2i(vi n) { return (vf)((n + 127) << 23); }
/* The integer n held in t = n + ROUNDER. */
static inline vi rounded(vf t) { return (vi)t - (vi)vsplat(ROUNDER); }

/* x = n ln2 + r with n = round(x / ln2) held in *t (as rounded() reads it) and |r| <= ln2/2, ln2 in two
 * parts (Cody and Waite) so that r is exact to float32. */
static inline vf reduce_ln2(vf x, vf *t) {
    *t = x * 1.44269504088896341f + ROUNDER;
    const vf n = *t - ROUNDER;
    const vf r = x - n * 0.693359375f;
    return r - n * -2.12194440e-4f;
}

/* e^x for x <= 0 (Cephes' expf): x = n ln2 + r with |r| <= ln2/2, e^r by a degree-6 polynomial, times 2^n
 * in two steps, 2^⌊n/2⌋ · 2^(n − ⌊n/2⌋), so that results down to the smallest subnormal float come out
 * right (σ(−100) = 3.7e−44, as in libm). Below x = −104, e^x rounds to 0. */
static inline vf vexp_neg(vf x) {
    x = vmax(x, vsplat(-104.0f));
    vf t;
    const vf r = reduce_ln2(x, &t);
    vf p = r * 1.9875691500e-4f + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f; /* e^r */
    const vi ni = rounded(t), half = ni >> 1;
    return p * pow2i(half) * pow2i(ni - half);
}

/* e^y − 1 for 0 <= y <= 18: y = n ln2 + r, e^r − 1 = r + r² Q(r) (Q fitted on |r| <= ln2/2, relative
 * error 1.4e−7 in Q, 2e−8 in the result), e^y − 1 = 2^n (e^r − 1) + (2^n − 1): every term is >= 0, so
 * nothing cancels and the result is accurate for small y too. */
static inline vf vexpm1_pos(vf y) {
    vf t;
    const vf r = reduce_ln2(y, &t);
    vf q = r * 0.0013933643521468692f + 0.008363175565459622f;
    q = q * r + 0.041666464976135124f;
    q = q * r + 0.16666577003160377f;
    q = q * r + 0.5000000013462218f;
    const vf two_n = pow2i(rounded(t));
    return two_n * (r + (r * r) * q) + (two_n - 1.0f);
}

/* tanh x = sign(x) · m / (m + 2) with m = e^(2|x|) − 1; |x| is clamped to 9, beyond which tanh rounds to
 * 1 in float32. */
static inline vf vtanh(vf x) {
    const vi sign = (vi)x & (int32_t)0x80000000;
    const vf a = vmin(vabs(x), vsplat(9.0f));
    const vf m = vexpm1_pos(a + a);
    return (vf)((vi)(m / (m + 2.0f)) | sign);
}

/* log(1 + e) for 0 <= e <= 1: with s = e / (2 + e) (0 <= s <= 1/3), log(1 + e) = 2 atanh(s)
 * = 2s (1 + s² P(s²)), P fitted on s² <= 1/9 (relative error 4e−7 in P, 2e−8 in the result). */
static inline vf vlog1p_unit(vf e) {
    const vf s = e / (e + 2.0f), t = s * s;
    vf p = t * 0.1343375093317182f + 0.14116982575699977f;
    p = p * t + 0.20003835174512102f;
    p = p * t + 0.33333319836371594f;
    return (s + s) + (s + s) * (t * p);
}

/* σ(z) from z and e = e^(−|z|): 1/(1 + e) for z >= 0, e/(1 + e) below. */
static inline vf vsigmoid_from(vf z, vf e) {
    const vf r = 1.0f / (1.0f + e);
    return vsel(z >= 0, r, e * r);
}
