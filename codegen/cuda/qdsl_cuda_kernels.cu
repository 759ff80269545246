// The CUDA kernels on the GPU: each body of qdsl_cuda_bodies.h as one
// __global__ function (phases separated by __syncthreads), the pointwise
// layers as cuBLASLt matmuls with fused epilogues, and the context: one
// stream, device memory, CUDA graphs and event timing.
#include "qdsl_cuda.h"

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <map>
#include <tuple>
#include <vector>

namespace qdsl_cuda {

struct MatmulPlan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
};

struct ContextState {
    std::string error;
    bool ready = false;
    cudaStream_t stream = nullptr;
    cublasLtHandle_t lt = nullptr;
    void *workspace = nullptr;
    size_t workspace_bytes = size_t(32) << 20;
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t graph_exec = nullptr;
    std::vector<cudaEvent_t> events;
    size_t next_event = 0;
    bool capturing = false;
    float *scratch = nullptr;
    size_t scratch_floats = 0;
    // (m, n, k, lda, ldb, transposes, epilogue, C, precision) → plan.
    std::map<std::tuple<long long, long long, long long, long long, long long, int, int, bool, int>,
             MatmulPlan>
        plans;
};

namespace {

bool check(cudaError_t status, Context &context, const char *what) {
    if (status == cudaSuccess)
        return true;
    return context.fail(std::string(what) + ": " + cudaGetErrorString(status));
}

bool check_lt(cublasStatus_t status, Context &context, const char *what) {
    if (status == CUBLAS_STATUS_SUCCESS)
        return true;
    return context.fail(std::string(what) + " failed (cuBLAS status " +
                        std::to_string(static_cast<int>(status)) + ")");
}

template <class K> __global__ void block_kernel(K kernel) {
    extern __shared__ float shared[];
    const int phases = kernel.phases();
    for (int phase = 0; phase < phases; ++phase) {
        kernel.phase(phase, blockIdx.x, threadIdx.x, blockDim.x, shared);
        if (phase + 1 < phases)
            __syncthreads();
    }
}

}  // namespace

template <class K> bool run_blocks(const K &kernel, Context &context) {
    if (!context.error().empty())
        return false;
    const long long blocks = kernel.blocks();
    if (blocks > 0x7fffffffLL)
        return context.fail("a kernel needs more blocks than one grid holds");
    const size_t shared = kernel.shared_floats() * sizeof(float);
    // Above 48 KiB a kernel must reserve its shared memory; once per size, so
    // that the eager pass before a graph capture has done it.
    static size_t reserved = 48 * 1024;
    if (shared > reserved) {
        if (!check(cudaFuncSetAttribute(block_kernel<K>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(shared)),
                   context, "reserving shared memory"))
            return false;
        reserved = shared;
    }
    block_kernel<K><<<static_cast<unsigned>(blocks), kernel.threads(), shared,
                      context.state().stream>>>(kernel);
    return check(cudaGetLastError(), context, "launching a kernel");
}

}  // namespace qdsl_cuda

#include "qdsl_cuda_launch.h"

