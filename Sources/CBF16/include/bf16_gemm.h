#pragma once
#include <stdint.h>

/// 1 when this CPU and its operating system run AVX512_BF16 (vdpbf16ps on 512-bit registers), else 0.
int bf16_gemm_available(void);

/// C = alpha·op(A)·op(B) + beta·C, row-major, on the calling thread only, with A and B rounded to bfloat16
/// (round to nearest even, as PyTorch's autocast rounds) and every product summed in Float32 by vdpbf16ps.
/// op(A) is m×k, op(B) k×n; beta == 0 never reads C. Needs bf16_gemm_available(). The order of every sum
/// depends on m, n and k only, so the result is the same bits for the same operands wherever it runs on
/// one CPU model.
void bf16_gemm(int transpose_a, int transpose_b, long m, long n, long k, float alpha, const float *a, long lda,
               const float *b, long ldb, float beta, float *c, long ldc);

/// The bfloat16 nearest to x (ties to even), widened back to Float32: what bf16_gemm multiplies.
float bf16_round(float x);

/// One core's arithmetic rate, in FLOP/s, of bf16 dot products (vdpbf16ps) and of Float32 FMAs on 512-bit
/// registers, best of 5 interleaved rounds of about a millisecond each. Needs bf16_gemm_available(). The two
/// differ by CPU: on AMD Zen 4 a vdpbf16ps does twice an FMA's work in the same time; on Intel Sapphire and
/// Emerald Rapids it takes twice as long (those CPUs' fast bf16 is AMX).
void bf16_probe(double *bf16_flops, double *fp32_flops);
