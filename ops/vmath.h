/* vmath.h — e^x, ln x, tanh x and the logistic sigmoid for one element,
 * written so that a loop over them vectorises: no branches (every path
 * is computed and one is selected), no calls, no tables. Private to
 * ops/; the ops' kernels (unary.c) run them in loops with AVX2 and
 * AVX-512 clones. Nothing here knows a tensor.
 *
 * The float functions are exact to a few ulp (the bounds are in ops.h
 * and tests/test_unary.c measures them over every float of the useful
 * range); the double ones use the same methods with longer polynomials.
 * No fused multiply-add is asked for and c_std=c11 turns contraction off,
 * so every clone (SSE2, AVX2, AVX-512) rounds alike and gives the same
 * bits.
 *
 * Methods (Cody and Waite's range reduction, Taylor series; the numbers
 * below are derived in the comments, not copied):
 *   exp:  x = k·ln2 + r, |r| <= ln2/2, k = round(x/ln2); ln2 split into a
 *         short hi part (k·hi is exact) and lo. e^r by its Taylor series,
 *         2^k built in the exponent field in two halves, so results down
 *         to the smallest denormal round once and overflow gives inf.
 *   log:  x = 2^k·m, m in [√½, √2), f = m − 1 (exact), s = f/(2 + f),
 *         ln(1+f) = 2 atanh s = f − s·(f − T), T = Σ_j≥1 2s^2j/(2j+1):
 *         the leading term f is exact and the correction is at most a
 *         fifth of the result, so its rounding hardly shows. Denormals
 *         are scaled by 2^(mantissa bits) first.
 *   tanh: |x| < 0.55 (tanh < ½): x + x³·P(x²), P the Chebyshev fit of
 *         (tanh x − x)/x³ on that interval (relative error 4e-9 for float,
 *         3e-18 for double); above, 1 − 2/(e^2|x| + 1), where the
 *         cancellation is at most a factor 1 and e^2|x| = inf gives ±1.
 *   sigmoid: e = e^−|x| in (0, 1] never overflows; 1/(1 + e) for x >= 0,
 *         e/(1 + e) below (one division either way), so the left tail keeps its relative accuracy
 *         down to the denormals (1/(1 + e^−x) would overflow there).
 */
#ifndef TG_VMATH_H
#define TG_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * float */

static inline uint32_t vm_bits_f(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  return u;
}
static inline float vm_from_bits_f(uint32_t u) {
  float x;
  memcpy(&x, &u, sizeof x);
  return x;
}

/* ln2 = HI + LO, HI of 16 significant bits: k·HI is exact for |k| < 2^8. */
#define VM_LN2_HI_F 0x1.62e4p-1f
#define VM_LN2_LO_F 0x1.7f7d1cp-20f

static inline float vm_exp_f(float x) {
  /* e^89 overflows and e^−104 rounds to 0 (below half of 2^−149), so the
   * clamp changes no result; NaN fails both tests and goes through. */
  float xc = x > 89.0f ? 89.0f : x;
  xc = xc < -104.0f ? -104.0f : xc;
  /* Adding 1.5·2^23 rounds x/ln2 to an integer k held in the low bits. */
  const float shift = 0x1.8p23f;
  const float t = xc * 0x1.715476p+0f + shift; /* log2(e) */
  const int32_t k = (int32_t)(vm_bits_f(t) - vm_bits_f(shift));
  const float kf = t - shift;
  const float r = (xc - kf * VM_LN2_HI_F) - kf * VM_LN2_LO_F; /* |r| <= 0.347 */
  /* Taylor to r^7: the remainder r^8/8! is 5e-9, 0.04 ulp. */
  float p = 1 / 5040.0f;
  p = p * r + 1 / 720.0f;
  p = p * r + 1 / 120.0f;
  p = p * r + 1 / 24.0f;
  p = p * r + 1 / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  /* 2^k = 2^k1·2^k2, each a normal float for k in [−150, 128]: p·2^k1 is
   * exact, and the second product rounds once (denormals included). */
  const int32_t k1 = k / 2, k2 = k - k1;
  const float s1 = vm_from_bits_f((uint32_t)(k1 + 127) << 23);
  const float s2 = vm_from_bits_f((uint32_t)(k2 + 127) << 23);
  return p * s1 * s2;
}