namespace qdsl_cuda {

namespace {

cublasComputeType_t compute_type(Precision precision) {
    switch (precision) {
    case Precision::tf32: return CUBLAS_COMPUTE_32F_FAST_TF32;
    case Precision::bf16: return CUBLAS_COMPUTE_32F_FAST_16BF;
    default: return CUBLAS_COMPUTE_32F;
    }
}

}  // namespace

// cuBLASLt's GELU is the tanh approximation: in fp32 (the exact mode) the
// matmul adds the bias and a kernel applies the exact GELU after it. The
// residual (C) is added before the epilogue's activation, which is why
// qdsl_cuda_launch.h never asks for both.
bool matmul(const MatmulCall &call, Context &context) {
    if (!context.error().empty())
        return false;
    ContextState &s = context.state();
    const bool activation_gelu = body::is(call.activation, body::Activation::Gelu);
    const bool exact_gelu = activation_gelu && context.precision == Precision::fp32;
    cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    if (activation_gelu && !exact_gelu)
        epilogue = call.bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU;
    else if (body::is(call.activation, body::Activation::Relu))
        epilogue = call.bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU;
    else if (call.bias)
        epilogue = CUBLASLT_EPILOGUE_BIAS;
    const bool residual = call.c != nullptr;
    const int transposes = (call.transpose_a ? 1 : 0) | (call.transpose_b ? 2 : 0);
    auto key = std::make_tuple(call.m, call.n, call.k, call.lda, call.ldb, transposes,
                               static_cast<int>(epilogue), residual,
                               static_cast<int>(context.precision));
    auto found = s.plans.find(key);
    if (found == s.plans.end()) {
        MatmulPlan plan;
        const cublasOperation_t op_a = call.transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N;
        const cublasOperation_t op_b = call.transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N;
        const uint64_t m = call.m, n = call.n, k = call.k;
        if (!check_lt(cublasLtMatmulDescCreate(&plan.desc, compute_type(context.precision),
                                               CUDA_R_32F),
                      context, "cublasLtMatmulDescCreate") ||
            !check_lt(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_EPILOGUE,
                                                     &epilogue, sizeof(epilogue)),
                      context, "setting the matmul epilogue") ||
            !check_lt(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_TRANSA,
                                                     &op_a, sizeof(op_a)),
                      context, "setting the matmul's transpose of A") ||
            !check_lt(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_TRANSB,
                                                     &op_b, sizeof(op_b)),
                      context, "setting the matmul's transpose of B") ||
            !check_lt(cublasLtMatrixLayoutCreate(&plan.a, CUDA_R_32F, call.transpose_a ? k : m,
                                                 call.transpose_a ? m : k, call.lda),
                      context, "cublasLtMatrixLayoutCreate") ||
            !check_lt(cublasLtMatrixLayoutCreate(&plan.b, CUDA_R_32F, call.transpose_b ? n : k,
                                                 call.transpose_b ? k : n, call.ldb),
                      context, "cublasLtMatrixLayoutCreate") ||
            !check_lt(cublasLtMatrixLayoutCreate(&plan.c, CUDA_R_32F, m, n, m), context,
                      "cublasLtMatrixLayoutCreate"))
            return false;
        // The bias pointer is part of the heuristic's question.
        const void *any_bias = call.bias;
        if (call.bias)
            cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                           &any_bias, sizeof(any_bias));
        cublasLtMatmulPreference_t preference = nullptr;
        cublasLtMatmulHeuristicResult_t result{};
        int found_algos = 0;
        bool ok = check_lt(cublasLtMatmulPreferenceCreate(&preference), context,
                           "cublasLtMatmulPreferenceCreate") &&
                  check_lt(cublasLtMatmulPreferenceSetAttribute(
                               preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                               &s.workspace_bytes, sizeof(s.workspace_bytes)),
                           context, "setting the matmul workspace");
        // Activations sit in the arena at 64-byte alignment (ArenaPlanner.h),
        // not the 256 the heuristic assumes unless told.
        const uint32_t alignment = 64;
        for (cublasLtMatmulPreferenceAttributes_t attribute :
             {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
              CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
            ok = ok && check_lt(cublasLtMatmulPreferenceSetAttribute(preference, attribute,
                                                                     &alignment, sizeof(alignment)),
                                context, "setting the matmul's alignment");
        cublasStatus_t heuristic =
            ok ? cublasLtMatmulAlgoGetHeuristic(s.lt, plan.desc, plan.a, plan.b, plan.c, plan.c,
                                                preference, 1, &result, &found_algos)
               : CUBLAS_STATUS_SUCCESS;
        if (preference)
            cublasLtMatmulPreferenceDestroy(preference);
        if (heuristic == CUBLAS_STATUS_NOT_SUPPORTED)
            found_algos = 0;
        else if (ok)
            ok = check_lt(heuristic, context, "cublasLtMatmulAlgoGetHeuristic");
        if (!ok || found_algos == 0) {
            cublasLtMatrixLayoutDestroy(plan.a);
            cublasLtMatrixLayoutDestroy(plan.b);
            cublasLtMatrixLayoutDestroy(plan.c);
            cublasLtMatmulDescDestroy(plan.desc);
        }
        if (!ok)
            return false;
        if (found_algos == 0)
            return context.fail("cuBLASLt has no algorithm for a " + std::to_string(m) + "×" +
                                std::to_string(k) + " by " + std::to_string(k) + "×" +
                                std::to_string(n) + " matmul at precision " +
                                precision_name(context.precision));
        plan.algo = result.algo;
        found = s.plans.emplace(key, plan).first;
    }
    MatmulPlan &plan = found->second;
    if (call.bias) {
        const void *bias = call.bias;
        if (!check_lt(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                     &bias, sizeof(bias)),
                      context, "setting the matmul bias"))
            return false;
    }
    const float one = 1.0f, zero = 0.0f;
    if (!check_lt(cublasLtMatmul(s.lt, plan.desc, &one, call.a, plan.a, call.b, plan.b,
                                 residual ? &one : &zero, residual ? call.c : call.d, plan.c,
                                 call.d, plan.c, &plan.algo, s.workspace, s.workspace_bytes,
                                 s.stream),
                  context, "cublasLtMatmul"))
        return false;
    if (!exact_gelu)
        return true;
    ElementwiseParams gelu;
    gelu.op = ElementwiseOp::gelu;
    gelu.channels = static_cast<int>(call.m);
    gelu.rows_per_example = call.n;
    ElementwiseTensors tensors;
    tensors.x = call.d;
    tensors.y = call.d;
    return run_blocks(body::ElementwiseKernel{gelu, tensors, 1}, context);
}

