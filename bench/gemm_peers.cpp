// What a user would otherwise run for QuadraNet's pointwise layers, on the
// same shapes as qdsl's kernels (bench/run_benchmarks.py builds and runs
// this; it prints one JSON line per shape):
//
//   * OpenBLAS sgemm: the bare product rows × C_in by C_in × C_out, no bias,
//     activation or residual (those would be further passes over memory);
//   * oneDNN's 1×1 convolution on the NHWC tensor with its fused
//     post-operations: bias and exact GELU for the expanding layer, bias and
//     the residual sum for the contracting one (the layer scale folded into
//     the weights). Neither peer fuses the layer norm before the layer.
//
//   gemm_peers THREADS REPEAT BATCH HW C_IN C_OUT KIND   (KIND: gelu | residual)
//
// OpenBLAS is called through its CBLAS entry point, declared here, so that
// the program links whichever libopenblas.so.0 the library path selects
// (the OpenMP flavour, as for the PyTorch peer).
#include <dnnl.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

extern "C" {
enum { kRowMajor = 101, kNoTrans = 111 };
void cblas_sgemm(int order, int trans_a, int trans_b, int m, int n, int k, float alpha,
                 const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);
void openblas_set_num_threads(int threads);
char *openblas_get_config(void);
}

namespace {

// The fastest of `repeat` timed calls of `body`, each after an untimed
// `prepare`.
double bestSeconds(int repeat, const std::function<void()> &body,
                   const std::function<void()> &prepare = [] {}) {
    prepare();
    body();  // warm-up: first-touch of the output, primitive caches
    double best = 1e30;
    for (int i = 0; i < repeat; ++i) {
        prepare();
        auto start = std::chrono::steady_clock::now();
        body();
        best = std::min(best, std::chrono::duration<double>(
                                  std::chrono::steady_clock::now() - start).count());
    }
    return best;
}

std::vector<float> randomValues(size_t count, float scale, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-scale, scale);
    std::vector<float> v(count);
    for (float &x : v)
        x = u(rng);
    return v;
}

double oneDnnSeconds(int repeat, int batch, int hw, int cin, int cout, bool gelu,
                     const std::vector<float> &x, const std::vector<float> &w,
                     const std::vector<float> &bias, const std::vector<float> &residual) {
    using namespace dnnl;
    using tag = memory::format_tag;
    using dt = memory::data_type;
    engine eng(engine::kind::cpu, 0);
    stream strm(eng);
    memory::desc src({batch, cin, hw, hw}, dt::f32, tag::nhwc);
    memory::desc dst({batch, cout, hw, hw}, dt::f32, tag::nhwc);
    memory::desc weightsAny({cout, cin, 1, 1}, dt::f32, tag::any);
    memory::desc biasDesc({cout}, dt::f32, tag::a);
    convolution_forward::desc conv(prop_kind::forward_inference, algorithm::convolution_direct,
                                   src, weightsAny, biasDesc, dst, {1, 1}, {0, 0}, {0, 0});
    post_ops ops;
    if (gelu)
        ops.append_eltwise(1.0f, algorithm::eltwise_gelu_erf, 0.0f, 0.0f);
    else
        ops.append_sum(1.0f);
    primitive_attr attr;
    attr.set_post_ops(ops);
    convolution_forward::primitive_desc pd(conv, attr, eng);

    // Weights arrive as qdsl keeps them, [C_in, C_out]; oneDNN's plain
    // layout is OIHW, reordered once into the primitive's own.
    std::vector<float> oihw(size_t(cout) * cin);
    for (int i = 0; i < cin; ++i)
        for (int o = 0; o < cout; ++o)
            oihw[size_t(o) * cin + i] = w[size_t(i) * cout + o];
    memory plainWeights({{cout, cin, 1, 1}, dt::f32, tag::oihw}, eng, oihw.data());
    memory weights(pd.weights_desc(), eng);
    reorder(plainWeights, weights).execute(strm, plainWeights, weights);
    memory srcMem(src, eng, const_cast<float *>(x.data()));
    memory biasMem(biasDesc, eng, const_cast<float *>(bias.data()));
    std::vector<float> out(size_t(batch) * hw * hw * cout);
    memory dstMem(dst, eng, out.data());
    convolution_forward prim(pd);
    // The sum post-operation adds what dst holds: the residual, put there
    // untimed (in a network the layer would write over the residual stream
    // in place).
    auto residualInDst = [&] {
        if (!gelu)
            std::memcpy(out.data(), residual.data(), out.size() * sizeof(float));
    };
    auto once = [&] {
        prim.execute(strm, {{DNNL_ARG_SRC, srcMem}, {DNNL_ARG_WEIGHTS, weights},
                            {DNNL_ARG_BIAS, biasMem}, {DNNL_ARG_DST, dstMem}});
        strm.wait();
    };
    return bestSeconds(repeat, once, residualInDst);
}

}  // namespace

