/*
 * The tanh rate network's Euler step with one tangent vector, for x86-64 AVX-512 or AVX2.
 *
 * Per network c (coupling eps_c = dt * g_c, keep = 1 - dt) and matrix W (N x N):
 *
 *     x_c = eps_c tanh(h_c),  y_c = eps_c (1 - tanh(h_c)^2) q_c,
 *     h_c' = keep h_c + W x_c,  q_c' = keep q_c + W y_c.
 *
 * The 2G rows [x_1 .. x_G | y_1 .. y_G] of a step are multiplied by W in one pass (G <= 7,
 * so at most 14 rows): W is packed once into tiles of TILE output neurons (tile t holds
 * W[TILE t + l][j] at [t][j][l]; TILE = 32 with AVX-512, 8 with AVX2), a tile's 14 x TILE
 * block of the product is held in registers (28 AVX-512 or 14 AVX2 ones) over the whole sum
 * over j, and the step's pointwise work (the Euler update, tanh, the slope and the next
 * step's rows) is done on that block while it is still in registers. The threads split the
 * tiles and meet at one barrier per step.
 *
 * Every output entry is the sum over j = 0 .. N-1 in that order, one fused multiply-add
 * per term, whatever the number of rows, tiles per thread or threads, and the squared norm
 * of q_c is summed per tile in double and then over the tiles in their order: for one
 * instruction set, the numbers of a network depend only on its own matrix, coupling, state
 * and vector.
 *
 * Re-orthonormalisation (k = 1) every `steps_per_interval` steps: log ||q_c|| is recorded
 * and the division by ||q_c|| is applied in the next step's update (the tangent map is
 * linear, so (keep q + W y) / r equals the step of the normalised vector).
 *
 * tanh(x) = x + x^3 P(x^2) (its Taylor series to x^21) for |x| < 0.55, else
 * sign(x) (1 - 2 / (exp(2|x|) + 1)) with exp by Cody-Waite reduction and its Taylor series;
 * at most 2 ulp from the exact value.
 *
 * Reference: Engelken, Wolf & Abbott (2023), Phys. Rev. Research 5, 043044.
 */
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LD 16            /* floats per j in the row buffer: one 64-byte line */
#define MAX_ROWS 14      /* 2 x 7 networks */
#define MAX_TILE 32
#define SPINS 4000       /* barrier: busy-wait polls before yielding the core */

enum { ISA_NONE = 0, ISA_AVX2 = 1, ISA_AVX512 = 2 };

#define AVX512 __attribute__((target("avx512f,avx512dq,fma")))
#define AVX2 __attribute__((target("avx2,fma")))

/* Taylor coefficients of tanh(x) = x + x^3 P(x^2), highest first: c_n = 2^2n (2^2n - 1)
 * B_2n / (2n)! with the Bernoulli numbers B_2n, n = 11 .. 2. */
static const float TANH_SERIES[10] = {
    9.691537956929451e-05f, -2.3912911424355248e-04f, 5.90027440945586e-04f,
    -1.4558343870513183e-03f, 3.592128036572481e-03f, -8.863235529902197e-03f,
    2.1869488536155203e-02f, -5.396825396825397e-02f, 1.3333333333333333e-01f,
    -3.333333333333333e-01f};
/* 1/8! .. 1/0!: exp(r) for |r| <= ln2/2 (truncation below 1e-8 relative). */
static const float EXP_SERIES[9] = {1.0f / 40320, 1.0f / 5040, 1.0f / 720, 1.0f / 120,
                                    1.0f / 24, 1.0f / 6, 1.0f / 2, 1.0f, 1.0f};
#define LN2_HI 0.693145751953125f
#define LN2_LO 1.428606765330187e-06f
#define LOG2E 1.4426950408889634f

/* Which instruction set this processor (and its operating system) runs: ISA_*. */
int nrm_cpu_isa(void) {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq"))
    return ISA_AVX512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return ISA_AVX2;
  return ISA_NONE;
}

int nrm_tile_width(int isa) { return isa == ISA_AVX512 ? 32 : isa == ISA_AVX2 ? 8 : 0; }