float *Context::scratch(size_t floats) {
    ContextState &s = *impl;
    if (s.scratch_floats >= floats)
        return s.scratch;
    if (s.capturing) {
        fail("a kernel needs more scratch memory during a CUDA graph capture");
        return nullptr;
    }
    if (!synchronize())
        return nullptr;
    release(s.scratch);
    s.scratch = static_cast<float *>(allocate(floats * sizeof(float)));
    s.scratch_floats = s.scratch ? floats : 0;
    return s.scratch;
}

bool select_device(int index, std::string &error) {
    int devices = 0;
    cudaError_t status = cudaGetDeviceCount(&devices);
    if (status != cudaSuccess || devices == 0) {
        error = "no CUDA device (cudaGetDeviceCount: " +
                std::string(status != cudaSuccess ? cudaGetErrorString(status) : "none") + ")";
        return false;
    }
    status = cudaSetDevice(index % devices);
    if (status != cudaSuccess) {
        error = "cannot use CUDA device " + std::to_string(index % devices) + ": " +
                cudaGetErrorString(status);
        return false;
    }
    return true;
}

void *Context::native_stream() { return impl->stream; }

Context::Context() : impl(new ContextState) {
    ContextState &s = *impl;
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
        s.error = "no CUDA device (cudaGetDeviceCount found none)";
        return;
    }
    if (!check(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking), *this,
               "creating a stream") ||
        !check_lt(cublasLtCreate(&s.lt), *this, "cublasLtCreate") ||
        !check(cudaMalloc(&s.workspace, s.workspace_bytes), *this,
               "allocating the cuBLASLt workspace"))
        return;
    s.ready = true;
}

Context::~Context() {
    ContextState &s = *impl;
    drop_graph();
    for (auto &[key, plan] : s.plans) {
        cublasLtMatrixLayoutDestroy(plan.a);
        cublasLtMatrixLayoutDestroy(plan.b);
        cublasLtMatrixLayoutDestroy(plan.c);
        cublasLtMatmulDescDestroy(plan.desc);
    }
    for (cudaEvent_t event : s.events)
        cudaEventDestroy(event);
    if (s.scratch)
        cudaFree(s.scratch);
    if (s.workspace)
        cudaFree(s.workspace);
    if (s.lt)
        cublasLtDestroy(s.lt);
    if (s.stream)
        cudaStreamDestroy(s.stream);
}

