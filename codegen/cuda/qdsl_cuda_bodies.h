// What each CUDA kernel computes, written once for the GPU and for the CPU
// emulation (qdsl_cuda.h).
//
// A kernel is a struct with its parameters and tensors, the size of its grid
// and blocks, and `phase(k, block, thread, threads, shared)`: the work of one
// thread in phase k. Threads of a block meet only between phases (where the
// GPU puts __syncthreads and the emulation finishes every thread of the
// phase first) and share only `shared`, so both run the same arithmetic in
// the same order per thread.
#ifndef QDSL_CUDA_BODIES_H
#define QDSL_CUDA_BODIES_H

#include "qdsl_cuda.h"
#include "runtime/shipped/Contract.h"

#include <math.h>

#if defined(__CUDACC__)
#define QD_HD __host__ __device__
#else
#define QD_HD
#endif

namespace qdsl_cuda {
namespace body {

using qdsl::contract::Activation;

/// Whether an `activation` or `activation_grad` parameter (the code the
/// describers write) names `a`.
QD_HD constexpr bool is(int code, Activation a) { return code == static_cast<int>(a); }

QD_HD inline float gelu(float v) { return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f)); }
QD_HD inline float relu(float v) { return v > 0.0f ? v : 0.0f; }
/// The derivative of GELU or ReLU at v; 1 for none.
QD_HD inline float derivative(int activation, float v) {
    if (is(activation, Activation::Gelu))
        return 0.5f * (1.0f + erff(v * 0.70710678118654752f)) +
               v * expf(-0.5f * v * v) * 0.39894228040143268f;
    if (is(activation, Activation::Relu))
        return v > 0.0f ? 1.0f : 0.0f;
    return 1.0f;
}
QD_HD inline float activate(int activation, float v) {
    return is(activation, Activation::Gelu)   ? gelu(v)
           : is(activation, Activation::Relu) ? relu(v)
                                              : v;
}
QD_HD inline int output_size(int size, int kernel, int stride, int pad) {
    return (size + 2 * pad - kernel) / stride + 1;
}

/// Mean and 1/sqrt(variance + eps) of `n` values `stride` apart, in two
/// passes (the reference executor's order of operations, in float).
QD_HD inline void statistics(const float *x, int n, int stride, float eps, float &mean,
                             float &rstd) {
    float sum = 0.0f;
    for (int i = 0; i < n; ++i)
        sum += x[i * stride];
    mean = sum / n;
    float var = 0.0f;
    for (int i = 0; i < n; ++i) {
        float d = x[i * stride] - mean;
        var += d * d;
    }
    rstd = 1.0f / sqrtf(var / n + eps);
}

/// Depthwise (quadratic) convolution of a tile of kTileH × kTileW output
/// pixels of one example; phase 0 takes the layer norm statistics of the
/// input pixels the tile reads, phase 1 computes the outputs, channels
/// fastest across threads (coalesced NHWC loads and stores).
struct DepthwiseKernel {
    static constexpr int kTileH = 8, kTileW = 8, kThreads = 256, kRun = 4;
    static constexpr int kPhases = 2;
    QD_HD int phases() const { return kPhases; }
    DepthwiseParams p;
    DepthwiseTensors t;
    int batch;

    QD_HD int out_h() const { return output_size(p.height, p.kernel_h, p.stride_h, p.pad_h); }
    QD_HD int out_w() const { return output_size(p.width, p.kernel_w, p.stride_w, p.pad_w); }
    QD_HD int tiles_x() const { return (out_w() + kTileW - 1) / kTileW; }
    QD_HD int tiles_y() const { return (out_h() + kTileH - 1) / kTileH; }
    QD_HD int halo_h() const { return (kTileH - 1) * p.stride_h + p.kernel_h; }
    QD_HD int halo_w() const { return (kTileW - 1) * p.stride_w + p.kernel_w; }
    long long blocks() const { return (long long)batch * tiles_y() * tiles_x(); }
    int threads() const { return kThreads; }
    size_t shared_floats() const { return p.norm ? 2 * (size_t)halo_h() * halo_w() : 1; }

