// A packed bfloat16 GEMM on AVX512_BF16 for digits-dist's mixed precision (see include/bf16_gemm.h).
//
// GotoBLAS's loop order, single-threaded (the engine shares GEMM tiles out to its own threads):
//   for each block of KC reduction steps:
//     for each block of NC columns: pack op(B) into panels of NR columns, rounded to bf16, pairs interleaved
//       for each block of MC rows: pack op(A), rounded to bf16, pairs in one word
//         for each MR×NR tile: the micro-kernel, then C = alpha·acc + (beta·C on the first block, else C)
// vdpbf16ps multiplies pairs of bf16 (reduction steps 2p and 2p + 1) and adds both products into a Float32
// lane, so both packed operands keep a step pair in one 32-bit word: B as [pair][NR columns][2], A as
// [pair][MR rows][2] (a transposed A) or [row][pair][2] (a row-major one: no transpose while packing),
// whose words the kernel broadcasts. An odd reduction is padded with a zero step and partial tiles with
// zero rows and columns, so one kernel serves every shape.
#include "bf16_gemm.h"

#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { MR = 8, NR = 32, KC = 384, MC = 64, NC = 512 };

int bf16_gemm_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512vl");
}

/// The conversion of VCVTNE2PS2BF16, which packs the operands: NaN stays a quiet NaN, zero and denormal
/// inputs become a zero of their sign, everything else rounds to nearest, ties to even.
static inline uint16_t to_bf16(float x) {
    uint32_t bits;
    memcpy(&bits, &x, 4);
    if ((bits & 0x7f800000u) == 0) return (uint16_t)((bits >> 16) & 0x8000);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40);
    bits += 0x7fffu + ((bits >> 16) & 1);
    return (uint16_t)(bits >> 16);
}

float bf16_round(float x) {
    uint32_t bits = (uint32_t)to_bf16(x) << 16;
    float y;
    memcpy(&y, &bits, 4);
    return y;
}

#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

static inline __mmask16 first_lanes(long count) {
    return count >= 16 ? (__mmask16)0xffff : count <= 0 ? 0 : (__mmask16)((1u << count) - 1);
}

