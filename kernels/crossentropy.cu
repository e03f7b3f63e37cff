// Softmax cross-entropy over rows of logits (ops/crossentropy.go), the
// per-chunk step of the fused LM head (kernels.LMHeadCrossEntropy):
//   loss_i = max + log Σ exp(x − max) − x[t_i]   (the sum in double)
//   dlogits_i = scale·(softmax(x_i) − onehot(t_i)), written over the logits
// Targets below zero are ignored: loss 0 and a zero gradient row.
// logits (m, vocab); targets (m) int32; loss (m) doubles, or NULL.
// One block per row.
#include "common.cuh"

extern "C" __global__ void ce_rows(float* __restrict__ logits, double* __restrict__ loss, const int* __restrict__ targets,
                                   int m, int vocab, float scale, int want_grad) {
    int r = blockIdx.x;
    if (r >= m) return;
    float* x = logits + (size_t)r * vocab;
    int t = targets[r];
    if (t < 0 || t >= vocab) { // ignored (the caller has refused ids past the vocabulary)
        if (loss != NULL && threadIdx.x == 0) loss[r] = 0.0;
        if (want_grad)
            for (int j = threadIdx.x; j < vocab; j += blockDim.x) x[j] = 0.f;
        return;
    }
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) mx = fmaxf(mx, x[j]);
    mx = block_max(mx);
    double s = 0.0;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) s += (double)expf(x[j] - mx);
    s = block_sum_d(s);
    float lse = (float)log(s);
    float xt = x[t];
    __syncthreads(); // every thread has read x[t] before it is overwritten
    if (loss != NULL && threadIdx.x == 0) loss[r] = (double)mx + (double)lse - (double)xt;
    if (!want_grad) return;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) {
        float g = __fmul_rn(scale, expf(__fsub_rn(__fsub_rn(x[j], mx), lse)));
        x[j] = j == t ? __fsub_rn(g, scale) : g;
    }
}