/* ------------------------------------------------------------ the run ------------------ */

typedef struct run run_t;
/* One tile's step: with `rows`, its block of the product and the Euler update; without,
 * the current h and q; then the next step's rows and, with `sums`, the squared norms. */
typedef void (*tile_step_t)(run_t *run, int t, const float *rows, const double *scale,
                            float *next_rows, double *sums);

struct run {
  int n, g, tile, n_tiles, n_threads, tangent;
  tile_step_t step;
  const float *packed;
  const float *eps;
  float keep;
  float *h, *q;                /* g x n each (q unused without tangent vectors) */
  float *rows[2];              /* n x LD: the rows of the current and of the next step */
  double *tile_sums[2];        /* n_tiles x g: squared norms of q per tile */
  int n_steps, steps_per_interval;
  double *logs;                /* (n_steps / steps_per_interval) x g */
  atomic_int arrived;
  atomic_int phase;
  atomic_int started;          /* set once every thread that will take part has started */
};

/* `name(packed, rows, n, M, out)`: the inlined `product` with the row count M (1 .. 14) a
 * constant, so that its accumulators stay in registers. */
#define ROW_CASE(product, m) case m: product(packed, rows, n, m, out); break;
#define ROW_COUNTS(target, name, product)                                                  \
  target static void name(const float *packed, const float *rows, int n, int M,            \
                          float *out) {                                                    \
    switch (M) {                                                                           \
      ROW_CASE(product, 1) ROW_CASE(product, 2) ROW_CASE(product, 3)                       \
      ROW_CASE(product, 4) ROW_CASE(product, 5) ROW_CASE(product, 6)                       \
      ROW_CASE(product, 7) ROW_CASE(product, 8) ROW_CASE(product, 9)                       \
      ROW_CASE(product, 10) ROW_CASE(product, 11) ROW_CASE(product, 12)                    \
      ROW_CASE(product, 13) ROW_CASE(product, 14)                                          \
      default: break;                                                                      \
    }                                                                                      \
  }

/* ------------------------------------------------------------ AVX-512 ------------------ */

AVX512 static inline __m512 exp16(__m512 y) {  /* exp(y), 0 <= y <= 20 */
  __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(y, _mm512_set1_ps(LOG2E)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(LN2_HI), y);
  r = _mm512_fnmadd_ps(k, _mm512_set1_ps(LN2_LO), r);
  __m512 p = _mm512_set1_ps(EXP_SERIES[0]);
  for (int i = 1; i < 9; i++) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_SERIES[i]));
  return _mm512_scalef_ps(p, k);
}

AVX512 static inline __m512 tanh16(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f), two = _mm512_set1_ps(2.0f);
  __m512 ax = _mm512_abs_ps(x);
  __m512 y = _mm512_min_ps(_mm512_add_ps(ax, ax), _mm512_set1_ps(20.0f));
  __m512 large = _mm512_sub_ps(one, _mm512_div_ps(two, _mm512_add_ps(exp16(y), one)));
  __m512 x2 = _mm512_mul_ps(ax, ax);
  __m512 p = _mm512_set1_ps(TANH_SERIES[0]);
  for (int i = 1; i < 10; i++) p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(TANH_SERIES[i]));
  __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(ax, x2), p, ax);
  __mmask16 is_small = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.55f), _CMP_LT_OQ);
  __m512 t = _mm512_mask_blend_ps(is_small, large, small);
  t = _mm512_castsi512_ps(_mm512_or_si512(  /* the sign of x (tanh is odd) */
      _mm512_castps_si512(t),
      _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u))));
  __mmask16 is_nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  return _mm512_mask_blend_ps(is_nan, t, x);
}

