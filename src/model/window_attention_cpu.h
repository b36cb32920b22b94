// Inference kernel for Swin window attention on the CPU (float32, no autograd). For every (window, head):
//   ctx[w, :, h] = softmax(bias[h] + mask[w % nW] + q[w, :, h] k[w, :, h]^T) v[w, :, h]      (q already scaled)
// fused, with the scores kept in a small per-thread buffer: no [BW, H, N, N] tensor, no layout copies and no
// per-matrix dispatch. q, k and v are read in place from the fused projection output qkv [BW, N, 3, H, d]; ctx
// is written in the layout the output projection reads, [BW, N, H*d]. An AVX2+FMA version (N = 64 tokens per
// window, d a multiple of 8 up to 64: every HTS-AT geometry) is chosen at run time where the CPU has it; a
// portable scalar version covers everything else. Internal header.
#pragma once
#include <cstdint>

namespace synclap::kernels {

// bias: [H, N, N]; mask: [nW, N, N] additive, or nullptr; ctx: [BW, N, H*d] (written).
void window_attention(const float* qkv, const float* bias, const float* mask, int64_t nw, int64_t bw, int64_t n,
                      int64_t heads, int64_t d, float* ctx);

// Whether the AVX2+FMA version runs for this shape on this CPU.
bool window_attention_vectorized(int64_t n, int64_t d);

}  // namespace synclap::kernels