    QD_HD void phase(int k, long long block, int thread, int threads, float *shared) const {
        const int tx = (int)(block % tiles_x()), ty = (int)(block / tiles_x() % tiles_y());
        const int n = (int)(block / ((long long)tiles_x() * tiles_y()));
        const int y0 = ty * kTileH * p.stride_h - p.pad_h, x0 = tx * kTileW * p.stride_w - p.pad_w;
        const int C = p.channels, hw = halo_w();
        const float *image = t.x + (size_t)n * p.height * p.width * C;
        if (k == 0) {
            if (!p.norm)
                return;
            for (int i = thread; i < halo_h() * hw; i += threads) {
                int iy = y0 + i / hw, ix = x0 + i % hw;
                float mean = 0.0f, rstd = 0.0f;
                if (iy >= 0 && iy < p.height && ix >= 0 && ix < p.width)
                    statistics(image + ((size_t)iy * p.width + ix) * C, C, 1, p.eps, mean, rstd);
                shared[2 * i] = mean;
                shared[2 * i + 1] = rstd;
            }
            return;
        }
        // Each thread computes a run of output pixels along x for one channel
        // (kRun at stride 1): a loaded and normalised input value serves every
        // output of the run whose window holds it, so a row of the window
        // costs run + kernel_w - 1 loads instead of run × kernel_w.
        const int oh = out_h(), ow = out_w();
        const int run = p.stride_w == 1 ? kRun : 1, runs_per_row = kTileW / run;
        for (int i = thread; i < kTileH * runs_per_row * C; i += threads) {
            const int c = i % C, segment = i / C;
            const int oy = ty * kTileH + segment / runs_per_row;
            const int ox0 = tx * kTileW + segment % runs_per_row * run;
            if (oy >= oh || ox0 >= ow)
                continue;
            float sa[kRun] = {}, sb[kRun] = {}, sc[kRun] = {};
            const int columns = (run - 1) * p.stride_w + p.kernel_w;
            for (int ky = 0; ky < p.kernel_h; ++ky) {
                const int hy = (oy - ty * kTileH) * p.stride_h + ky, iy = y0 + hy;
                if (iy < 0 || iy >= p.height)
                    continue;
                for (int j = 0; j < columns; ++j) {
                    const int hx = (ox0 - tx * kTileW) * p.stride_w + j, ix = x0 + hx;
                    if (ix < 0 || ix >= p.width)
                        continue;
                    float v = image[((size_t)iy * p.width + ix) * C + c];
                    if (p.norm) {
                        const float *s = shared + 2 * (hy * hw + hx);
                        v = (v - s[0]) * s[1] * t.ln_scale[c] + t.ln_offset[c];
                    }
                    for (int r = 0; r < run; ++r) {
                        const int kx = j - r * p.stride_w;
                        if (kx < 0 || kx >= p.kernel_w)
                            continue;
                        const size_t tap =
                            p.flip_filter
                                ? ((size_t)(p.kernel_h - 1 - ky) * p.kernel_w + (p.kernel_w - 1 - kx)) * C + c
                                : ((size_t)ky * p.kernel_w + kx) * C + c;
                        sa[r] += v * t.wa[tap];
                        if (p.quadratic) {
                            sb[r] += v * t.wb[tap];
                            sc[r] += v * t.wc[tap];
                        }
                    }
                }
            }
            for (int r = 0; r < run && ox0 + r < ow; ++r) {
                float out;
                if (p.quadratic) {
                    if (p.bias) {
                        sa[r] += t.ba[c];
                        sb[r] += t.bb[c];
                        sc[r] += t.bc[c];
                    }
                    out = sa[r] * sb[r] + sc[r];
                } else {
                    out = p.bias ? sa[r] + t.ba[c] : sa[r];
                }
                const size_t at = (((size_t)n * oh + oy) * ow + ox0 + r) * C + c;
                if (p.scale_residual)
                    out = t.residual[at] + t.gamma[c] * out;
                t.y[at] = out;
            }
        }
    }
};

/// A pointwise layer, one output element per thread: the kernel for what the
/// matmul cannot take (a quadratic layer, an input layer norm, an activation
/// before a layer scale).
struct PointwiseKernel {
    static constexpr int kThreads = 256;
    static constexpr int kPhases = 1;
    QD_HD int phases() const { return kPhases; }
    PointwiseParams p;
    PointwiseTensors t;
    int batch;

    QD_HD long long rows() const { return (long long)batch * p.rows_per_example; }
    long long blocks() const {
        return (rows() * p.out_channels + kThreads - 1) / kThreads;
    }
    int threads() const { return kThreads; }
    size_t shared_floats() const { return 1; }

    QD_HD void phase(int, long long block, int thread, int threads, float *) const {
        const long long i = block * threads + thread;
        if (i >= rows() * p.out_channels)
            return;
        const int o = (int)(i % p.out_channels), cin = p.in_channels, cout = p.out_channels;
        const long long row = i / p.out_channels;
        const float *x = t.x + row * cin;
        float mean = 0.0f, rstd = 1.0f;
        if (p.norm)
            statistics(x, cin, 1, p.eps, mean, rstd);
        const float *w = t.w;
        float a = 0.0f, b = 0.0f, c = 0.0f;
        for (int k = 0; k < cin; ++k) {
            float v = x[k];
            if (p.norm)
                v = (v - mean) * rstd * t.ln_scale[k] + t.ln_offset[k];
            a += v * (p.weight_transposed ? w[(size_t)o * cin + k] : w[(size_t)k * cout + o]);
            if (p.quadratic) {
                b += v * t.wb[(size_t)k * cout + o];
                c += v * t.wc[(size_t)k * cout + o];
            }
        }
        float out;
        if (p.quadratic) {
            if (p.bias) {
                a += t.bias[o];
                b += t.bb[o];
                c += t.bc[o];
            }
            out = a * b + c;
        } else {
            if (p.bias)
                a += t.bias[o];
            out = a;
        }
        out = activate(p.activation, out);
        const size_t at = (size_t)row * cout + o;
        if (p.activation_grad)
            out *= derivative(p.activation_grad, t.pre[at]);
        if (p.scale_residual)
            out = t.residual[at] + t.gamma[o] * out;
        t.y[at] = out;
    }
};

