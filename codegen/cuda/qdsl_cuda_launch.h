// The kernels of qdsl_cuda.h: parameter checks, then the kernel bodies of
// qdsl_cuda_bodies.h run by the implementation that includes this file. It
// defines ContextState (with a `std::string error`) and
//
//   template <class K> bool run_blocks(const K &kernel, Context &context);
//
// before the #include, and `matmul` (declared here) after it, so that the GPU
// and the CPU emulation check, size and choose alike.
#ifndef QDSL_CUDA_LAUNCH_H
#define QDSL_CUDA_LAUNCH_H

#include "qdsl_cuda_bodies.h"

#include <string>

namespace qdsl_cuda {

/// One matmul, column-major as cuBLASLt sees it: D (m × n, leading dimension
/// m) = activation(op(A)·op(B) + C + bias), the bias one value per row of D,
/// C (the residual; optional) laid out as D. A is stored m × k (k × m when
/// transposed) with leading dimension lda, B k × n (n × k) with ldb. A
/// row-major [rows, channels] activation is a column-major channels × rows
/// matrix.
struct MatmulCall {
    long long m = 0, n = 0, k = 0, lda = 0, ldb = 0;
    const float *a = nullptr, *b = nullptr, *bias = nullptr, *c = nullptr;
    bool transpose_a = false, transpose_b = false;
    int activation = 0;
    float *d = nullptr;
};
bool matmul(const MatmulCall &call, Context &context);

namespace {

bool positive(Context &context, const char *kernel, std::initializer_list<long long> sizes) {
    for (long long size : sizes)
        if (size <= 0)
            return context.fail(std::string(kernel) + ": a size parameter is not positive");
    return true;
}

}  // namespace

bool parse_precision(const std::string &name, Precision &precision) {
    for (Precision p : {Precision::fp32, Precision::tf32, Precision::bf16})
        if (name == precision_name(p)) {
            precision = p;
            return true;
        }
    return false;
}

const char *precision_name(Precision precision) {
    switch (precision) {
    case Precision::fp32: return "fp32";
    case Precision::tf32: return "tf32";
    case Precision::bf16: return "bf16";
    }
    return "fp32";
}

bool Context::fail(const std::string &message) {
    if (impl->error.empty())
        impl->error = message;
    return false;
}

void Context::prefix_error(const std::string &prefix) { impl->error = prefix + impl->error; }

bool depthwise(const DepthwiseParams &p, const DepthwiseTensors &t, int batch, Context &context) {
    if (!positive(context, "depthwise",
                  {batch, p.channels, p.kernel_h, p.kernel_w, p.stride_h, p.stride_w, p.height,
                   p.width, p.height + 2 * p.pad_h - p.kernel_h + 1,
                   p.width + 2 * p.pad_w - p.kernel_w + 1}))
        return false;
    return run_blocks(body::DepthwiseKernel{p, t, batch}, context);
}

bool pointwise(const PointwiseParams &p, const PointwiseTensors &t, int batch, Context &context) {
    if (!positive(context, "pointwise",
                  {batch, p.in_channels, p.out_channels, p.rows_per_example}))
        return false;
    // cuBLASLt's epilogue applies the activation after the bias and adds C
    // (the residual) last: a layer scale between needs it folded into the
    // weights, which holds only without an activation.
    const bool as_matmul =
        !p.norm && !p.quadratic &&
        (body::is(p.activation, body::Activation::None) || !p.scale_residual);
    if (!as_matmul)
        return run_blocks(body::PointwiseKernel{p, t, batch}, context);
    if (p.scale_residual && (!t.w_scaled || (p.bias && !t.bias_scaled)))
        return context.fail("pointwise: a layer-scaled matmul needs its folded weights");
    // y [rows, out] = x [rows, in] · w [in, out] is, column-major,
    // yᵀ = wᵀ · xᵀ; a transposed weight w [out, in] is read as its transpose.
    MatmulCall call;
    call.m = p.out_channels;
    call.n = (long long)batch * p.rows_per_example;
    call.k = p.in_channels;
    call.a = p.scale_residual ? t.w_scaled : t.w;
    call.transpose_a = p.weight_transposed;
    call.lda = p.weight_transposed ? p.in_channels : p.out_channels;
    call.b = t.x;
    call.ldb = p.in_channels;
    call.bias = !p.bias ? nullptr : p.scale_residual ? t.bias_scaled : t.bias;
    call.c = p.scale_residual ? t.residual : nullptr;
    call.activation = p.activation;
    call.d = t.y;
    if (!matmul(call, context))
        return false;
    if (body::is(p.activation_grad, body::Activation::None))
        return true;
    ActivationGradParams grad;
    grad.op = body::is(p.activation_grad, body::Activation::Gelu) ? ElementwiseOp::gelu
                                                             : ElementwiseOp::relu;
    grad.channels = p.out_channels;
    grad.rows_per_example = p.rows_per_example;
    ActivationGradTensors tensors;
    tensors.x = t.pre;
    tensors.dy = t.y;
    tensors.y = t.y;
    return run_blocks(body::ActivationGradKernel{{}, grad, tensors, batch}, context);
}

bool conv(const ConvParams &p, const ConvTensors &t, int batch, Context &context) {
    if (!positive(context, "conv",
                  {batch, p.in_channels, p.out_channels, p.kernel_h, p.kernel_w, p.stride_h,
                   p.stride_w, p.groups, p.height, p.width,
                   p.height + 2 * p.pad_h - p.kernel_h + 1, p.width + 2 * p.pad_w - p.kernel_w + 1}))
        return false;
    if (p.in_channels % p.groups || p.out_channels % p.groups)
        return context.fail("conv: the channels are not a multiple of the groups");
    body::ConvKernel kernel{p, t, batch};
    if (kernel.patch() > kMaxConvPatch)
        return context.fail("conv: an input patch of " + std::to_string(kernel.patch()) +
                            " values is more than the kernel's shared memory holds (" +
                            std::to_string(kMaxConvPatch) + ")");
    return run_blocks(kernel, context);
}

bool head(const HeadParams &p, const HeadTensors &t, int batch, Context &context) {
    if (!positive(context, "head", {batch, p.channels, p.classes, p.pixels}))
        return false;
    if (p.channels > kMaxHeadChannels)
        return context.fail("head: more channels than the kernel's shared memory holds");
    return run_blocks(body::HeadKernel{p, t, batch}, context);
}

bool avgpool(const AvgPoolParams &p, const AvgPoolTensors &t, int batch, Context &context) {
    if (!positive(context, "avgpool", {batch, p.channels, p.pixels}))
        return false;
    return run_blocks(body::AvgPoolKernel{p, t, batch}, context);
}

bool elementwise(const ElementwiseParams &p, const ElementwiseTensors &t, int batch,
                 Context &context) {
    if (!positive(context, "elementwise", {batch, p.channels, p.rows_per_example}))
        return false;
    return run_blocks(body::ElementwiseKernel{p, t, batch}, context);
}

namespace {
/// Sums a partial kernel's chunks into `outputs` (each `elements` long).
bool sum_chunks(const float *partial, long long elements, int chunks,
                std::initializer_list<float *> outputs, Context &context) {
    body::SumChunksKernel sum{{}, partial, elements, chunks, static_cast<int>(outputs.size()), {}};
    int o = 0;
    for (float *out : outputs)
        sum.out[o++] = out;
    return run_blocks(sum, context);
}
}  // namespace

bool layernorm_grad(const LayerNormGradParams &p, const LayerNormGradTensors &t, int batch,
                    Context &context) {
    if (!positive(context, "layernorm_grad", {batch, p.channels, p.rows_per_example}))
        return false;
    const long long rows = (long long)batch * p.rows_per_example;
    const body::Chunks chunks = body::choose_chunks(rows, p.channels, 2);
    float *stats = context.scratch(2 * rows + 2LL * chunks.count * p.channels);
    if (!stats)
        return false;
    float *partial = stats + 2 * rows;
    return run_blocks(body::LayerNormGradRowsKernel{p, t, batch, stats}, context) &&
           run_blocks(body::LayerNormGradWeightsKernel{{}, p, t, stats, chunks, partial},
                      context) &&
           sum_chunks(partial, p.channels, chunks.count, {t.dscale, t.doffset}, context);
}

bool activation_grad(const ActivationGradParams &p, const ActivationGradTensors &t, int batch,
                     Context &context) {
    if (!positive(context, "activation_grad", {batch, p.channels, p.rows_per_example}))
        return false;
    if (p.op != ElementwiseOp::gelu && p.op != ElementwiseOp::relu)
        return context.fail("activation_grad: the derivative of GELU or ReLU only");
    return run_blocks(body::ActivationGradKernel{{}, p, t, batch}, context);
}

bool channel_sum(const ChannelSumParams &p, const ChannelSumTensors &t, int batch,
                 Context &context) {
    if (!positive(context, "channel_sum", {batch, p.channels, p.rows_per_example}))
        return false;
    const body::Chunks chunks =
        body::choose_chunks((long long)batch * p.rows_per_example, p.channels, 1);
    float *partial = context.scratch((size_t)chunks.count * p.channels);
    return partial &&
           run_blocks(body::ChannelSumKernel{{}, p, t, chunks, partial}, context) &&
           sum_chunks(partial, p.channels, chunks.count, {t.y}, context);
}

bool linear_grad_weight(const LinearGradWeightParams &p, const LinearGradWeightTensors &t,
                        int batch, Context &context) {
    if (!positive(context, "linear_grad_weight",
                  {batch, p.in_channels, p.out_channels, p.rows_per_example}))
        return false;
    // dw [in, out] = xᵀ·dy is, column-major, dwᵀ [out × in] = dyᵀ · x.
    MatmulCall call;
    call.m = p.out_channels;
    call.n = p.in_channels;
    call.k = (long long)batch * p.rows_per_example;
    call.a = t.dy;
    call.lda = p.out_channels;
    call.b = t.x;
    call.ldb = p.in_channels;
    call.transpose_b = true;
    call.d = t.y;
    return matmul(call, context);
}

namespace {
bool conv_grad_sizes(Context &context, const char *kernel, const ConvGradParams &p, int batch) {
    if (!positive(context, kernel,
                  {batch, p.in_channels, p.out_channels, p.kernel_h, p.kernel_w, p.stride_h,
                   p.stride_w, p.groups, p.height, p.width,
                   p.height + 2 * p.pad_h - p.kernel_h + 1, p.width + 2 * p.pad_w - p.kernel_w + 1}))
        return false;
    if (p.depthwise ? p.in_channels != p.out_channels
                    : p.in_channels % p.groups || p.out_channels % p.groups)
        return context.fail(std::string(kernel) + ": the channels do not fit the groups");
    return true;
}
}  // namespace

bool conv_grad_input(const ConvGradParams &p, const ConvGradInputTensors &t, int batch,
                     Context &context) {
    return conv_grad_sizes(context, "conv_grad_input", p, batch) &&
           run_blocks(body::ConvGradInputKernel{{}, {p}, t, batch}, context);
}

bool conv_grad_filter(const ConvGradParams &p, const ConvGradFilterTensors &t, int batch,
                      Context &context) {
    if (!conv_grad_sizes(context, "conv_grad_filter", p, batch))
        return false;
    body::ConvGradFilterKernel kernel{{}, {p}, t, {}, nullptr};
    const long long outputs = (long long)batch * kernel.w.out_h() * kernel.w.out_w();
    kernel.chunks = body::choose_chunks(outputs, kernel.elements(), 1);
    kernel.partial = context.scratch((size_t)kernel.chunks.count * kernel.elements());
    return kernel.partial && run_blocks(kernel, context) &&
           sum_chunks(kernel.partial, kernel.elements(), kernel.chunks.count, {t.y}, context);
}

bool qdwconv_grad(const QDWConvGradParams &p, const QDWConvGradTensors &t, int batch,
                  Context &context) {
    if (!positive(context, "qdwconv_grad",
                  {batch, p.channels, p.kernel_h, p.kernel_w, p.height, p.width,
                   p.height + 2 * p.pad_h - p.kernel_h + 1, p.width + 2 * p.pad_w - p.kernel_w + 1}))
        return false;
    body::QDWConvGradWindow window{p, t, batch};
    const long long outputs = (long long)batch * window.out_h() * window.out_w();
    const long long taps = (long long)p.kernel_h * p.kernel_w * p.channels;
    body::QDWConvGradFilterKernel filters{{}, window, body::choose_chunks(outputs, taps, 3),
                                          nullptr};
    body::QDWConvGradBiasKernel biases{{}, window, body::choose_chunks(outputs, p.channels, 3),
                                       nullptr};
    const size_t filter_partials = 3 * (size_t)filters.chunks.count * taps;
    float *scratch =
        context.scratch(filter_partials + (p.bias ? 3 * (size_t)biases.chunks.count * p.channels : 0));
    if (!scratch)
        return false;
    filters.partial = scratch;
    biases.partial = scratch + filter_partials;
    return (!p.input_grad || run_blocks(body::QDWConvGradInputKernel{{}, window}, context)) &&
           run_blocks(filters, context) &&
           sum_chunks(filters.partial, taps, filters.chunks.count, {t.dwa, t.dwb, t.dwc},
                      context) &&
           (!p.bias ||
            (run_blocks(biases, context) &&
             sum_chunks(biases.partial, p.channels, biases.chunks.count, {t.dba, t.dbb, t.dbc},
                        context)));
}

bool avgpool_grad(const AvgPoolGradParams &p, const AvgPoolGradTensors &t, int batch,
                  Context &context) {
    if (!positive(context, "avgpool_grad", {batch, p.channels, p.height, p.width}))
        return false;
    return run_blocks(body::AvgPoolGradKernel{{}, p, t, batch}, context);
}

bool softmax_cross_entropy(const SoftmaxCrossEntropyParams &p,
                           const SoftmaxCrossEntropyTensors &t, int batch, Context &context) {
    if (!positive(context, "softmax_cross_entropy", {batch, p.classes}))
        return false;
    return run_blocks(body::SoftmaxCrossEntropyKernel{{}, p, t, batch}, context);
}

}  // namespace qdsl_cuda

#endif  // QDSL_CUDA_LAUNCH_H