/// 16 words (even[l] in the low half, odd[l] in the high half), from two vectors of 16 floats.
BF16_TARGET static inline __m512i interleave_pairs(__m512 even, __m512 odd) {
    static const uint16_t order[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                       8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    __m512i both = (__m512i)_mm512_cvtne2ps_pbh(odd, even);  // even's 16 bf16, then odd's
    return _mm512_permutexvar_epi16(_mm512_loadu_si512(order), both);
}

/// Rows [row0, row0 + rows) and steps [step0, step0 + steps) of op(X) into micro-panels of `width` (MR for
/// a transposed A, NR for B) rows: panel[pair][width] words of (step 2p, step 2p + 1), rows past `rows` and a step past `steps`
/// zero. op(X)[row][step] is x[row·ld + step] (`rows_contiguous` 0) or x[step·ld + row] (1).
BF16_TARGET static void pack(const float *x, long ld, int rows_contiguous, long row0, long rows, long step0,
                             long steps, int width, uint32_t *packed) {
    long pairs = (steps + 1) / 2;
    for (long panel = 0; panel < rows; panel += width) {
        uint32_t *out = packed + panel * pairs;
        if (rows_contiguous) {
            // A step pair is two runs of consecutive rows: interleaved, 16 rows' words at a time.
            for (long p = 0; p < pairs; p++) {
                const float *even = x + (step0 + 2 * p) * ld + row0 + panel;
                int has_odd = 2 * p + 1 < steps;
                for (int c = 0; c < width; c += 16) {
                    __mmask16 valid = first_lanes(rows - panel - c);
                    __m512 e = _mm512_maskz_loadu_ps(valid, even + c);
                    __m512 o = has_odd ? _mm512_maskz_loadu_ps(valid, even + ld + c) : _mm512_setzero_ps();
                    _mm512_mask_storeu_epi32(out + p * width + c, first_lanes(width - c), interleave_pairs(e, o));
                }
            }
        } else {
            // A row's steps are consecutive: 32 of them are 16 words, one per pair, scattered to its rows.
            const __m512i word_stride = _mm512_mullo_epi32(_mm512_set1_epi32(width),
                _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
            for (int r = 0; r < width; r++) {
                long row = panel + r;
                if (row >= rows) {
                    for (long p = 0; p < pairs; p++) out[p * width + r] = 0;
                    continue;
                }
                const float *source = x + (row0 + row) * ld + step0;
                for (long s = 0; s < steps; s += 32) {
                    __m512 low = _mm512_maskz_loadu_ps(first_lanes(steps - s), source + s);
                    __m512 high = _mm512_maskz_loadu_ps(first_lanes(steps - s - 16), source + s + 16);
                    __m512i words = (__m512i)_mm512_cvtne2ps_pbh(high, low);  // steps s … s + 31 in order
                    _mm512_mask_i32scatter_epi32(out + (s / 2) * width + r, first_lanes((steps - s + 1) / 2),
                                                 word_stride, words, 4);
                }
            }
        }
    }
}

/// Rows [row0, row0 + rows) and steps [step0, step0 + steps) of a row-major X (op(X)[row][step] =
/// x[row·ld + step]) as rows of step-pair words: packed[row][pair], rows up to a whole MR zero. The
/// conversion then stores whole vectors; the micro-kernel broadcasts its words with the row stride.
BF16_TARGET static void pack_rows(const float *x, long ld, long row0, long rows, long step0, long steps,
                                  uint32_t *packed) {
    long pairs = (steps + 1) / 2, padded = (rows + MR - 1) / MR * MR;
    for (long row = 0; row < padded; row++) {
        uint32_t *out = packed + row * pairs;
        if (row >= rows) {
            memset(out, 0, sizeof(uint32_t) * pairs);
            continue;
        }
        const float *source = x + (row0 + row) * ld + step0;
        for (long s = 0; s < steps; s += 32) {
            __m512 low = _mm512_maskz_loadu_ps(first_lanes(steps - s), source + s);
            __m512 high = _mm512_maskz_loadu_ps(first_lanes(steps - s - 16), source + s + 16);
            _mm512_mask_storeu_epi32(out + s / 2, first_lanes((steps - s + 1) / 2),
                                     (__m512i)_mm512_cvtne2ps_pbh(high, low));
        }
    }
}

/// acc[MR][NR] = Σ_pairs A-panel ⊗ B-panel, then C[rows][columns] = alpha·acc + (first ? beta·C : C).
BF16_TARGET static void micro_kernel(long pairs, const uint32_t *a, long a_row_stride, long a_pair_stride,
                                     const uint32_t *b, float *c, long ldc, int rows, int columns, float alpha,
                                     float beta, int first) {
    __m512 acc[MR][2];
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (long p = 0; p < pairs; p++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + p * NR);
        __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + p * NR + 16);
        for (int r = 0; r < MR; r++) {
            __m512bh ar = (__m512bh)_mm512_set1_epi32((int)a[p * a_pair_stride + r * a_row_stride]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], ar, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], ar, b1);
        }
    }
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (int half = 0; half < 2; half++) {
        int valid = columns - 16 * half;
        if (valid <= 0) break;
        __mmask16 mask = valid >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << valid) - 1);
        for (int r = 0; r < rows; r++) {
            float *row = c + r * ldc + 16 * half;
            __m512 sum = _mm512_mul_ps(va, acc[r][half]);
            if (!first) sum = _mm512_add_ps(sum, _mm512_maskz_loadu_ps(mask, row));
            else if (beta != 0) sum = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mask, row), sum);
            _mm512_mask_storeu_ps(row, mask, sum);
        }
    }
}

/// Per thread, allocated on its first call: one packed block of each operand.
static __thread uint32_t *packed_a, *packed_b;