/* out[r][l] = sum_j rows[j][r] W[32t + l][j] for the M rows, j in order, one FMA per term. */
AVX512 static inline __attribute__((always_inline)) void product16(
    const float *restrict packed, const float *restrict rows, int n, int M,
    float *restrict out) {
  __m512 acc[MAX_ROWS][2];
#pragma GCC unroll 14
  for (int r = 0; r < MAX_ROWS; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int j = 0; j < n; j++) {
    __m512 w0 = _mm512_loadu_ps(packed + (int64_t)j * 32);
    __m512 w1 = _mm512_loadu_ps(packed + (int64_t)j * 32 + 16);
    const float *x = rows + (int64_t)j * LD;
#pragma GCC unroll 14
    for (int r = 0; r < MAX_ROWS; r++) {
      if (r < M) {
        __m512 b = _mm512_set1_ps(x[r]);
        acc[r][0] = _mm512_fmadd_ps(w0, b, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(w1, b, acc[r][1]);
      }
    }
  }
#pragma GCC unroll 14
  for (int r = 0; r < MAX_ROWS; r++) {
    if (r < M) {
      _mm512_storeu_ps(out + r * 32, acc[r][0]);
      _mm512_storeu_ps(out + r * 32 + 16, acc[r][1]);
    }
  }
}

ROW_COUNTS(AVX512, product16_rows, product16)

AVX512 static void step16(run_t *run, int t, const float *rows, const double *scale,
                          float *next_rows, double *sums) {
  const int n = run->n, g = run->g;
  float out[MAX_ROWS * 32] __attribute__((aligned(64)));
  if (rows)
    product16_rows(run->packed + (int64_t)t * n * 32, rows, n, run->tangent ? 2 * g : g, out);
  const __m512i stride = _mm512_mullo_epi32(
      _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
      _mm512_set1_epi32(LD));
  const __m512 keep = _mm512_set1_ps(run->keep), one = _mm512_set1_ps(1.0f);
  for (int c = 0; c < g && sums; c++) sums[c] = 0.0;
  for (int half = 0; half < 2; half++) {
    int base = t * 32 + 16 * half;
    if (base >= n) break;
    __mmask16 mask = n - base >= 16 ? (__mmask16)0xFFFF
                                    : (__mmask16)((1u << (n - base)) - 1u);
    float *row_base = next_rows + (int64_t)base * LD;
    for (int c = 0; c < g; c++) {
      const __m512 eps = _mm512_set1_ps(run->eps[c]);
      float *hc = run->h + (int64_t)c * n + base;
      __m512 h = _mm512_maskz_loadu_ps(mask, hc);
      if (rows) {
        h = _mm512_fmadd_ps(keep, h, _mm512_load_ps(out + c * 32 + 16 * half));
        _mm512_mask_storeu_ps(hc, mask, h);
      }
      __m512 th = tanh16(h);
      _mm512_mask_i32scatter_ps(row_base + c, mask, stride, _mm512_mul_ps(eps, th), 4);
      if (!run->tangent) continue;
      float *qc = run->q + (int64_t)c * n + base;
      __m512 q = _mm512_maskz_loadu_ps(mask, qc);
      if (rows) {
        q = _mm512_fmadd_ps(keep, q, _mm512_load_ps(out + (g + c) * 32 + 16 * half));
        q = _mm512_maskz_mul_ps(mask, q, _mm512_set1_ps((float)scale[c]));
        _mm512_mask_storeu_ps(qc, mask, q);
      }
      __m512 slope = _mm512_mul_ps(eps, _mm512_fnmadd_ps(th, th, one));
      _mm512_mask_i32scatter_ps(row_base + g + c, mask, stride, _mm512_mul_ps(slope, q), 4);
      if (sums) {
        __m512 square = _mm512_mul_ps(q, q);
        __m512d wide = _mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(square)),
                                     _mm512_cvtps_pd(_mm512_extractf32x8_ps(square, 1)));
        sums[c] += _mm512_reduce_add_pd(wide);
      }
    }
  }
}

AVX512 void nrm_tanh_avx512(const float *x, float *out, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 mask = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(out + i, mask, tanh16(_mm512_maskz_loadu_ps(mask, x + i)));
  }
}

/* ------------------------------------------------------------ AVX2 --------------------- */

AVX2 static inline __m256 exp8(__m256 y) {  /* exp(y), 0 <= y <= 20 */
  __m256 k = _mm256_round_ps(_mm256_mul_ps(y, _mm256_set1_ps(LOG2E)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(LN2_HI), y);
  r = _mm256_fnmadd_ps(k, _mm256_set1_ps(LN2_LO), r);
  __m256 p = _mm256_set1_ps(EXP_SERIES[0]);
  for (int i = 1; i < 9; i++) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_SERIES[i]));
  __m256i power = _mm256_slli_epi32(  /* 2^k, 0 <= k <= 29 */
      _mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(power));
}