bool Context::ok() const { return impl->ready && impl->error.empty(); }
const std::string &Context::error() const { return impl->error; }

void *Context::allocate(size_t bytes) {
    void *memory = nullptr;
    if (!check(cudaMalloc(&memory, bytes ? bytes : 1), *this,
               ("allocating " + std::to_string(bytes) + " bytes of device memory").c_str()))
        return nullptr;
    return memory;
}
void Context::release(void *memory) {
    if (memory)
        cudaFree(memory);
}
void *Context::allocate_host(size_t bytes) {
    void *memory = nullptr;
    if (!check(cudaMallocHost(&memory, bytes ? bytes : 1), *this, "allocating pinned memory"))
        return nullptr;
    return memory;
}
void Context::release_host(void *memory) {
    if (memory)
        cudaFreeHost(memory);
}
bool Context::copy_to_device(void *device, const void *host, size_t bytes) {
    return ok() && check(cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice,
                                         impl->stream),
                         *this, "copying to the device");
}
bool Context::copy_to_host(void *host, const void *device, size_t bytes) {
    return ok() && check(cudaMemcpyAsync(host, device, bytes, cudaMemcpyDeviceToHost,
                                         impl->stream),
                         *this, "copying from the device");
}
bool Context::synchronize() {
    return ok() && check(cudaStreamSynchronize(impl->stream), *this, "running the kernels");
}

bool Context::can_capture() const { return true; }
bool Context::begin_capture() {
    drop_graph();
    impl->capturing = ok() && check(cudaStreamBeginCapture(impl->stream,
                                                           cudaStreamCaptureModeThreadLocal),
                                    *this, "starting a CUDA graph capture");
    return impl->capturing;
}
bool Context::end_capture() {
    ContextState &s = *impl;
    // Called after a failed launch too, so that the stream leaves capture
    // mode; a partial graph is dropped.
    cudaError_t ended = cudaStreamEndCapture(s.stream, &s.graph);
    s.capturing = false;
    if (!ok() || !check(ended, *this, "ending the CUDA graph capture")) {
        drop_graph();
        return false;
    }
    return check(cudaGraphInstantiate(&s.graph_exec, s.graph, 0), *this,
                 "instantiating the CUDA graph");
}
bool Context::replay() {
    return ok() && has_graph() &&
           check(cudaGraphLaunch(impl->graph_exec, impl->stream), *this,
                 "launching the CUDA graph");
}
bool Context::has_graph() const { return impl->graph_exec != nullptr; }
void Context::drop_graph() {
    if (impl->graph_exec)
        cudaGraphExecDestroy(impl->graph_exec);
    if (impl->graph)
        cudaGraphDestroy(impl->graph);
    impl->graph_exec = nullptr;
    impl->graph = nullptr;
}

int Context::mark() {
    ContextState &s = *impl;
    if (s.next_event == s.events.size()) {
        cudaEvent_t event;
        if (!check(cudaEventCreate(&event), *this, "creating an event"))
            return -1;
        s.events.push_back(event);
    }
    cudaEvent_t event = s.events[s.next_event];
    if (!check(cudaEventRecord(event, s.stream), *this, "recording an event"))
        return -1;
    return static_cast<int>(s.next_event++);
}
double Context::seconds_between(int first, int second) {
    float ms = 0;
    if (first < 0 || second < 0 ||
        cudaEventElapsedTime(&ms, impl->events.at(first), impl->events.at(second)) != cudaSuccess)
        return 0;
    return ms / 1000.0;
}
void Context::clear_marks() { impl->next_event = 0; }

}  // namespace qdsl_cuda
