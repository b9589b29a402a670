/*
 * The tanh rate network's Euler step with one tangent vector, compiled for x86-64 AVX-512.
 *
 * Per network c (coupling eps_c = dt * g_c, keep = 1 - dt) and matrix W (N x N):
 *
 *     x_c = eps_c tanh(h_c),  y_c = eps_c (1 - tanh(h_c)^2) q_c,
 *     h_c' = keep h_c + W x_c,  q_c' = keep q_c + W y_c.
 *
 * The 2G rows [x_1 .. x_G | y_1 .. y_G] of a step are multiplied by W in one pass (G <= 7,
 * so at most 14 rows): W is packed once into tiles of 32 output neurons (tile t holds
 * W[32t + l][j] at [t][j][l]), a tile's 14 x 32 block of the product is held in 28 AVX-512
 * registers over the whole sum over j, and the step's pointwise work (the Euler update,
 * tanh, the slope and the next step's rows) is done on that block while it is still in
 * registers. The threads split the tiles and meet at one barrier per step.
 *
 * Every output entry is the sum over j = 0 .. N-1 in that order, one fused multiply-add
 * per term, whatever the number of rows, tiles per thread or threads, and the squared norm
 * of q_c is summed per tile in double and then over the tiles in their order: the numbers
 * of a network depend only on its own matrix, coupling, state and vector.
 *
 * Re-orthonormalisation (k = 1) every `steps_per_interval` steps: log ||q_c|| is recorded
 * and the division by ||q_c|| is applied in the next step's update (the tangent map is
 * linear, so (keep q + W y) / r equals the step of the normalised vector).
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

#define TILE 32          /* output neurons per tile: two 16-float registers */
#define LD 16            /* floats per j in the row buffer: one 64-byte line */
#define MAX_ROWS 14      /* 2 x 7 networks */
#define SPINS 4000       /* barrier: busy-wait polls before yielding the core */

#define AVX512 __attribute__((target("avx512f,avx512dq,fma")))

/* ---------------------------------------------------------------- tanh, float32 ------ */

/* tanh(x) for |x| < 0.55: x + x^3 P(x^2), its Taylor series to x^21 (the next term is below
 * 1e-10 relative); c_n = 2^2n (2^2n - 1) B_2n / (2n)! with the Bernoulli numbers B_2n. */
AVX512 static inline __m512 tanh_small(__m512 x) {
  static const float c[10] = {
      9.691537956929451e-05f, -2.3912911424355248e-04f, 5.90027440945586e-04f,
      -1.4558343870513183e-03f, 3.592128036572481e-03f, -8.863235529902197e-03f,
      2.1869488536155203e-02f, -5.396825396825397e-02f, 1.3333333333333333e-01f,
      -3.333333333333333e-01f};
  __m512 x2 = _mm512_mul_ps(x, x);
  __m512 p = _mm512_set1_ps(c[0]);
  for (int i = 1; i < 10; i++) p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(c[i]));
  return _mm512_fmadd_ps(_mm512_mul_ps(x, x2), p, x);
}

/* exp(y) for 0 <= y <= 20: y = k ln2 + r, |r| <= ln2/2, exp(r) by its Taylor series to r^8. */
AVX512 static inline __m512 exp_large(__m512 y) {
  const __m512 ln2_hi = _mm512_set1_ps(0.693145751953125f);
  const __m512 ln2_lo = _mm512_set1_ps(1.428606765330187e-06f);
  __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(y, _mm512_set1_ps(1.4426950408889634f)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(k, ln2_hi, y);
  r = _mm512_fnmadd_ps(k, ln2_lo, r);
  static const float c[9] = {1.0f / 40320, 1.0f / 5040, 1.0f / 720, 1.0f / 120, 1.0f / 24,
                             1.0f / 6, 1.0f / 2, 1.0f, 1.0f};
  __m512 p = _mm512_set1_ps(c[0]);
  for (int i = 1; i < 9; i++) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c[i]));
  return _mm512_scalef_ps(p, k);
}

/* tanh(x): tanh_small for |x| < 0.55; else sign(x) (1 - 2 / (exp(2|x|) + 1)), with 2|x|
 * clamped to 20 (there tanh = 1 in float32); NaN passed through. At most 2 ulp from the
 * exact value (tested against float64 on a dense grid). */