/// A convolution, one block per output pixel: phase 0 loads the input patch
/// into shared memory, 1 and 2 normalise it per input pixel (norm_input),
/// 3 computes one output channel per thread, 4 and 5 normalise the outputs
/// (norm_output).
struct ConvKernel {
    static constexpr int kThreads = 128;
    static constexpr int kPhases = 6;
    QD_HD int phases() const { return kPhases; }
    ConvParams p;
    ConvTensors t;
    int batch;

    QD_HD int out_h() const { return output_size(p.height, p.kernel_h, p.stride_h, p.pad_h); }
    QD_HD int out_w() const { return output_size(p.width, p.kernel_w, p.stride_w, p.pad_w); }
    QD_HD int taps() const { return p.kernel_h * p.kernel_w; }
    QD_HD int patch() const { return taps() * p.in_channels; }
    long long blocks() const { return (long long)batch * out_h() * out_w(); }
    int threads() const { return kThreads; }
    // patch, per-tap statistics, outputs, output statistics.
    size_t shared_floats() const { return (size_t)patch() + 2 * taps() + p.out_channels + 2; }

    QD_HD void phase(int k, long long block, int thread, int threads, float *shared) const {
        const int ox = (int)(block % out_w()), oy = (int)(block / out_w() % out_h());
        const int n = (int)(block / ((long long)out_w() * out_h()));
        const int cin = p.in_channels, cout = p.out_channels;
        float *patch_values = shared, *tap_stats = shared + patch();
        float *outputs = tap_stats + 2 * taps(), *out_stats = outputs + cout;
        auto inside = [&](int tap, int &iy, int &ix) {
            iy = oy * p.stride_h - p.pad_h + tap / p.kernel_w;
            ix = ox * p.stride_w - p.pad_w + tap % p.kernel_w;
            return iy >= 0 && iy < p.height && ix >= 0 && ix < p.width;
        };
        if (k == 0) {
            for (int i = thread; i < patch(); i += threads) {
                int iy, ix;
                patch_values[i] =
                    inside(i / cin, iy, ix)
                        ? t.x[(((size_t)n * p.height + iy) * p.width + ix) * cin + i % cin]
                        : 0.0f;
            }
        } else if (k == 1) {
            if (p.norm_input)
                for (int tap = thread; tap < taps(); tap += threads)
                    statistics(patch_values + tap * cin, cin, 1, p.eps_input, tap_stats[2 * tap],
                               tap_stats[2 * tap + 1]);
        } else if (k == 2) {
            // Padding is zero after the layer norm: outside taps stay 0.
            if (p.norm_input)
                for (int i = thread; i < patch(); i += threads) {
                    int iy, ix, tap = i / cin, c = i % cin;
                    if (inside(tap, iy, ix))
                        patch_values[i] = (patch_values[i] - tap_stats[2 * tap]) *
                                              tap_stats[2 * tap + 1] * t.in_scale[c] +
                                          t.in_offset[c];
                }
        } else if (k == 3) {
            const int per_group_in = cin / p.groups, per_group_out = cout / p.groups;
            for (int o = thread; o < cout; o += threads) {
                const int first = o / per_group_out * per_group_in;
                float acc = p.bias ? t.bias[o] : 0.0f;
                for (int tap = 0; tap < taps(); ++tap)
                    for (int j = 0; j < per_group_in; ++j)
                        acc += patch_values[tap * cin + first + j] *
                               t.filter[((size_t)tap * per_group_in + j) * cout + o];
                const size_t at = (((size_t)n * out_h() + oy) * out_w() + ox) * cout + o;
                if (p.norm_output)
                    outputs[o] = acc;
                else
                    t.y[at] = acc;
            }
        } else if (k == 4) {
            if (p.norm_output && thread == 0)
                statistics(outputs, cout, 1, p.eps_output, out_stats[0], out_stats[1]);
        } else if (p.norm_output) {
            for (int o = thread; o < cout; o += threads) {
                const size_t at = (((size_t)n * out_h() + oy) * out_w() + ox) * cout + o;
                t.y[at] = (outputs[o] - out_stats[0]) * out_stats[1] * t.out_scale[o] +
                          t.out_offset[o];
            }
        }
    }
};

/// The classifier head, one block per example: pool, layer norm, linear.
struct HeadKernel {
    static constexpr int kThreads = 256;
    static constexpr int kPhases = 4;
    QD_HD int phases() const { return kPhases; }
    HeadParams p;
    HeadTensors t;
    int batch;

