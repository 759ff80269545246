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

/// A pointwise layer as one matmul: y = act(x·w + bias) [+ residual], x
/// [rows, in_channels] and w [in_channels, out_channels] row-major.
struct MatmulCall {
    long long rows = 0;
    int in_channels = 0, out_channels = 0, activation = 0;
    const float *x = nullptr, *w = nullptr, *bias = nullptr, *residual = nullptr;
    float *y = nullptr;
    /// The layer as called, for an implementation that runs it as a kernel.
    PointwiseParams params;
    PointwiseTensors tensors;
    int batch = 0;
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
    const bool as_matmul = !p.norm && !p.quadratic && (p.activation == 0 || !p.scale_residual);
    if (!as_matmul)
        return run_blocks(body::PointwiseKernel{p, t, batch, false}, context);
    if (p.scale_residual && (!t.w_scaled || (p.bias && !t.bias_scaled)))
        return context.fail("pointwise: a layer-scaled matmul needs its folded weights");
    MatmulCall call;
    call.rows = (long long)batch * p.rows_per_example;
    call.in_channels = p.in_channels;
    call.out_channels = p.out_channels;
    call.x = t.x;
    call.w = p.scale_residual ? t.w_scaled : t.w;
    call.bias = !p.bias ? nullptr : p.scale_residual ? t.bias_scaled : t.bias;
    call.residual = p.scale_residual ? t.residual : nullptr;
    call.activation = p.activation;
    call.y = t.y;
    call.params = p;
    call.tensors = t;
    call.batch = batch;
    return matmul(call, context);
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

}  // namespace qdsl_cuda

#endif  // QDSL_CUDA_LAUNCH_H