AVX512 static inline __m512 tanh16(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f), two = _mm512_set1_ps(2.0f);
  __m512 ax = _mm512_abs_ps(x);
  __m512 y = _mm512_min_ps(_mm512_add_ps(ax, ax), _mm512_set1_ps(20.0f));
  __m512 large = _mm512_sub_ps(one, _mm512_div_ps(two, _mm512_add_ps(exp_large(y), one)));
  __mmask16 is_small = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.55f), _CMP_LT_OQ);
  __m512 t = _mm512_mask_blend_ps(is_small, large, tanh_small(ax));
  t = _mm512_castsi512_ps(_mm512_or_si512(  /* the sign of x (tanh is odd) */
      _mm512_castps_si512(t),
      _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u))));
  __mmask16 is_nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  return _mm512_mask_blend_ps(is_nan, t, x);
}

AVX512 void nrm_tanh(const float *x, float *out, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 mask = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(out + i, mask, tanh16(_mm512_maskz_loadu_ps(mask, x + i)));
  }
}

/* Whether the processor (and the operating system) runs this file's AVX-512 code. */
int nrm_cpu_supported(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
}

/* ------------------------------------------------------------ packing ------------------ */

int64_t nrm_packed_size(int n) { return (int64_t)((n + TILE - 1) / TILE) * n * TILE; }

/* W (n x n, row-major) -> tiles [t][j][l] = W[32t + l][j], zero where 32t + l >= n. */
void nrm_pack(const float *w, int n, float *packed) {
  int n_tiles = (n + TILE - 1) / TILE;
  for (int t = 0; t < n_tiles; t++)
    for (int j = 0; j < n; j++)
      for (int l = 0; l < TILE; l++) {
        int i = t * TILE + l;
        packed[((int64_t)t * n + j) * TILE + l] = i < n ? w[(int64_t)i * n + j] : 0.0f;
      }
}

/* ------------------------------------------------------------ the run ------------------ */

typedef struct {
  int n, g, n_tiles, n_threads, tangent;
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
} run_t;

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

/* out[r][l] = sum_j rows[j][r] W[32t + l][j] for the M rows, j in order, one FMA per term. */
AVX512 static inline __attribute__((always_inline)) void tile_product(
    const float *restrict packed, const float *restrict rows, int n, int M,
    float *restrict out) {
  __m512 acc[MAX_ROWS][2];
#pragma GCC unroll 14
  for (int r = 0; r < MAX_ROWS; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int j = 0; j < n; j++) {
    __m512 w0 = _mm512_loadu_ps(packed + (int64_t)j * TILE);
    __m512 w1 = _mm512_loadu_ps(packed + (int64_t)j * TILE + 16);
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
      _mm512_storeu_ps(out + r * TILE, acc[r][0]);
      _mm512_storeu_ps(out + r * TILE + 16, acc[r][1]);
    }
  }
}

AVX512 static void tile_product_rows(const float *packed, const float *rows, int n, int M,
                                     float *out) {
  switch (M) {
#define ROWS(m) case m: tile_product(packed, rows, n, m, out); break;
    ROWS(1) ROWS(2) ROWS(3) ROWS(4) ROWS(5) ROWS(6) ROWS(7)
    ROWS(8) ROWS(9) ROWS(10) ROWS(11) ROWS(12) ROWS(13) ROWS(14)
#undef ROWS
    default: break;
  }
}

/* For the columns of tile t: with `out` the Euler update (h' = keep h + out, q' = (keep q +
 * out) scale, stored back), without it the current h and q; then the next step's rows and,
 * with `sums`, the squared norms of q per network. */
