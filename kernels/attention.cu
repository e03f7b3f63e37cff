// Causal multi-head attention with grouped-query heads (ops/attention.go),
// over nSeq independent sequences:
//   q, out (nSeq·n, nHead·hd); k, v (nSeq·nKV, nHeadKV·hd); head h reads kv
//   head h/(nHead/nHeadKV); query i of a sequence sits at position pos0+i and
//   sees keys j <= pos0+i (training: pos0 = 0, nKV = n; decoding with a
//   cache: n = 1, pos0 = cached length).
//
// Forward: online softmax (FlashAttention): the scores never exist as a
// matrix. A block of 4 warps holds 4 queries of one head; keys and values
// stream through shared memory 32 at a time, one key per lane for the
// scores, one output dimension per lane for the values. For training it
// keeps lse = max + log Σ exp (nSeq, nHead, n), which is all the backward
// needs to rebuild the probabilities. hd <= 128.
//
// Backward (FlashAttention-2 style, no atomics, deterministic):
//   D_i = dout_i · out_i;  P_ij = exp(s_ij − lse_i);  dP_ij = dout_i · v_j
//   dS_ij = P_ij (dP_ij − D_i) · scale
//   dq_i += Σ_j dS_ij k_j      (attn_bwd_dq: a warp per query, keys streamed)
//   dk_j += Σ_i dS_ij q_i,  dv_j += Σ_i P_ij dout_i
//                              (attn_bwd_dkdv: a warp per key, queries streamed)
#include "common.cuh"

#define AW 4       // warps (queries or keys) per block
#define AT 32      // keys or queries per shared-memory tile
#define HD_MAX 128 // head dimensions a lane's registers cover (4 per lane)
#define NR (HD_MAX / 32)

extern "C" __global__ void __launch_bounds__(AW * 32)
    attn_fwd(float* __restrict__ out, float* __restrict__ lse, const float* __restrict__ q, const float* __restrict__ k,
             const float* __restrict__ v, int n, int n_kv, int n_head, int n_head_kv, int hd, int pos0, float scale) {
    extern __shared__ float sm[];
    int ks_stride = hd + 1; // padded: lane j reads row j of the key tile
    float* ks = sm;                 // [AT][hd+1]
    float* vs = ks + AT * ks_stride; // [AT][hd]
    float* qs = vs + AT * hd;        // [AW][hd]
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int h = blockIdx.y, s = blockIdx.z, hkv = h / (n_head / n_head_kv);
    int qw = n_head * hd, kvw = n_head_kv * hd;
    int i = blockIdx.x * AW + warp;
    bool live = i < n;
    const float* qrow = q + ((size_t)s * n + i) * qw + h * hd;
    for (int d = lane; d < hd; d += 32) qs[warp * hd + d] = live ? qrow[d] : 0.f;
    int last_i = min(n - 1, (int)blockIdx.x * AW + AW - 1);
    int kend = min(n_kv, pos0 + last_i + 1);          // keys any warp of the block sees
    int my_end = live ? min(n_kv, pos0 + i + 1) : 0;  // keys this warp sees
    const float* kb = k + (size_t)s * n_kv * kvw + hkv * hd;
    const float* vb = v + (size_t)s * n_kv * kvw + hkv * hd;
    float m = -INFINITY, l = 0.f, acc[NR];
#pragma unroll
    for (int r = 0; r < NR; r++) acc[r] = 0.f;
    for (int j0 = 0; j0 < kend; j0 += AT) {
        __syncthreads(); // the previous tile is consumed
        for (int e = threadIdx.x; e < AT * hd; e += blockDim.x) {
            int jj = e / hd, d = e % hd, j = j0 + jj;
            ks[jj * ks_stride + d] = j < kend ? kb[(size_t)j * kvw + d] : 0.f;
            vs[e] = j < kend ? vb[(size_t)j * kvw + d] : 0.f;
        }
        __syncthreads();
        if (j0 >= my_end) continue; // warp-uniform
        int j = j0 + lane;
        float sc = -INFINITY;
        if (j < my_end) {
            const float* kr = ks + lane * ks_stride;
            const float* qr = qs + warp * hd;
            float dot = 0.f;
            for (int d = 0; d < hd; d++) dot = fmaf(qr[d], kr[d], dot);
            sc = dot * scale;
        }
        float mn = fmaxf(m, warp_max(sc)); // finite: key j0 is visible
        float p = j < my_end ? expf(sc - mn) : 0.f;
        float corr = expf(m - mn);         // 0 on the first tile
        l = l * corr + warp_sum(p);
        m = mn;
#pragma unroll
        for (int r = 0; r < NR; r++) acc[r] *= corr;
        int jn = min(AT, my_end - j0);
        for (int jj = 0; jj < jn; jj++) {
            float pj = __shfl_sync(0xffffffffu, p, jj);
#pragma unroll
            for (int r = 0; r < NR; r++) {
                int d = lane + 32 * r;
                if (d < hd) acc[r] = fmaf(pj, vs[jj * hd + d], acc[r]);
            }
        }
    }
    if (!live) return;
    float* orow = out + ((size_t)s * n + i) * qw + h * hd;
    float inv = 1.0f / l;
#pragma unroll
    for (int r = 0; r < NR; r++) {
        int d = lane + 32 * r;
        if (d < hd) orow[d] = acc[r] * inv;
    }
    if (lse != NULL && lane == 0) lse[((size_t)s * n_head + h) * n + i] = m + logf(l);
}