    long long blocks() const { return batch; }
    int threads() const { return kThreads; }
    size_t shared_floats() const { return (size_t)p.channels + 2; }

    QD_HD void phase(int k, long long block, int thread, int threads, float *shared) const {
        const int C = p.channels, n = (int)block;
        float *pooled = shared, *stats = shared + C;
        if (k == 0) {
            for (int c = thread; c < C; c += threads) {
                float sum = 0.0f;
                for (long long q = 0; q < p.pixels; ++q)
                    sum += t.x[((size_t)n * p.pixels + q) * C + c];
                pooled[c] = sum / (float)p.pixels;
            }
        } else if (k == 1) {
            if (thread == 0)
                statistics(pooled, C, 1, p.eps, stats[0], stats[1]);
        } else if (k == 2) {
            for (int c = thread; c < C; c += threads)
                pooled[c] = (pooled[c] - stats[0]) * stats[1] * t.ln_scale[c] + t.ln_offset[c];
        } else {
            for (int o = thread; o < p.classes; o += threads) {
                float acc = p.bias ? t.bias[o] : 0.0f;
                for (int c = 0; c < C; ++c)
                    acc += pooled[c] * t.w[(size_t)c * p.classes + o];
                t.y[(size_t)n * p.classes + o] = acc;
            }
        }
    }
};

/// The global average pool, one (example, channel) per thread.
struct AvgPoolKernel {
    static constexpr int kThreads = 256;
    static constexpr int kPhases = 1;
    QD_HD int phases() const { return kPhases; }
    AvgPoolParams p;
    AvgPoolTensors t;
    int batch;

    long long blocks() const { return ((long long)batch * p.channels + kThreads - 1) / kThreads; }
    int threads() const { return kThreads; }
    size_t shared_floats() const { return 1; }

    QD_HD void phase(int, long long block, int thread, int threads, float *) const {
        const long long i = block * threads + thread;
        if (i >= (long long)batch * p.channels)
            return;
        const int c = (int)(i % p.channels);
        const long long n = i / p.channels;
        float sum = 0.0f;
        for (long long q = 0; q < p.pixels; ++q)
            sum += t.x[((size_t)n * p.pixels + q) * p.channels + c];
        t.y[i] = sum / (float)p.pixels;
    }
};

/// An elementwise op; a layer norm takes kRowsPerBlock rows per block, 32
/// threads (a warp) per row: partial sums in phases 0 and 2, combined by the
/// row's first thread in 1 and 3, written in 4.
struct ElementwiseKernel {
    static constexpr int kThreads = 256, kLanes = 32, kRowsPerBlock = kThreads / kLanes;
    ElementwiseParams p;
    ElementwiseTensors t;
    int batch;

    QD_HD long long rows() const { return (long long)batch * p.rows_per_example; }
    QD_HD bool is_norm() const { return p.op == ElementwiseOp::layernorm; }
    QD_HD int phases() const { return is_norm() ? 5 : 1; }
    long long blocks() const {
        return is_norm() ? (rows() + kRowsPerBlock - 1) / kRowsPerBlock
                         : (rows() * p.channels + kThreads - 1) / kThreads;
    }
    int threads() const { return kThreads; }
    size_t shared_floats() const { return is_norm() ? kThreads + 2 * kRowsPerBlock : 1; }

    QD_HD void phase(int k, long long block, int thread, int threads, float *shared) const {
        const int C = p.channels;
        if (p.op != ElementwiseOp::layernorm) {
            const long long i = block * threads + thread;
            if (i >= rows() * C)
                return;
            const int c = (int)(i % C);
            float v = t.x[i];
            switch (p.op) {
            case ElementwiseOp::gelu: v = gelu(v); break;
            case ElementwiseOp::relu: v = relu(v); break;
            case ElementwiseOp::layerscale: v *= t.scale[c]; break;
            case ElementwiseOp::add: v += t.other[i]; break;
            case ElementwiseOp::mul: v *= t.other[i]; break;
            default: break;
            }
            t.y[i] = v;
            return;
        }
        const int lane = thread % kLanes, local = thread / kLanes;
        const long long row = block * kRowsPerBlock + local;
        float *partial = shared, *stats = shared + kThreads + 2 * local;
        if (row >= rows())
            return;
        const float *x = t.x + row * C;
        // Each phase reads only what an earlier one wrote (the row's first
        // lane writes its statistics in phases 1 and 3).
        if (k == 0) {
            float sum = 0.0f;
            for (int c = lane; c < C; c += kLanes)
                sum += x[c];
            partial[thread] = sum;
        } else if (k == 2) {
            const float mean = stats[0];
            float sum = 0.0f;
            for (int c = lane; c < C; c += kLanes)
                sum += (x[c] - mean) * (x[c] - mean);
            partial[thread] = sum;
        } else if (k == 1 || k == 3) {
            if (lane != 0)
                return;
            float sum = 0.0f;
            for (int l = 0; l < kLanes; ++l)
                sum += partial[thread + l];
            if (k == 1)
                stats[0] = sum / C;
            else
                stats[1] = 1.0f / sqrtf(sum / C + p.eps);
        } else {
            float *y = t.y + row * C;
            for (int c = lane; c < C; c += kLanes)
                y[c] = (x[c] - stats[0]) * stats[1] * t.scale[c] + t.offset[c];
        }
    }
};