int main(int argc, char **argv) {
    if (argc != 8) {
        std::fprintf(stderr,
                     "usage: gemm_peers THREADS REPEAT BATCH HW C_IN C_OUT gelu|residual\n");
        return 2;
    }
    const char *names[] = {"THREADS", "REPEAT", "BATCH", "HW", "C_IN", "C_OUT"};
    const long limits[] = {256, 100000, 4096, 4096, 65536, 65536};
    long values[6];
    for (int i = 0; i < 6; ++i) {
        char *end = nullptr;
        values[i] = std::strtol(argv[i + 1], &end, 10);
        if (end == argv[i + 1] || *end != '\0' || values[i] < 1 || values[i] > limits[i]) {
            std::fprintf(stderr, "gemm_peers: %s is '%s'; expected an integer from 1 to %ld\n",
                         names[i], argv[i + 1], limits[i]);
            return 2;
        }
    }
    const int threads = int(values[0]), repeat = int(values[1]), batch = int(values[2]);
    const int hw = int(values[3]), cin = int(values[4]), cout = int(values[5]);
    const std::string kind = argv[7];
    if (kind != "gelu" && kind != "residual") {
        std::fprintf(stderr, "gemm_peers: KIND is '%s'; expected gelu or residual\n", argv[7]);
        return 2;
    }
    // Tensors of more than 2^31 floats are beyond what this comparison needs.
    if (double(batch) * hw * hw * std::max(cin, cout) > 2147483647.0) {
        std::fprintf(stderr, "gemm_peers: BATCH·HW²·C of %d·%d²·%d is over 2^31 values\n",
                     batch, hw, std::max(cin, cout));
        return 2;
    }
    const int rows = batch * hw * hw;
    std::vector<float> x = randomValues(size_t(rows) * cin, 1.0f, 1);
    std::vector<float> w = randomValues(size_t(cin) * cout, 0.05f, 2);
    std::vector<float> bias = randomValues(cout, 0.1f, 3);
    std::vector<float> residual = randomValues(size_t(rows) * cout, 1.0f, 4);
    std::vector<float> y(size_t(rows) * cout);

    openblas_set_num_threads(threads);
    const double sgemm = bestSeconds(repeat, [&] {
        cblas_sgemm(kRowMajor, kNoTrans, kNoTrans, rows, cout, cin, 1.0f, x.data(), cin,
                    w.data(), cout, 0.0f, y.data(), cout);
    });
    const double onednn =
        oneDnnSeconds(repeat, batch, hw, cin, cout, kind == "gelu", x, w, bias, residual);
    std::printf("{\"batch\": %d, \"hw\": %d, \"c_in\": %d, \"c_out\": %d, \"kind\": \"%s\", "
                "\"gflop\": %.6f, \"openblas_sgemm_ms\": %.4f, \"onednn_conv1x1_ms\": %.4f, "
                "\"openblas\": \"%s\", \"onednn\": \"%d.%d.%d\"}\n",
                batch, hw, cin, cout, kind.c_str(), 2.0 * rows * cin * cout / 1e9, sgemm * 1e3,
                onednn * 1e3, openblas_get_config(), dnnl_version()->major,
                dnnl_version()->minor, dnnl_version()->patch);
    return 0;
}
