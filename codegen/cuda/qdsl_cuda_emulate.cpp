// The CUDA kernels run on the CPU: every block's threads one after another,
// phase by phase, over the same bodies as the GPU (qdsl_cuda_bodies.h);
// device memory is host memory and the matmul a loop with cuBLASLt's
// arguments and epilogue (on the layer-scaled weights the GPU's reads). Built when a project is configured
// with -DQDSL_CUDA_EMULATE=ON: it checks a CUDA project's arithmetic, tensor
// by tensor as model_kernels.cpp passes them, on a machine without a GPU. It
// is a test of the generated code, not a way to run models (it is slow).
#include "qdsl_cuda.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace qdsl_cuda {

struct ContextState {
    std::string error;
    std::vector<std::chrono::steady_clock::time_point> marks;
    std::vector<float> scratch;
};

template <class K> bool run_blocks(const K &kernel, Context &context) {
    if (!context.error().empty())
        return false;
    std::vector<float> shared(kernel.shared_floats());
    const int threads = kernel.threads();
    for (long long block = 0; block < kernel.blocks(); ++block)
        for (int phase = 0; phase < kernel.phases(); ++phase)
            for (int thread = 0; thread < threads; ++thread)
                kernel.phase(phase, block, thread, threads, shared.data());
    return true;
}

}  // namespace qdsl_cuda

#include "qdsl_cuda_launch.h"

namespace qdsl_cuda {

namespace {

// What the tensor cores read of a float32 input: its mantissa rounded (to
// nearest, ties to even) to `kept` bits — 10 for tf32, 7 for bf16.
float round_mantissa(float x, int kept) {
    uint32_t u;
    std::memcpy(&u, &x, sizeof u);
    if ((u & 0x7f800000u) == 0x7f800000u)
        return x;  // inf, NaN
    const int dropped = 23 - kept;
    const uint32_t lowest_kept = (u >> dropped) & 1u;
    u += ((1u << (dropped - 1)) - 1u) + lowest_kept;
    u &= ~((1u << dropped) - 1u);
    std::memcpy(&x, &u, sizeof x);
    return x;
}

// cuBLASLt's GELU epilogue (the reduced precisions' path): the tanh form.
float gelu_tanh(float v) {
    return 0.5f * v * (1.0f + std::tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));
}

}  // namespace

// The matmul as cuBLASLt computes it in each precision: fp32 exactly;
// tf32 and bf16 with the inputs rounded as the tensor cores read them,
// float32 accumulation, and the tanh GELU of the epilogue.
bool matmul(const MatmulCall &call, Context &context) {
    if (!context.error().empty())
        return false;
    const int kept = context.precision == Precision::tf32   ? 10
                     : context.precision == Precision::bf16 ? 7
                                                            : 23;
    auto input = [kept](float x) { return kept < 23 ? round_mantissa(x, kept) : x; };
    for (long long j = 0; j < call.n; ++j)
        for (long long i = 0; i < call.m; ++i) {
            float sum = 0.0f;
            for (long long l = 0; l < call.k; ++l)
                sum += input(call.transpose_a ? call.a[l + i * call.lda]
                                              : call.a[i + l * call.lda]) *
                       input(call.transpose_b ? call.b[j + l * call.ldb]
                                              : call.b[l + j * call.ldb]);
            const size_t at = static_cast<size_t>(i + j * call.m);
            if (call.c)
                sum += call.c[at];
            if (call.bias)
                sum += call.bias[i];
            call.d[at] = kept < 23 && body::is(call.activation, body::Activation::Gelu)
                             ? gelu_tanh(sum)
                             : body::activate(call.activation, sum);
        }
    return true;
}

float *Context::scratch(size_t floats) {
    if (impl->scratch.size() < floats)
        impl->scratch.resize(floats, std::numeric_limits<float>::quiet_NaN());
    return impl->scratch.data();
}

Context::Context() : impl(new ContextState) {}
Context::~Context() = default;
bool select_device(int, std::string &) { return true; }
void *Context::native_stream() { return nullptr; }
bool Context::ok() const { return impl->error.empty(); }
const std::string &Context::error() const { return impl->error; }
// Device memory starts as NaN here (the GPU's starts as whatever was there):
// a kernel that reads what nothing wrote poisons the outputs the tests check.
void *Context::allocate(size_t bytes) {
    void *memory = std::malloc(bytes ? bytes : 1);
    if (!memory) {
        fail("out of memory allocating " + std::to_string(bytes) + " bytes");
        return nullptr;
    }
    std::fill_n(static_cast<float *>(memory), bytes / sizeof(float),
                std::numeric_limits<float>::quiet_NaN());
    return memory;
}
void Context::release(void *memory) { std::free(memory); }
void *Context::allocate_host(size_t bytes) { return allocate(bytes); }
void Context::release_host(void *memory) { std::free(memory); }
bool Context::copy_to_device(void *device, const void *host, size_t bytes) {
    std::memcpy(device, host, bytes);
    return ok();
}
bool Context::copy_to_host(void *host, const void *device, size_t bytes) {
    std::memcpy(host, device, bytes);
    return ok();
}
bool Context::synchronize() { return ok(); }
bool Context::can_capture() const { return false; }
bool Context::begin_capture() { return ok(); }
bool Context::end_capture() { return ok(); }
bool Context::replay() { return fail("the CPU emulation records no graphs"); }
bool Context::has_graph() const { return false; }
void Context::drop_graph() {}
int Context::mark() {
    impl->marks.push_back(std::chrono::steady_clock::now());
    return static_cast<int>(impl->marks.size()) - 1;
}
double Context::seconds_between(int first, int second) {
    return std::chrono::duration<double>(impl->marks.at(second) - impl->marks.at(first)).count();
}
void Context::clear_marks() { impl->marks.clear(); }

}  // namespace qdsl_cuda