// --- The backward pass.

/// One thread per element of `count()`: the shape of most gradient kernels.
template <class Derived> struct PerElement {
    static constexpr int kThreads = 256;
    QD_HD int phases() const { return 1; }
    long long blocks() const {
        return (static_cast<const Derived *>(this)->count() + kThreads - 1) / kThreads;
    }
    int threads() const { return kThreads; }
    size_t shared_floats() const { return 1; }
    QD_HD void phase(int, long long block, int thread, int threads, float *) const {
        const long long i = block * threads + thread;
        if (i < static_cast<const Derived *>(this)->count())
            static_cast<const Derived *>(this)->at(i);
    }
};

/// A sum over `length` terms split into `count` contiguous chunks, each
/// summed by its own thread into `partial` ([chunk][output][element]), then
/// the chunks summed in order by SumChunksKernel: every weight gradient is
/// summed in the same order whatever the device, and in parallel.
struct Chunks {
    long long length = 0;
    int count = 1;
    QD_HD long long begin(int chunk) const { return length * chunk / count; }
    QD_HD long long end(int chunk) const { return length * (chunk + 1) / count; }
};

/// Chunks for `elements` sums (of `outputs` values each) over `length` terms:
/// about 64 terms per chunk, at most 256 chunks, and at most 2^24 partial
/// sums in scratch memory.
inline Chunks choose_chunks(long long length, long long elements, int outputs) {
    long long count = length / 64;
    const long long room = (1LL << 24) / (elements * outputs);
    count = count < 256 ? count : 256;
    count = count < room ? count : room;
    return {length, static_cast<int>(count < 1 ? 1 : count)};
}

struct SumChunksKernel : PerElement<SumChunksKernel> {
    const float *partial;
    long long elements;
    int chunks, outputs;
    float *out[3];
    QD_HD long long count() const { return elements * outputs; }
    QD_HD void at(long long i) const {
        const int o = (int)(i / elements);
        const long long e = i % elements;
        float sum = 0.0f;
        for (int c = 0; c < chunks; ++c)
            sum += partial[((long long)c * outputs + o) * elements + e];
        out[o][e] = sum;
    }
};

/// dy times the activation's derivative at x, elementwise.
struct ActivationGradKernel : PerElement<ActivationGradKernel> {
    ActivationGradParams p;
    ActivationGradTensors t;
    int batch;
    QD_HD long long count() const { return (long long)batch * p.rows_per_example * p.channels; }
    QD_HD void at(long long i) const {
        t.y[i] = t.dy[i] * derivative(p.op == ElementwiseOp::gelu ? 1 : 2, t.x[i]);
    }
};

/// Partial sums of each channel over a chunk of rows.
struct ChannelSumKernel : PerElement<ChannelSumKernel> {
    ChannelSumParams p;
    ChannelSumTensors t;
    Chunks chunks;
    float *partial;
    QD_HD long long count() const { return (long long)chunks.count * p.channels; }
    QD_HD void at(long long i) const {
        const int chunk = (int)(i / p.channels), c = (int)(i % p.channels);
        float sum = 0.0f;
        for (long long r = chunks.begin(chunk); r < chunks.end(chunk); ++r)
            sum += t.x[r * p.channels + c];
        partial[i] = sum;
    }
};

/// A layer norm's dx, one warp per row: the forward's statistics (phases
/// 0-3, saved to `stats` for the weight gradients), then the means of
/// g = dy⊙scale and g⊙x̂ (4, 5), then dx (6).
struct LayerNormGradRowsKernel {
    static constexpr int kThreads = 256, kLanes = 32, kRowsPerBlock = kThreads / kLanes;
    LayerNormGradParams p;
    LayerNormGradTensors t;
    int batch;
    float *stats;  // mean and rstd per row

    QD_HD int phases() const { return 7; }
    QD_HD long long rows() const { return (long long)batch * p.rows_per_example; }
    long long blocks() const { return (rows() + kRowsPerBlock - 1) / kRowsPerBlock; }
    int threads() const { return kThreads; }
    size_t shared_floats() const { return 2 * kThreads + 4 * kRowsPerBlock; }