// D (nSeq, nHead, n) = Σ_d dout·out, one thread per (query, head).
extern "C" __global__ void attn_bwd_prep(float* __restrict__ dvec, const float* __restrict__ out, const float* __restrict__ dout,
                                         int n, int n_head, int hd) {
    int i = blockIdx.x * blockDim.x + threadIdx.x, h = blockIdx.y, s = blockIdx.z;
    if (i >= n) return;
    size_t o = ((size_t)s * n + i) * n_head * hd + h * hd;
    float acc = 0.f;
    for (int d = 0; d < hd; d++) acc = fmaf(dout[o + d], out[o + d], acc);
    dvec[((size_t)s * n_head + h) * n + i] = acc;
}

// dq (+=): the forward's layout, with the probabilities rebuilt from lse.
extern "C" __global__ void __launch_bounds__(AW * 32)
    attn_bwd_dq(float* __restrict__ dq, const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
                const float* __restrict__ dout, const float* __restrict__ lse, const float* __restrict__ dvec,
                int n, int n_kv, int n_head, int n_head_kv, int hd, int pos0, float scale) {
    extern __shared__ float sm[];
    int st = hd + 1;
    float* ks = sm;            // [AT][hd+1]
    float* vs = ks + AT * st;  // [AT][hd+1]
    float* qs = vs + AT * st;  // [AW][hd]
    float* gs = qs + AW * hd;  // [AW][hd] dout rows
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int h = blockIdx.y, s = blockIdx.z, hkv = h / (n_head / n_head_kv);
    int qw = n_head * hd, kvw = n_head_kv * hd;
    int i = blockIdx.x * AW + warp;
    bool live = i < n;
    size_t qo = ((size_t)s * n + i) * qw + h * hd;
    for (int d = lane; d < hd; d += 32) {
        qs[warp * hd + d] = live ? q[qo + d] : 0.f;
        gs[warp * hd + d] = live ? dout[qo + d] : 0.f;
    }
    size_t li = ((size_t)s * n_head + h) * n + i;
    float L = live ? lse[li] : 0.f, Di = live ? dvec[li] : 0.f;
    int last_i = min(n - 1, (int)blockIdx.x * AW + AW - 1);
    int kend = min(n_kv, pos0 + last_i + 1);
    int my_end = live ? min(n_kv, pos0 + i + 1) : 0;
    const float* kb = k + (size_t)s * n_kv * kvw + hkv * hd;
    const float* vb = v + (size_t)s * n_kv * kvw + hkv * hd;
    float acc[NR];
#pragma unroll
    for (int r = 0; r < NR; r++) acc[r] = 0.f;
    for (int j0 = 0; j0 < kend; j0 += AT) {
        __syncthreads();
        for (int e = threadIdx.x; e < AT * hd; e += blockDim.x) {
            int jj = e / hd, d = e % hd, j = j0 + jj;
            ks[jj * st + d] = j < kend ? kb[(size_t)j * kvw + d] : 0.f;
            vs[jj * st + d] = j < kend ? vb[(size_t)j * kvw + d] : 0.f;
        }
        __syncthreads();
        if (j0 >= my_end) continue;
        int j = j0 + lane;
        float ds = 0.f;
        if (j < my_end) {
            const float *kr = ks + lane * st, *vr = vs + lane * st, *qr = qs + warp * hd, *gr = gs + warp * hd;
            float sdot = 0.f, pdot = 0.f;
            for (int d = 0; d < hd; d++) {
                sdot = fmaf(qr[d], kr[d], sdot);
                pdot = fmaf(gr[d], vr[d], pdot);
            }
            float p = expf(sdot * scale - L);
            ds = p * (pdot - Di) * scale;
        }
        int jn = min(AT, my_end - j0);
        for (int jj = 0; jj < jn; jj++) {
            float dj = __shfl_sync(0xffffffffu, ds, jj);
#pragma unroll
            for (int r = 0; r < NR; r++) {
                int d = lane + 32 * r;
                if (d < hd) acc[r] = fmaf(dj, ks[jj * st + d], acc[r]);
            }
        }
    }
    if (!live || dq == NULL) return;
#pragma unroll
    for (int r = 0; r < NR; r++) {
        int d = lane + 32 * r;
        if (d < hd) dq[qo + d] += acc[r];
    }
}