void bf16_gemm(int transpose_a, int transpose_b, long m, long n, long k, float alpha, const float *a, long lda,
               const float *b, long ldb, float beta, float *c, long ldc) {
    if (m <= 0 || n <= 0) return;
    if (!packed_a) {
        packed_a = aligned_alloc(64, sizeof(uint32_t) * MC * (KC / 2));
        packed_b = aligned_alloc(64, sizeof(uint32_t) * NC * (KC / 2));
        if (!packed_a || !packed_b) {
            fputs("digits-dist: bf16 GEMM: cannot allocate its packing buffers\n", stderr);
            abort();
        }
    }
    if (k <= 0) {  // no products: C = beta·C
        for (long i = 0; i < m; i++)
            for (long j = 0; j < n; j++) c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j];
        return;
    }
    for (long k0 = 0; k0 < k; k0 += KC) {
        long steps = k - k0 < KC ? k - k0 : KC, pairs = (steps + 1) / 2;
        for (long n0 = 0; n0 < n; n0 += NC) {
            long columns = n - n0 < NC ? n - n0 : NC;
            pack(b, ldb, !transpose_b, n0, columns, k0, steps, NR, packed_b);
            for (long m0 = 0; m0 < m; m0 += MC) {
                long rows = m - m0 < MC ? m - m0 : MC;
                // A transposed is packed in micro-panels (its rows are contiguous: interleaved vectors), else
                // row by row (its steps are contiguous: converted vectors); either way micro-panel i
                // starts at packed_a + i·pairs.
                if (transpose_a) pack(a, lda, 1, m0, rows, k0, steps, MR, packed_a);
                else pack_rows(a, lda, m0, rows, k0, steps, packed_a);
                long row_stride = transpose_a ? 1 : pairs, pair_stride = transpose_a ? MR : 1;
                for (long j = 0; j < columns; j += NR) {
                    for (long i = 0; i < rows; i += MR) {
                        micro_kernel(pairs, packed_a + i * pairs, row_stride, pair_stride, packed_b + j * pairs,
                                     c + (m0 + i) * ldc + n0 + j, ldc, rows - i < MR ? (int)(rows - i) : MR,
                                     columns - j < NR ? (int)(columns - j) : NR, alpha, beta, k0 == 0);
                    }
                }
            }
        }
    }
}

// The throughput probe: independent multiply-adds on registers only, so the rate is the core's arithmetic,
// not its memory. 16 accumulators hide either instruction's latency.
enum { PROBE_ROUNDS = 40000 };

static double seconds_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static double bf16_dot_flops(void) {
    __m512 acc[16];
    for (int r = 0; r < 16; r++) acc[r] = _mm512_setzero_ps();
    __m512bh x = (__m512bh)_mm512_set1_epi32(0x3f803f80), y = (__m512bh)_mm512_set1_epi32(0x3c003c00);
    double start = seconds_now();
    for (int i = 0; i < PROBE_ROUNDS; i++) {
        for (int r = 0; r < 16; r++) acc[r] = _mm512_dpbf16_ps(acc[r], x, y);
        __asm__ volatile("" : "+v"(x), "+v"(y));
    }
    double elapsed = seconds_now() - start;
    volatile float sink = 0;
    for (int r = 0; r < 16; r++) sink += _mm512_reduce_add_ps(acc[r]);
    return 64.0 * 16 * PROBE_ROUNDS / elapsed;
}

__attribute__((target("avx512f")))
static double fp32_fma_flops(void) {
    __m512 acc[16];
    for (int r = 0; r < 16; r++) acc[r] = _mm512_setzero_ps();
    __m512 x = _mm512_set1_ps(1.0f), y = _mm512_set1_ps(0x1p-20f);
    double start = seconds_now();
    for (int i = 0; i < PROBE_ROUNDS; i++) {
        for (int r = 0; r < 16; r++) acc[r] = _mm512_fmadd_ps(x, y, acc[r]);
        __asm__ volatile("" : "+v"(x), "+v"(y));
    }
    double elapsed = seconds_now() - start;
    volatile float sink = 0;
    for (int r = 0; r < 16; r++) sink += _mm512_reduce_add_ps(acc[r]);
    return 32.0 * 16 * PROBE_ROUNDS / elapsed;
}

void bf16_probe(double *bf16_flops, double *fp32_flops) {
    double best_bf16 = 0, best_fp32 = 0;
    for (int round = 0; round < 5; round++) {  // interleaved, best of each: a busy core only lowers both
        double b = bf16_dot_flops(), f = fp32_fma_flops();
        if (b > best_bf16) best_bf16 = b;
        if (f > best_fp32) best_fp32 = f;
    }
    *bf16_flops = best_bf16;
    *fp32_flops = best_fp32;
}