AVX2 static inline __m256 tanh8(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f);
  const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u));
  __m256 ax = _mm256_andnot_ps(sign, x);
  __m256 y = _mm256_min_ps(_mm256_add_ps(ax, ax), _mm256_set1_ps(20.0f));
  __m256 large = _mm256_sub_ps(one, _mm256_div_ps(two, _mm256_add_ps(exp8(y), one)));
  __m256 x2 = _mm256_mul_ps(ax, ax);
  __m256 p = _mm256_set1_ps(TANH_SERIES[0]);
  for (int i = 1; i < 10; i++) p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(TANH_SERIES[i]));
  __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(ax, x2), p, ax);
  __m256 t = _mm256_blendv_ps(large, small,
                              _mm256_cmp_ps(ax, _mm256_set1_ps(0.55f), _CMP_LT_OQ));
  t = _mm256_or_ps(t, _mm256_and_ps(x, sign));  /* the sign of x (tanh is odd) */
  return _mm256_blendv_ps(t, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

/* out[r][l] = sum_j rows[j][r] W[8t + l][j] for the M rows, j in order, one FMA per term. */
AVX2 static inline __attribute__((always_inline)) void product8(
    const float *restrict packed, const float *restrict rows, int n, int M,
    float *restrict out) {
  __m256 acc[MAX_ROWS];
#pragma GCC unroll 14
  for (int r = 0; r < MAX_ROWS; r++) acc[r] = _mm256_setzero_ps();
  for (int j = 0; j < n; j++) {
    __m256 w = _mm256_loadu_ps(packed + (int64_t)j * 8);
    const float *x = rows + (int64_t)j * LD;
#pragma GCC unroll 14
    for (int r = 0; r < MAX_ROWS; r++)
      if (r < M) acc[r] = _mm256_fmadd_ps(w, _mm256_broadcast_ss(x + r), acc[r]);
  }
#pragma GCC unroll 14
  for (int r = 0; r < MAX_ROWS; r++)
    if (r < M) _mm256_storeu_ps(out + r * 8, acc[r]);
}

ROW_COUNTS(AVX2, product8_rows, product8)

AVX2 static void step8(run_t *run, int t, const float *rows, const double *scale,
                       float *next_rows, double *sums) {
  const int n = run->n, g = run->g, base = t * 8;
  const int valid = n - base < 8 ? n - base : 8;
  float out[MAX_ROWS * 8] __attribute__((aligned(32)));
  float lanes[8] __attribute__((aligned(32)));
  if (rows)
    product8_rows(run->packed + (int64_t)t * n * 8, rows, n, run->tangent ? 2 * g : g, out);
  const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(valid),
                                          _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const __m256 keep = _mm256_set1_ps(run->keep), one = _mm256_set1_ps(1.0f);
  float *row_base = next_rows + (int64_t)base * LD;
  for (int c = 0; c < g; c++) {
    const __m256 eps = _mm256_set1_ps(run->eps[c]);
    float *hc = run->h + (int64_t)c * n + base;
    __m256 h = _mm256_maskload_ps(hc, mask);
    if (rows) {
      h = _mm256_fmadd_ps(keep, h, _mm256_load_ps(out + c * 8));
      _mm256_maskstore_ps(hc, mask, h);
    }
    __m256 th = tanh8(h);
    _mm256_store_ps(lanes, _mm256_mul_ps(eps, th));
    for (int l = 0; l < valid; l++) row_base[l * LD + c] = lanes[l];
    if (!run->tangent) continue;
    float *qc = run->q + (int64_t)c * n + base;
    __m256 q = _mm256_maskload_ps(qc, mask);
    if (rows) {
      q = _mm256_fmadd_ps(keep, q, _mm256_load_ps(out + (g + c) * 8));
      q = _mm256_and_ps(_mm256_mul_ps(q, _mm256_set1_ps((float)scale[c])),
                        _mm256_castsi256_ps(mask));
      _mm256_maskstore_ps(qc, mask, q);
    }
    __m256 slope = _mm256_mul_ps(eps, _mm256_fnmadd_ps(th, th, one));
    _mm256_store_ps(lanes, _mm256_mul_ps(slope, q));
    for (int l = 0; l < valid; l++) row_base[l * LD + g + c] = lanes[l];
    if (sums) {
      __m256 square = _mm256_mul_ps(q, q);
      __m256d wide = _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(square)),
                                   _mm256_cvtps_pd(_mm256_extractf128_ps(square, 1)));
      __m128d pair = _mm_add_pd(_mm256_castpd256_pd128(wide), _mm256_extractf128_pd(wide, 1));
      sums[c] = _mm_cvtsd_f64(_mm_add_sd(pair, _mm_unpackhi_pd(pair, pair)));
    }
  }
}