    QD_HD void phase(int k, long long block, int thread, int, float *shared) const {
        const int C = p.channels, lane = thread % kLanes, local = thread / kLanes;
        const long long row = block * kRowsPerBlock + local;
        if (row >= rows())
            return;
        float *partial = shared, *row_stats = shared + 2 * kThreads + 4 * local;
        const float *x = t.x + row * C, *dy = t.dy + row * C;
        // Each phase reads only what an earlier phase wrote: a row's first
        // lane writes its statistics in phases 1, 3 and 5.
        if (k == 0) {
            float sum = 0.0f;
            for (int c = lane; c < C; c += kLanes)
                sum += x[c];
            partial[thread] = sum;
        } else if (k == 2) {
            const float mean = row_stats[0];
            float sum = 0.0f;
            for (int c = lane; c < C; c += kLanes)
                sum += (x[c] - mean) * (x[c] - mean);
            partial[thread] = sum;
        } else if (k == 4) {
            const float mean = row_stats[0], rstd = row_stats[1];
            float g_sum = 0.0f, gx_sum = 0.0f;
            for (int c = lane; c < C; c += kLanes) {
                float g = dy[c] * t.scale[c];
                g_sum += g;
                gx_sum += g * (x[c] - mean) * rstd;
            }
            partial[thread] = g_sum;
            partial[kThreads + thread] = gx_sum;
        } else if (k == 1 || k == 3 || k == 5) {
            if (lane != 0)
                return;
            float sum = 0.0f, second = 0.0f;
            for (int l = 0; l < kLanes; ++l) {
                sum += partial[thread + l];
                if (k == 5)
                    second += partial[kThreads + thread + l];
            }
            if (k == 1) {
                row_stats[0] = sum / C;
            } else if (k == 3) {
                row_stats[1] = 1.0f / sqrtf(sum / C + p.eps);
                stats[2 * row] = row_stats[0];
                stats[2 * row + 1] = row_stats[1];
            } else {
                row_stats[2] = sum / C;
                row_stats[3] = second / C;
            }
        } else {
            const float mean = row_stats[0], rstd = row_stats[1];
            float *dx = t.dx + row * C;
            for (int c = lane; c < C; c += kLanes) {
                float xhat = (x[c] - mean) * rstd;
                dx[c] = rstd * (dy[c] * t.scale[c] - row_stats[2] - xhat * row_stats[3]);
            }
        }
    }
};

/// Partial dscale and doffset per channel over a chunk of rows, from the
/// rows' statistics.
struct LayerNormGradWeightsKernel : PerElement<LayerNormGradWeightsKernel> {
    LayerNormGradParams p;
    LayerNormGradTensors t;
    const float *stats;
    Chunks chunks;
    float *partial;
    QD_HD long long count() const { return (long long)chunks.count * p.channels; }
    QD_HD void at(long long i) const {
        const int chunk = (int)(i / p.channels), c = (int)(i % p.channels);
        float dscale = 0.0f, doffset = 0.0f;
        for (long long r = chunks.begin(chunk); r < chunks.end(chunk); ++r) {
            const float dy = t.dy[r * p.channels + c];
            dscale += dy * (t.x[r * p.channels + c] - stats[2 * r]) * stats[2 * r + 1];
            doffset += dy;
        }
        partial[(2LL * chunk) * p.channels + c] = dscale;
        partial[(2LL * chunk + 1) * p.channels + c] = doffset;
    }
};

/// The window of a convolution gradient: output size from the forward
/// input's.
struct ConvGradWindow {
    ConvGradParams p;
    QD_HD int out_h() const { return output_size(p.height, p.kernel_h, p.stride_h, p.pad_h); }
    QD_HD int out_w() const { return output_size(p.width, p.kernel_w, p.stride_w, p.pad_w); }
    QD_HD int cin_per_group() const { return p.depthwise ? 1 : p.in_channels / p.groups; }
    QD_HD int cout_per_group() const { return p.depthwise ? 1 : p.out_channels / p.groups; }
    /// The filter element of tap (ky, kx) from input channel ci to output co.
    QD_HD size_t filter_at(int ky, int kx, int ci, int co) const {
        const size_t tap = (size_t)ky * p.kernel_w + kx;
        if (p.depthwise)
            return tap * p.in_channels + ci;
        return (tap * cin_per_group() + ci % cin_per_group()) * p.out_channels + co;
    }
};

/// dx of a convolution, one input element per thread.
struct ConvGradInputKernel : PerElement<ConvGradInputKernel> {
    ConvGradWindow w;
    ConvGradInputTensors t;
    int batch;
    QD_HD long long count() const {
        return (long long)batch * w.p.height * w.p.width * w.p.in_channels;
    }
    QD_HD void at(long long i) const {
        const ConvGradParams &p = w.p;
        const int ci = (int)(i % p.in_channels);
        const long long pixel = i / p.in_channels;
        const int ix = (int)(pixel % p.width), iy = (int)(pixel / p.width % p.height);
        const long long n = pixel / ((long long)p.width * p.height);
        const int oh = w.out_h(), ow = w.out_w();
        const int first = p.depthwise ? ci : ci / w.cin_per_group() * w.cout_per_group();
        const int outputs = p.depthwise ? 1 : w.cout_per_group();
        float sum = 0.0f;
        for (int ky = 0; ky < p.kernel_h; ++ky) {
            const int ty = iy + p.pad_h - ky;
            if (ty < 0 || ty % p.stride_h || ty / p.stride_h >= oh)
                continue;
            for (int kx = 0; kx < p.kernel_w; ++kx) {
                const int tx = ix + p.pad_w - kx;
                if (tx < 0 || tx % p.stride_w || tx / p.stride_w >= ow)
                    continue;
                const float *dy = t.dy + (((size_t)n * oh + ty / p.stride_h) * ow + tx / p.stride_w) *
                                             p.out_channels;
                for (int j = 0; j < outputs; ++j)
                    sum += dy[first + j] * t.filter[w.filter_at(ky, kx, ci, first + j)];
            }
        }
        t.y[i] = sum;
    }
};