// dk, dv (+=): a warp per key of one kv head; the queries of every head in
// the group stream through shared memory.
extern "C" __global__ void __launch_bounds__(AW * 32)
    attn_bwd_dkdv(float* __restrict__ dk, float* __restrict__ dv, const float* __restrict__ q, const float* __restrict__ k,
                  const float* __restrict__ v, const float* __restrict__ dout, const float* __restrict__ lse,
                  const float* __restrict__ dvec, int n, int n_kv, int n_head, int n_head_kv, int hd, int pos0, float scale) {
    extern __shared__ float sm[];
    int st = hd + 1;
    float* qs = sm;             // [AT][hd+1] query tile
    float* gs = qs + AT * st;   // [AT][hd+1] dout tile
    float* kr_s = gs + AT * st; // [AW][hd]
    float* vr_s = kr_s + AW * hd;
    float* ls = vr_s + AW * hd; // [AT] lse of the tile
    float* dsm = ls + AT;       // [AT] D of the tile
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int hkv = blockIdx.y, s = blockIdx.z, group = n_head / n_head_kv;
    int qw = n_head * hd, kvw = n_head_kv * hd;
    int j = blockIdx.x * AW + warp;
    bool live = j < n_kv;
    size_t ko = ((size_t)s * n_kv + j) * kvw + hkv * hd;
    for (int d = lane; d < hd; d += 32) {
        kr_s[warp * hd + d] = live ? k[ko + d] : 0.f;
        vr_s[warp * hd + d] = live ? v[ko + d] : 0.f;
    }
    // The first query that sees key j sits at position j: index j − pos0.
    int i_first = max(0, (int)blockIdx.x * AW - pos0);
    int my_first = max(0, j - pos0);
    float dka[NR], dva[NR];
#pragma unroll
    for (int r = 0; r < NR; r++) dka[r] = dva[r] = 0.f;
    for (int h = hkv * group; h < (hkv + 1) * group; h++) {
        for (int i0 = i_first; i0 < n; i0 += AT) {
            __syncthreads();
            for (int e = threadIdx.x; e < AT * hd; e += blockDim.x) {
                int ii = e / hd, d = e % hd, i = i0 + ii;
                size_t o = ((size_t)s * n + i) * qw + h * hd + d;
                qs[ii * st + d] = i < n ? q[o] : 0.f;
                gs[ii * st + d] = i < n ? dout[o] : 0.f;
            }
            for (int ii = threadIdx.x; ii < AT; ii += blockDim.x) {
                int i = i0 + ii;
                size_t li = ((size_t)s * n_head + h) * n + i;
                ls[ii] = i < n ? lse[li] : 0.f;
                dsm[ii] = i < n ? dvec[li] : 0.f;
            }
            __syncthreads();
            if (!live || i0 + AT <= my_first) continue;
            int i = i0 + lane;
            float p = 0.f, ds = 0.f;
            if (i < n && i >= my_first) {
                const float *qr = qs + lane * st, *gr = gs + lane * st, *kr = kr_s + warp * hd, *vr = vr_s + warp * hd;
                float sdot = 0.f, pdot = 0.f;
                for (int d = 0; d < hd; d++) {
                    sdot = fmaf(qr[d], kr[d], sdot);
                    pdot = fmaf(gr[d], vr[d], pdot);
                }
                p = expf(sdot * scale - ls[lane]);
                ds = p * (pdot - dsm[lane]) * scale;
            }
            int in_ = min(AT, n - i0);
            for (int ii = 0; ii < in_; ii++) {
                float pi = __shfl_sync(0xffffffffu, p, ii), di = __shfl_sync(0xffffffffu, ds, ii);
#pragma unroll
                for (int r = 0; r < NR; r++) {
                    int d = lane + 32 * r;
                    if (d < hd) {
                        dva[r] = fmaf(pi, gs[ii * st + d], dva[r]);
                        dka[r] = fmaf(di, qs[ii * st + d], dka[r]);
                    }
                }
            }
        }
    }
    if (!live) return;
#pragma unroll
    for (int r = 0; r < NR; r++) {
        int d = lane + 32 * r;
        if (d >= hd) continue;
        if (dk != NULL) dk[ko + d] += dka[r];
        if (dv != NULL) dv[ko + d] += dva[r];
    }
}