static inline float vm_log_f(float x) {
  /* Denormals times 2^23 are normal; k takes the 23 back. */
  const int sub = x < 0x1p-126f;
  const float xscaled = x * 0x1p23f;
  const float xs = sub ? xscaled : x;
  /* Subtracting √½'s bits puts m = x/2^k in [√½, √2): k is the exponent
   * field of the difference, m's mantissa its low bits plus √½'s. */
  const uint32_t b = vm_bits_f(xs) - vm_bits_f(0x1.6a09e6p-1f);
  const int32_t k = (int32_t)(b >> 23) - (int32_t)((b >> 31) << 9); /* b >> 23, signed */
  const float m = vm_from_bits_f((b & 0x7fffff) + vm_bits_f(0x1.6a09e6p-1f));
  const float kf = (float)k - (sub ? 23.0f : 0.0f);
  const float f = m - 1.0f; /* exact (Sterbenz) */
  const float s = f / (2.0f + f), z = s * s;
  /* T = 2z/3 + 2z²/5 + 2z³/7 + 2z⁴/9; |s| <= 0.172, so the next term of
   * ln(1+f), 2s^11/11, is 2e-9 of the result. */
  float t = 2 / 9.0f;
  t = t * z + 2 / 7.0f;
  t = t * z + 2 / 5.0f;
  t = t * z + 2 / 3.0f;
  t = t * z;
  float y = kf * VM_LN2_LO_F - s * (f - t);
  y = (y + f) + kf * VM_LN2_HI_F;
  /* ln 0 = −inf, ln of x < 0 is NaN, ln inf = inf, NaN stays NaN. */
  const int zero = x == 0, negative = x < 0, finite = x < INFINITY;
  const float special = zero ? -INFINITY : negative ? NAN : x;
  return (negative | zero | !finite) ? special : y;
}

static inline float vm_tanh_f(float x) {
  const float ax = fabsf(x), z = x * x;
  /* Chebyshev fit of (tanh x − x)/x³ in z = x² on [0, 0.3025]. */
  float p = -0.0066102278311147345686f;
  p = p * z + 0.021309388664443473836f;
  p = p * z - 0.053909428827460545444f;
  p = p * z + 0.1333311372902087191f;
  p = p * z - 0.33333332007976979681f;
  /* On |x|, the sign put back last: tanh(−0) = −0, and tanh(NaN) NaN. */
  const float small = ax + ax * z * p;
  const float large = 1.0f - 2.0f / (vm_exp_f(2.0f * ax) + 1.0f);
  return copysignf(ax < 0.55f ? small : large, x);
}

static inline float vm_sigmoid_f(float x) {
  const float e = vm_exp_f(-fabsf(x));
  return (x >= 0 ? 1.0f : e) / (1.0f + e);
}

/* ------------------------------------------------------------------------
 * double: the same methods, longer polynomials */

static inline uint64_t vm_bits_d(double x) {
  uint64_t u;
  memcpy(&u, &x, sizeof u);
  return u;
}
static inline double vm_from_bits_d(uint64_t u) {
  double x;
  memcpy(&x, &u, sizeof x);
  return x;
}

/* ln2 = HI + LO, HI of 42 significant bits: k·HI is exact for |k| < 2^11. */
#define VM_LN2_HI_D 0x1.62e42fefa38p-1
#define VM_LN2_LO_D 0x1.ef35793c7673p-45