/// A convolution's filter gradient: partial sums per filter element over a
/// chunk of the output pixels (every example's).
struct ConvGradFilterKernel : PerElement<ConvGradFilterKernel> {
    ConvGradWindow w;
    ConvGradFilterTensors t;
    Chunks chunks;
    float *partial;
    QD_HD long long elements() const {
        const ConvGradParams &p = w.p;
        return (long long)p.kernel_h * p.kernel_w *
               (p.depthwise ? p.in_channels : w.cin_per_group() * p.out_channels);
    }
    QD_HD long long count() const { return chunks.count * elements(); }
    QD_HD void at(long long i) const {
        const ConvGradParams &p = w.p;
        const int chunk = (int)(i / elements());
        const long long e = i % elements();
        int ci, co;
        long long tap;
        if (p.depthwise) {
            ci = co = (int)(e % p.in_channels);
            tap = e / p.in_channels;
        } else {
            co = (int)(e % p.out_channels);
            const int cg = (int)(e / p.out_channels % w.cin_per_group());
            tap = e / ((long long)p.out_channels * w.cin_per_group());
            ci = co / w.cout_per_group() * w.cin_per_group() + cg;
        }
        const int ky = (int)(tap / p.kernel_w), kx = (int)(tap % p.kernel_w);
        const int oh = w.out_h(), ow = w.out_w();
        float sum = 0.0f;
        for (long long q = chunks.begin(chunk); q < chunks.end(chunk); ++q) {
            const int ox = (int)(q % ow), oy = (int)(q / ow % oh);
            const long long n = q / ((long long)ow * oh);
            const int iy = oy * p.stride_h - p.pad_h + ky, ix = ox * p.stride_w - p.pad_w + kx;
            if (iy < 0 || iy >= p.height || ix < 0 || ix >= p.width)
                continue;
            sum += t.x[(((size_t)n * p.height + iy) * p.width + ix) * p.in_channels + ci] *
                   t.dy[(size_t)q * p.out_channels + co];
        }
        partial[i] = sum;
    }
};

/// The shared window of the three qdwconv gradient kernels (stride 1).
struct QDWConvGradWindow {
    QDWConvGradParams p;
    QDWConvGradTensors t;
    int batch;
    QD_HD int out_h() const { return output_size(p.height, p.kernel_h, 1, p.pad_h); }
    QD_HD int out_w() const { return output_size(p.width, p.kernel_w, 1, p.pad_w); }
};

/// dx = Σ over taps of the branch gradients times their filters.
struct QDWConvGradInputKernel : PerElement<QDWConvGradInputKernel> {
    QDWConvGradWindow w;
    QD_HD long long count() const {
        return (long long)w.batch * w.p.height * w.p.width * w.p.channels;
    }
    QD_HD void at(long long i) const {
        const QDWConvGradParams &p = w.p;
        const QDWConvGradTensors &t = w.t;
        const int C = p.channels, c = (int)(i % C);
        const long long pixel = i / C;
        const int ix = (int)(pixel % p.width), iy = (int)(pixel / p.width % p.height);
        const long long n = pixel / ((long long)p.width * p.height);
        const int oh = w.out_h(), ow = w.out_w();
        float sum = 0.0f;
        for (int ky = 0; ky < p.kernel_h; ++ky) {
            const int oy = iy + p.pad_h - ky;
            if (oy < 0 || oy >= oh)
                continue;
            for (int kx = 0; kx < p.kernel_w; ++kx) {
                const int ox = ix + p.pad_w - kx;
                if (ox < 0 || ox >= ow)
                    continue;
                const size_t at = (((size_t)n * oh + oy) * ow + ox) * C + c;
                const size_t tap = ((size_t)ky * p.kernel_w + kx) * C + c;
                const float dy = t.dy[at];
                sum += dy * (t.xb[at] * t.wa[tap] + t.xa[at] * t.wb[tap] + t.wc[tap]);
            }
        }
        t.dx[i] = sum;
    }
};

