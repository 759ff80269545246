// The kernels of qdsl's CUDA back end, as the generated model_kernels.cpp
// calls them (codegen/KernelFamilies.cpp: the implementation table names
// each function's parameter and tensor structs).
//
// Every kernel takes a parameter struct whose fields are named as the
// parameters qdsl's describers give it (codegen/KernelCalls.cpp, the same
// names for both back ends: docs/CONTRACTS.md), a struct of named tensors,
// the batch and the context it runs in. Activations are NHWC float32, weights
// as qdsl lays them out (docs/WEIGHTS.md).
//
// Two implementations: qdsl_cuda_kernels.cu on the GPU (nvcc, cuBLASLt), and
// qdsl_cuda_emulate.cpp, which runs the same kernel bodies
// (qdsl_cuda_bodies.h) in loops on the CPU so that a project's arithmetic can
// be checked against qdsl's reference executor on a machine without a GPU.
// This header is plain C++17: model_kernels.cpp and qdsl_cuda_model.cpp are
// compiled by the host compiler in both builds.
#ifndef QDSL_CUDA_H
#define QDSL_CUDA_H

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace qdsl_cuda {

/// How the pointwise layers (matmuls) multiply. Everything else is float32.
enum class Precision {
    /// float32 multiplies, the exact GELU: what the tests compare.
    fp32,
    /// TF32 tensor cores, float32 accumulation.
    tf32,
    /// bf16 tensor cores, float32 accumulation and storage.
    bf16,
};
/// "fp32", "tf32", "bf16"; false for another name.
bool parse_precision(const std::string &name, Precision &precision);
const char *precision_name(Precision precision);

struct ContextState;

/// Makes device `index` (modulo the devices there are) the one this
/// process's Contexts use: one process per GPU in a data-parallel job.
/// Call before creating a Context. The emulation has one device.
bool select_device(int index, std::string &error);

/// One stream, the cuBLASLt handle and workspace, the precision, and the
/// first error a kernel reported.
class Context {
public:
    Context();
    ~Context();
    Context(const Context &) = delete;
    Context &operator=(const Context &) = delete;

    /// False (with error()) when no device could be set up.
    bool ok() const;
    const std::string &error() const;

    Precision precision = Precision::fp32;

    /// Device memory; null with error() set when it runs out.
    void *allocate(size_t bytes);
    void release(void *memory);
    /// Host memory the device copies from and to without staging (pinned).
    void *allocate_host(size_t bytes);
    void release_host(void *memory);
    /// Copies on the context's stream, in order with the kernels.
    bool copy_to_device(void *device, const void *host, size_t bytes);
    bool copy_to_host(void *host, const void *device, size_t bytes);
    /// Waits for everything queued; false with error() on a kernel's fault.
    bool synchronize();

    /// Records the work queued from now until end_capture as one graph
    /// (CUDA graphs), which replay() runs again. The emulation runs eagerly
    /// and records nothing.
    bool can_capture() const;
    bool begin_capture();
    bool end_capture();
    bool replay();
    bool has_graph() const;
    void drop_graph();

    /// Marks a timed interval on the stream; seconds between two marks
    /// after synchronize().
    int mark();
    double seconds_between(int first, int second);
    void clear_marks();

    /// Device memory for a kernel's intermediate values, at least `floats`
    /// long, kept for the next kernels (grown only outside a graph capture).
    float *scratch(size_t floats);

    /// Sets error() unless one is set (kernels report invalid parameters
    /// here); returns false.
    bool fail(const std::string &message);
    /// Puts `prefix` before the error (to name the kernel that failed).
    void prefix_error(const std::string &prefix);

    ContextState &state() { return *impl; }
    /// The stream as the CUDA runtime's cudaStream_t (for NCCL); null in
    /// the emulation.
    void *native_stream();

private:
    std::unique_ptr<ContextState> impl;
};

// --- Kernels. Each returns false with the context's error set.

/// [layer norm] (quadratic) depthwise convolution [+ biases] [layer scale and
/// residual]: families ln_qdwconv_scale_residual, ln_dwconv_scale_residual,
/// qdwconv, dwconv. One block per tile of output pixels; the layer norm's
/// statistics of the tile's input window go to shared memory first.
struct DepthwiseParams {
    int channels = 0, kernel_h = 0, kernel_w = 0, stride_h = 1, stride_w = 1, pad_h = 0,
        pad_w = 0, height = 0, width = 0;
    bool norm = false, quadratic = false, bias = false, scale_residual = false;
    /// The filter turned by 180° (a stride-1 depthwise input gradient).
    bool flip_filter = false;
    float eps = 1e-6f;
};
struct DepthwiseTensors {
    const float *x = nullptr, *ln_scale = nullptr, *ln_offset = nullptr;
    /// The quadratic convolution's three filters and biases; a plain one
    /// uses wa and ba.
    const float *wa = nullptr, *wb = nullptr, *wc = nullptr;
    const float *ba = nullptr, *bb = nullptr, *bc = nullptr;
    const float *gamma = nullptr, *residual = nullptr;
    float *y = nullptr;
};
bool depthwise(const DepthwiseParams &p, const DepthwiseTensors &t, int batch, Context &context);

/// [layer norm] linear or quadratic linear [activation] [layer scale and
/// residual] over rows of `in_channels`: families pwconv_gelu,
/// pwconv_scale_residual, linear, qlinear, ln_pwconv_gelu. A linear layer
/// without a layer norm is one cuBLASLt matmul whose epilogue adds the bias
/// and applies the activation; with a layer scale its weights and bias come
/// folded (w_scaled = w·diag(γ), bias_scaled = γ⊙b: qdsl_cuda_model.cpp) and
/// the residual is the matmul's C operand. Others run a direct kernel.
struct PointwiseParams {
    int in_channels = 0, out_channels = 0, activation = 0;
    /// The gradient of a linear layer's input: w is read transposed (w is
    /// [out_channels, in_channels]) and the result multiplied by the
    /// derivative of `activation_grad` at `pre`.
    bool weight_transposed = false;
    int activation_grad = 0;
    bool norm = false, quadratic = false, bias = false, scale_residual = false;
    float eps = 1e-6f;
    /// Halide's register blocking and size hint; unused here.
    int panel = 0, rows = 0;
    /// Activation rows per example (height × width).
    int64_t rows_per_example = 1;
};
struct PointwiseTensors {
    const float *x = nullptr, *ln_scale = nullptr, *ln_offset = nullptr;
    const float *w = nullptr, *wb = nullptr, *wc = nullptr;
    const float *bias = nullptr, *bb = nullptr, *bc = nullptr;
    const float *gamma = nullptr, *residual = nullptr;
    /// With scale_residual: w and bias with the layer scale folded in.
    const float *w_scaled = nullptr, *bias_scaled = nullptr;
    /// With activation_grad: the activation's input.
    const float *pre = nullptr;
    float *y = nullptr;
};
bool pointwise(const PointwiseParams &p, const PointwiseTensors &t, int batch, Context &context);

/// [layer norm] convolution [layer norm]: the stem (conv_ln), downsampling
/// (ln_conv), conv2d. One block per output pixel: the normalised input patch
/// in shared memory, one output channel per thread, then the output's layer
/// norm.
struct ConvParams {
    int in_channels = 0, out_channels = 0, kernel_h = 0, kernel_w = 0, stride_h = 1,
        stride_w = 1, pad_h = 0, pad_w = 0, groups = 1, height = 0, width = 0;
    bool bias = false, norm_input = false, norm_output = false;
    float eps_input = 1e-6f, eps_output = 1e-6f;
};
struct ConvTensors {
    const float *x = nullptr, *in_scale = nullptr, *in_offset = nullptr;
    const float *filter = nullptr, *bias = nullptr;
    const float *out_scale = nullptr, *out_offset = nullptr;
    float *y = nullptr;
};
/// The largest input patch (kernel_h × kernel_w × in_channels / groups) the
/// conv kernel holds in shared memory.
inline constexpr int kMaxConvPatch = 8192;
bool conv(const ConvParams &p, const ConvTensors &t, int batch, Context &context);

/// Global average pool, layer norm, linear classifier (pool_ln_linear): one
/// block per example.
struct HeadParams {
    int channels = 0, classes = 0;
    bool bias = false;
    float eps = 1e-6f;
    int64_t pixels = 1;
};
struct HeadTensors {
    const float *x = nullptr, *ln_scale = nullptr, *ln_offset = nullptr, *w = nullptr,
                *bias = nullptr;
    float *y = nullptr;
};
inline constexpr int kMaxHeadChannels = 8192;
bool head(const HeadParams &p, const HeadTensors &t, int batch, Context &context);

/// Global average pool alone.
struct AvgPoolParams {
    int channels = 0;
    int64_t pixels = 1;
};
struct AvgPoolTensors {
    const float *x = nullptr;
    float *y = nullptr;
};
bool avgpool(const AvgPoolParams &p, const AvgPoolTensors &t, int batch, Context &context);

/// One op over rows of `channels`: a layer norm (one warp per row), or an
/// activation, layer scale, sum or product per element.
enum class ElementwiseOp { layernorm, gelu, relu, layerscale, add, mul };
struct ElementwiseParams {
    ElementwiseOp op = ElementwiseOp::gelu;
    int channels = 0;
    float eps = 1e-6f;
    /// Rows per example (every leading dimension but the batch).
    int64_t rows_per_example = 1;
};
struct ElementwiseTensors {
    const float *x = nullptr, *other = nullptr, *scale = nullptr, *offset = nullptr;
    float *y = nullptr;
};
bool elementwise(const ElementwiseParams &p, const ElementwiseTensors &t, int batch,
                 Context &context);

// --- The backward pass of a training step. Gradients of weights are sums
// over the batch and the pixels: one thread per weight element sums them in a
// fixed order, so a step is deterministic.

/// A layer norm's gradient: dx per row (one warp each, as the forward), then
/// dscale and doffset per channel from the row statistics the first kernel
/// leaves in the context's scratch memory.
struct LayerNormGradParams {
    int channels = 0;
    float eps = 1e-6f;
    int64_t rows_per_example = 1;
};
struct LayerNormGradTensors {
    const float *x = nullptr, *scale = nullptr, *dy = nullptr;
    float *dx = nullptr, *dscale = nullptr, *doffset = nullptr;
};
bool layernorm_grad(const LayerNormGradParams &p, const LayerNormGradTensors &t, int batch,
                    Context &context);

/// dy times the derivative of GELU or ReLU at x.
struct ActivationGradParams {
    ElementwiseOp op = ElementwiseOp::gelu;
    int channels = 0;
    int64_t rows_per_example = 1;
};
struct ActivationGradTensors {
    const float *x = nullptr, *dy = nullptr;
    float *y = nullptr;
};
bool activation_grad(const ActivationGradParams &p, const ActivationGradTensors &t, int batch,
                     Context &context);

/// The sum over every row of each channel (a bias gradient).
struct ChannelSumParams {
    int channels = 0;
    int64_t rows_per_example = 1;
};
struct ChannelSumTensors {
    const float *x = nullptr;
    float *y = nullptr;
};
bool channel_sum(const ChannelSumParams &p, const ChannelSumTensors &t, int batch,
                 Context &context);

/// dw = xᵀ·dy over every row: a matmul on the GPU.
struct LinearGradWeightParams {
    int in_channels = 0, out_channels = 0;
    int64_t rows_per_example = 1;
};
struct LinearGradWeightTensors {
    const float *x = nullptr, *dy = nullptr;
    float *y = nullptr;
};
bool linear_grad_weight(const LinearGradWeightParams &p, const LinearGradWeightTensors &t,
                        int batch, Context &context);

/// A convolution's input or filter gradient, dense in groups or depthwise;
/// height and width are the forward input's.
struct ConvGradParams {
    bool depthwise = false;
    int groups = 1, in_channels = 0, out_channels = 0, kernel_h = 0, kernel_w = 0,
        stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, height = 0, width = 0;
};
struct ConvGradInputTensors {
    const float *dy = nullptr, *filter = nullptr;
    float *y = nullptr;
};
struct ConvGradFilterTensors {
    const float *x = nullptr, *dy = nullptr;
    float *y = nullptr;
};
bool conv_grad_input(const ConvGradParams &p, const ConvGradInputTensors &t, int batch,
                     Context &context);
bool conv_grad_filter(const ConvGradParams &p, const ConvGradFilterTensors &t, int batch,
                      Context &context);

/// A stride-1 quadratic depthwise convolution's whole backward pass: with
/// y = xa⊙xb + xc, the branch gradients dy⊙xb, dy⊙xa and dy give dx (with
/// input_grad), the three filter gradients and (with bias) the three bias
/// gradients.
struct QDWConvGradParams {
    int channels = 0, kernel_h = 0, kernel_w = 0, pad_h = 0, pad_w = 0, height = 0, width = 0;
    bool bias = false, input_grad = false;
};
struct QDWConvGradTensors {
    const float *x = nullptr, *dy = nullptr, *xa = nullptr, *xb = nullptr;
    const float *wa = nullptr, *wb = nullptr, *wc = nullptr;
    float *dx = nullptr, *dwa = nullptr, *dwb = nullptr, *dwc = nullptr;
    float *dba = nullptr, *dbb = nullptr, *dbc = nullptr;
};
bool qdwconv_grad(const QDWConvGradParams &p, const QDWConvGradTensors &t, int batch,
                  Context &context);

/// The global average pool's gradient: dy / (height × width) at every pixel.
struct AvgPoolGradParams {
    int channels = 0, height = 0, width = 0;
};
struct AvgPoolGradTensors {
    const float *dy = nullptr;
    float *y = nullptr;
};
bool avgpool_grad(const AvgPoolGradParams &p, const AvgPoolGradTensors &t, int batch,
                  Context &context);

/// Softmax cross-entropy with label smoothing: the mean loss (a scalar), or
/// (gradient) its gradient for the logits. Labels are checked on the host.
struct SoftmaxCrossEntropyParams {
    int classes = 0;
    float smoothing = 0;
    bool gradient = false;
};
struct SoftmaxCrossEntropyTensors {
    const float *logits = nullptr;
    const int32_t *labels = nullptr;
    float *y = nullptr;
};
bool softmax_cross_entropy(const SoftmaxCrossEntropyParams &p,
                           const SoftmaxCrossEntropyTensors &t, int batch, Context &context);

}  // namespace qdsl_cuda

#endif  // QDSL_CUDA_H