AVX2 void nrm_tanh_avx2(const float *x, float *out, int64_t n) {
  float lanes[8] __attribute__((aligned(32)));
  for (int64_t i = 0; i < n; i += 8) {
    int64_t count = n - i < 8 ? n - i : 8;
    memset(lanes, 0, sizeof(lanes));
    memcpy(lanes, x + i, (size_t)count * sizeof(float));
    _mm256_store_ps(lanes, tanh8(_mm256_load_ps(lanes)));
    memcpy(out + i, lanes, (size_t)count * sizeof(float));
  }
}

/* tanh of n floats with the instruction set `isa` (0 if it is not one of ISA_*). */
int nrm_tanh(const float *x, float *out, int64_t n, int isa) {
  if (isa == ISA_AVX512) nrm_tanh_avx512(x, out, n);
  else if (isa == ISA_AVX2) nrm_tanh_avx2(x, out, n);
  else return -1;
  return 0;
}

/* ------------------------------------------------------------ packing ------------------ */

int64_t nrm_packed_size(int n, int isa) {
  int tile = nrm_tile_width(isa);
  return tile ? (int64_t)((n + tile - 1) / tile) * n * tile : 0;
}

/* W (n x n, row-major) -> tiles [t][j][l] = W[tile t + l][j], zero where tile t + l >= n. */
void nrm_pack(const float *w, int n, int isa, float *packed) {
  int tile = nrm_tile_width(isa);
  int n_tiles = tile ? (n + tile - 1) / tile : 0;
  for (int t = 0; t < n_tiles; t++)
    for (int j = 0; j < n; j++)
      for (int l = 0; l < tile; l++) {
        int i = t * tile + l;
        packed[((int64_t)t * n + j) * tile + l] = i < n ? w[(int64_t)i * n + j] : 0.0f;
      }
}

/* ------------------------------------------------------------ threads ------------------ */

static void barrier(run_t *run, int *phase) {
  int next = *phase + 1;
  if (atomic_fetch_add(&run->arrived, 1) == run->n_threads - 1) {
    atomic_store(&run->arrived, 0);
    atomic_store(&run->phase, next);
  } else {
    int spins = 0;
    while (atomic_load(&run->phase) != next) {
      if (++spins > SPINS) sched_yield(); else _mm_pause();
    }
  }
  *phase = next;
}

typedef struct { run_t *run; int index; } worker_t;