AVX512 static void tile_update(run_t *run, int t, const float *out, const double *scale,
                               float *next_rows, double *sums) {
  const int n = run->n, g = run->g;
  const __m512i stride = _mm512_mullo_epi32(
      _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
      _mm512_set1_epi32(LD));
  const __m512 keep = _mm512_set1_ps(run->keep), one = _mm512_set1_ps(1.0f);
  for (int c = 0; c < g && sums; c++) sums[c] = 0.0;
  for (int half = 0; half < 2; half++) {
    int base = t * TILE + 16 * half;
    if (base >= n) break;
    __mmask16 mask = n - base >= 16 ? (__mmask16)0xFFFF
                                    : (__mmask16)((1u << (n - base)) - 1u);
    float *row_base = next_rows + (int64_t)base * LD;
    for (int c = 0; c < g; c++) {
      const __m512 eps = _mm512_set1_ps(run->eps[c]);
      float *hc = run->h + (int64_t)c * n + base;
      __m512 h = _mm512_maskz_loadu_ps(mask, hc);
      if (out) {
        h = _mm512_fmadd_ps(keep, h, _mm512_loadu_ps(out + c * TILE + 16 * half));
        _mm512_mask_storeu_ps(hc, mask, h);
      }
      __m512 th = tanh16(h);
      _mm512_mask_i32scatter_ps(row_base + c, mask, stride, _mm512_mul_ps(eps, th), 4);
      if (!run->tangent) continue;
      float *qc = run->q + (int64_t)c * n + base;
      __m512 q = _mm512_maskz_loadu_ps(mask, qc);
      if (out) {
        q = _mm512_fmadd_ps(keep, q, _mm512_loadu_ps(out + (g + c) * TILE + 16 * half));
        q = _mm512_mul_ps(q, _mm512_set1_ps((float)scale[c]));
        _mm512_mask_storeu_ps(qc, mask, q);
      }
      __m512 slope = _mm512_mul_ps(eps, _mm512_fnmadd_ps(th, th, one));
      _mm512_mask_i32scatter_ps(row_base + g + c, mask, stride, _mm512_mul_ps(slope, q), 4);
      if (sums) {
        __m512 square = _mm512_maskz_mul_ps(mask, q, q);
        __m512d wide = _mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(square)),
                                     _mm512_cvtps_pd(_mm512_extractf32x8_ps(square, 1)));
        sums[c] += _mm512_reduce_add_pd(wide);
      }
    }
  }
}

typedef struct { run_t *run; int index; } worker_t;

AVX512 static void *work(void *argument) {
  worker_t *self = argument;
  run_t *run = self->run;
  while (!atomic_load(&run->started)) sched_yield();
  const int n = run->n, g = run->g, rows = run->tangent ? 2 * g : g;
  const int per = (run->n_tiles + run->n_threads - 1) / run->n_threads;
  const int first = self->index * per;
  const int last = first + per < run->n_tiles ? first + per : run->n_tiles;
  float out[MAX_ROWS * TILE] __attribute__((aligned(64)));
  double scale[7];
  int phase = 0, current = 0, parity = 0;
  for (int c = 0; c < g; c++) scale[c] = 1.0;
  for (int t = first; t < last; t++) tile_update(run, t, NULL, scale, run->rows[0], NULL);
  barrier(run, &phase);
  for (int step = 0; step < run->n_steps; step++) {
    int ends_interval = run->tangent && (step + 1) % run->steps_per_interval == 0;
    for (int t = first; t < last; t++) {
      tile_product_rows(run->packed + (int64_t)t * n * TILE, run->rows[current], n, rows, out);
      tile_update(run, t, out, scale, run->rows[!current],
                  ends_interval ? run->tile_sums[parity] + (int64_t)t * g : NULL);
    }
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
      for (int i = first * TILE; i < last * TILE && i < n; i++)
        run->q[(int64_t)c * n + i] *= (float)scale[c];
  return NULL;
}

/*
 * n_steps Euler steps of g <= 7 tanh networks sharing the packed matrix, in place on
 * h (g x n) and, with q != NULL, on q (g x n, unit rows) with log ||q|| after every
 * steps_per_interval steps written to logs (n_steps / steps_per_interval x g); q is
 * returned normalised. Returns 0, or -1 for arguments it does not take.
 */
int nrm_tanh_run(const float *packed, int n, int g, const float *eps, float keep, float *h,
                 float *q, int n_steps, int steps_per_interval, double *logs, int n_threads) {
  if (g < 1 || g > MAX_ROWS / 2 || n < 1 || n_steps < 0 || n_threads < 1 || n_threads > 256
      || (q && (steps_per_interval < 1 || n_steps % steps_per_interval != 0)))
    return -1;
  run_t run;
  memset(&run, 0, sizeof(run));
  run.n = n; run.g = g; run.n_tiles = (n + TILE - 1) / TILE; run.n_threads = n_threads;
  run.tangent = q != NULL; run.packed = packed; run.eps = eps; run.keep = keep;
  run.h = h; run.q = q; run.n_steps = n_steps; run.steps_per_interval = steps_per_interval;
  run.logs = logs;
  size_t row_bytes = (size_t)n * LD * sizeof(float);
  run.rows[0] = aligned_alloc(64, (row_bytes + 63) / 64 * 64);
  run.rows[1] = aligned_alloc(64, (row_bytes + 63) / 64 * 64);
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