/// The three filter gradients: partial sums per (tap, channel) over a chunk
/// of the output pixels.
struct QDWConvGradFilterKernel : PerElement<QDWConvGradFilterKernel> {
    QDWConvGradWindow w;
    Chunks chunks;
    float *partial;
    QD_HD long long elements() const {
        return (long long)w.p.kernel_h * w.p.kernel_w * w.p.channels;
    }
    QD_HD long long count() const { return chunks.count * elements(); }
    QD_HD void at(long long i) const {
        const QDWConvGradParams &p = w.p;
        const QDWConvGradTensors &t = w.t;
        const int chunk = (int)(i / elements());
        const long long e = i % elements();
        const int C = p.channels, c = (int)(e % C);
        const int tap = (int)(e / C), ky = tap / p.kernel_w, kx = tap % p.kernel_w;
        const int oh = w.out_h(), ow = w.out_w();
        float da = 0.0f, db = 0.0f, dc = 0.0f;
        for (long long q = chunks.begin(chunk); q < chunks.end(chunk); ++q) {
            const int ox = (int)(q % ow), oy = (int)(q / ow % oh);
            const long long n = q / ((long long)ow * oh);
            const int iy = oy - p.pad_h + ky, ix = ox - p.pad_w + kx;
            if (iy < 0 || iy >= p.height || ix < 0 || ix >= p.width)
                continue;
            const size_t at = (size_t)q * C + c;
            const float g = t.dy[at] * t.x[(((size_t)n * p.height + iy) * p.width + ix) * C + c];
            da += g * t.xb[at];
            db += g * t.xa[at];
            dc += g;
        }
        const long long base = 3LL * chunk * elements() + e;
        partial[base] = da;
        partial[base + elements()] = db;
        partial[base + 2 * elements()] = dc;
    }
};

/// The three bias gradients: partial sums per channel over a chunk of the
/// output pixels.
struct QDWConvGradBiasKernel : PerElement<QDWConvGradBiasKernel> {
    QDWConvGradWindow w;
    Chunks chunks;
    float *partial;
    QD_HD long long count() const { return (long long)chunks.count * w.p.channels; }
    QD_HD void at(long long i) const {
        const QDWConvGradTensors &t = w.t;
        const int C = w.p.channels, chunk = (int)(i / C), c = (int)(i % C);
        float da = 0.0f, db = 0.0f, dc = 0.0f;
        for (long long q = chunks.begin(chunk); q < chunks.end(chunk); ++q) {
            const size_t at = (size_t)q * C + c;
            da += t.dy[at] * t.xb[at];
            db += t.dy[at] * t.xa[at];
            dc += t.dy[at];
        }
        const long long base = 3LL * chunk * C + c;
        partial[base] = da;
        partial[base + C] = db;
        partial[base + 2 * C] = dc;
    }
};

/// The average pool's gradient, one input element per thread.
struct AvgPoolGradKernel : PerElement<AvgPoolGradKernel> {
    AvgPoolGradParams p;
    AvgPoolGradTensors t;
    int batch;
    QD_HD long long count() const { return (long long)batch * p.height * p.width * p.channels; }
    QD_HD void at(long long i) const {
        const long long pixels = (long long)p.height * p.width;
        const long long n = i / (pixels * p.channels);
        t.y[i] = t.dy[n * p.channels + i % p.channels] / (float)pixels;
    }
};

/// Softmax cross-entropy: for the loss one thread sums every example (a
/// scalar, in the reference's order); for the gradient one logit per thread.
struct SoftmaxCrossEntropyKernel : PerElement<SoftmaxCrossEntropyKernel> {
    SoftmaxCrossEntropyParams p;
    SoftmaxCrossEntropyTensors t;
    int batch;
    QD_HD long long count() const { return p.gradient ? (long long)batch * p.classes : 1; }
    QD_HD float log_sum(const float *row) const {
        float largest = row[0];
        for (int j = 1; j < p.classes; ++j)
            largest = row[j] > largest ? row[j] : largest;
        float sum = 0.0f;
        for (int j = 0; j < p.classes; ++j)
            sum += expf(row[j] - largest);
        return largest + logf(sum);
    }
    QD_HD float target(int j, int label) const {
        return p.smoothing / p.classes + (j == label ? 1.0f - p.smoothing : 0.0f);
    }
    QD_HD void at(long long i) const {
        if (p.gradient) {
            const long long n = i / p.classes;
            const int j = (int)(i % p.classes);
            const float *row = t.logits + n * p.classes;
            t.y[i] = (expf(row[j] - log_sum(row)) - target(j, t.labels[n])) / batch;
            return;
        }
        float loss = 0.0f;
        for (int n = 0; n < batch; ++n) {
            const float *row = t.logits + (size_t)n * p.classes;
            const float lse = log_sum(row);
            for (int j = 0; j < p.classes; ++j)
                loss -= target(j, t.labels[n]) * (row[j] - lse);
        }
        t.y[0] = loss / batch;
    }
};

}  // namespace body
}  // namespace qdsl_cuda

#endif  // QDSL_CUDA_BODIES_H