static void *work(void *argument) {
  worker_t *self = argument;
  run_t *run = self->run;
  while (!atomic_load(&run->started)) sched_yield();
  const int g = run->g;
  const int per = (run->n_tiles + run->n_threads - 1) / run->n_threads;
  const int first = self->index * per;
  const int last = first + per < run->n_tiles ? first + per : run->n_tiles;
  double scale[MAX_ROWS / 2];
  int phase = 0, current = 0, parity = 0;
  for (int c = 0; c < g; c++) scale[c] = 1.0;
  for (int t = first; t < last; t++) run->step(run, t, NULL, scale, run->rows[0], NULL);
  barrier(run, &phase);
  for (int step = 0; step < run->n_steps; step++) {
    int ends_interval = run->tangent && (step + 1) % run->steps_per_interval == 0;
    for (int t = first; t < last; t++)
      run->step(run, t, run->rows[current], scale, run->rows[!current],
                ends_interval ? run->tile_sums[parity] + (int64_t)t * g : NULL);
    barrier(run, &phase);
    current = !current;
    for (int c = 0; c < g; c++) scale[c] = 1.0;
    if (ends_interval) {
      const double *sums = run->tile_sums[parity];
      int interval = step / run->steps_per_interval;
      for (int c = 0; c < g; c++) {
        double total = 0.0;
        for (int t = 0; t < run->n_tiles; t++) total += sums[(int64_t)t * g + c];
        double norm = sqrt(total);
        scale[c] = 1.0 / norm;
        if (self->index == 0) run->logs[(int64_t)interval * g + c] = log(norm);
      }
      parity = !parity;  /* the other buffer: a late thread may still read this one */
    }
  }
  /* the last interval's normalisation, applied to this thread's columns of q */
  if (run->tangent)
    for (int c = 0; c < g; c++)
      for (int i = first * run->tile; i < last * run->tile && i < run->n; i++)
        run->q[(int64_t)c * run->n + i] *= (float)scale[c];
  return NULL;
}

/*
 * n_steps Euler steps of g <= 7 tanh networks sharing a matrix packed by nrm_pack for
 * `isa`, in place on h (g x n) and, with q != NULL, on q (g x n, unit rows) with log ||q||
 * after every steps_per_interval steps written to logs (n_steps / steps_per_interval x g);
 * q is returned normalised. Returns 0, -1 for arguments it does not take, -2 when out of
 * memory.
 */
int nrm_tanh_run(const float *packed, int n, int g, const float *eps, float keep, float *h,
                 float *q, int n_steps, int steps_per_interval, double *logs, int n_threads,
                 int isa) {
  if (g < 1 || g > MAX_ROWS / 2 || n < 1 || n_steps < 0 || n_threads < 1 || n_threads > 256
      || !nrm_tile_width(isa)
      || (q && (steps_per_interval < 1 || n_steps % steps_per_interval != 0)))
    return -1;
  run_t run;
  memset(&run, 0, sizeof(run));
  run.n = n; run.g = g; run.tile = nrm_tile_width(isa);
  run.n_tiles = (n + run.tile - 1) / run.tile; run.n_threads = n_threads;
  run.step = isa == ISA_AVX512 ? step16 : step8;
  run.tangent = q != NULL; run.packed = packed; run.eps = eps; run.keep = keep;
  run.h = h; run.q = q; run.n_steps = n_steps; run.steps_per_interval = steps_per_interval;
  run.logs = logs;
  size_t row_bytes = ((size_t)n * LD * sizeof(float) + 63) / 64 * 64;
  run.rows[0] = aligned_alloc(64, row_bytes);
  run.rows[1] = aligned_alloc(64, row_bytes);
  run.tile_sums[0] = calloc((size_t)run.n_tiles * g, sizeof(double));
  run.tile_sums[1] = calloc((size_t)run.n_tiles * g, sizeof(double));
  worker_t workers[256];
  pthread_t threads[256];
  int started = 1, status = 0;
  if (!run.rows[0] || !run.rows[1] || !run.tile_sums[0] || !run.tile_sums[1]) {
    status = -2;
    goto done;
  }
  memset(run.rows[0], 0, row_bytes);
  memset(run.rows[1], 0, row_bytes);
  atomic_init(&run.arrived, 0);
  atomic_init(&run.phase, 0);
  atomic_init(&run.started, 0);
  for (int k = 0; k < n_threads; k++) { workers[k].run = &run; workers[k].index = k; }
  for (; started < n_threads; started++)
    if (pthread_create(&threads[started], NULL, work, &workers[started]) != 0) break;
  run.n_threads = started;  /* fewer threads if some could not start: the same numbers */
  atomic_store(&run.started, 1);
  work(&workers[0]);
  for (int k = 1; k < started; k++) pthread_join(threads[k], NULL);
done:
  free(run.rows[0]); free(run.rows[1]); free(run.tile_sums[0]); free(run.tile_sums[1]);
  return status;
}