static inline double vm_exp_d(double x) {
  /* e^710 overflows, e^−746 rounds to 0 (below half of 2^−1074). */
  double xc = x > 710.0 ? 710.0 : x;
  xc = xc < -746.0 ? -746.0 : xc;
  const double shift = 0x1.8p52;
  const double t = xc * 0x1.71547652b82fep+0 + shift; /* log2(e) */
  const int64_t k = (int64_t)(vm_bits_d(t) - vm_bits_d(shift));
  const double kf = t - shift;
  const double r = (xc - kf * VM_LN2_HI_D) - kf * VM_LN2_LO_D; /* |r| <= 0.347 */
  /* Taylor to r^13: the remainder r^14/14! is 4e-18, 0.04 ulp. */
  static const double inv_fact[14] = {1.0,
                                      1.0,
                                      1 / 2.0,
                                      1 / 6.0,
                                      1 / 24.0,
                                      1 / 120.0,
                                      1 / 720.0,
                                      1 / 5040.0,
                                      1 / 40320.0,
                                      1 / 362880.0,
                                      1 / 3628800.0,
                                      1 / 39916800.0,
                                      1 / 479001600.0,
                                      1 / 6227020800.0};
  double p = inv_fact[13];
  for (int j = 12; j >= 0; j--)
    p = p * r + inv_fact[j];
  /* k in [−1077, 1025]: both halves of 2^k are normal doubles. */
  const int64_t k1 = k / 2, k2 = k - k1;
  const double s1 = vm_from_bits_d((uint64_t)(k1 + 1023) << 52);
  const double s2 = vm_from_bits_d((uint64_t)(k2 + 1023) << 52);
  return p * s1 * s2;
}

static inline double vm_log_d(double x) {
  const int sub = x < 0x1p-1022;
  const double xscaled = x * 0x1p52;
  const double xs = sub ? xscaled : x;
  const uint64_t b = vm_bits_d(xs) - vm_bits_d(0x1.6a09e667f3bcdp-1);
  const int64_t k = (int64_t)(b >> 52) - (int64_t)((b >> 63) << 12); /* b >> 52, signed */
  const double m = vm_from_bits_d((b & 0xfffffffffffffull) + vm_bits_d(0x1.6a09e667f3bcdp-1));
  const double kf = (double)k - (sub ? 52.0 : 0.0);
  const double f = m - 1.0;
  const double s = f / (2.0 + f), z = s * s;
  /* T = Σ_{j=1..10} 2z^j/(2j+1); the next term of ln(1+f), 2s^23/23, is
   * 7e-19 of the result. */
  double t = 2 / 21.0;
  for (int j = 9; j >= 1; j--)
    t = t * z + 2.0 / (2 * j + 1);
  t = t * z;
  double y = kf * VM_LN2_LO_D - s * (f - t);
  y = (y + f) + kf * VM_LN2_HI_D;
  const int zero = x == 0, negative = x < 0, finite = x < INFINITY;
  const double special = zero ? -INFINITY : negative ? NAN : x;
  return (negative | zero | !finite) ? special : y;
}

static inline double vm_tanh_d(double x) {
  const double ax = fabs(x), z = x * x;
  /* Chebyshev fit of (tanh x − x)/x³ in z = x² on [0, 0.3025], degree 10. */
  static const double c[11] = {
      -0.000020602765376366341979, 0.000085113136855776715693, -0.00023463474108872371477,
      0.00058893605200740577709,   -0.0014556618301007160336,  0.0035921103786890238773,
      -0.0088632343978143548378,   0.021869488493666941903,    -0.053968253967434014504,
      0.13333333333332714826,      -0.33333333333333332561};
  double p = c[0];
  for (int j = 1; j < 11; j++)
    p = p * z + c[j];
  /* On |x|, the sign put back last: tanh(−0) = −0, and tanh(NaN) NaN. */
  const double small = ax + ax * z * p;
  const double large = 1.0 - 2.0 / (vm_exp_d(2.0 * ax) + 1.0);
  return copysign(ax < 0.55 ? small : large, x);
}

static inline double vm_sigmoid_d(double x) {
  const double e = vm_exp_d(-fabs(x));
  return (x >= 0 ? 1.0 : e) / (1.0 + e);
}

#endif
