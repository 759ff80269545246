// The softmax_cross_entropy generator of a training step's backward pass; its helpers are
// in qdsl_gradient_common.h.
#include "qdsl_gradient_common.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

using namespace Halide;
using namespace qdsl_gen;

namespace {

// Mean softmax cross-entropy of logits (k, n) against labels (n) with label
// smoothing ε, or (with `gradient`) its gradient (softmax − target) / N.
// Labels are checked by the caller; an index outside [0, K) is clamped.
class SoftmaxCrossEntropy : public Generator<SoftmaxCrossEntropy> {
public:
    GeneratorParam<int> classes{"classes", 10};
    GeneratorParam<float> smoothing{"smoothing", 0.0f};
    GeneratorParam<bool> gradient{"gradient", false};

    Input<Buffer<float, 2>> logits{"logits"};
    Input<Buffer<int32_t, 1>> labels{"labels"};

    void configure() {
        output = gradient ? add_output<Buffer<float>>("output", 2)
                          : add_output<Buffer<float>>("output", 0);
    }

    void generate() {
        const int K = classes;
        const float eps = smoothing;
        Expr N = logits.dim(1).extent();
        RDom k(0, K, "k");
        Func top("top"), sum_exp("sum_exp"), sum_logits("sum_logits");
        top(n) = maximum(logits(k, n));
        sum_exp(n) = 0.0f;
        sum_exp(n) += exp(logits(k, n) - top(n));
        sum_logits(n) = 0.0f;
        sum_logits(n) += logits(k, n);
        Expr label = clamp(labels(n), 0, K - 1);
        if (gradient) {
            Expr target = select(c == label, 1.0f - eps, 0.0f) + eps / K;
            (*output)(c, n) = (exp(logits(c, n) - top(n)) / sum_exp(n) - target) / cast<float>(N);
        } else {
            Func row_loss("row_loss");
            Expr lse = top(n) + log(sum_exp(n));
            row_loss(n) = lse - (1.0f - eps) * logits(label, n) - (eps / K) * sum_logits(n);
            RDom e(0, N, "e");
            Func total("total");
            total() = 0.0f;
            total() += row_loss(e);
            (*output)() = total() / cast<float>(N);
        }
        logits.dim(0).set_bounds(0, K).set_stride(1);
        logits.set_estimates({{0, K}, {0, 64}});
        labels.set_estimates({{0, 64}});
        if (gradient) {
            output->dim(0).set_bounds(0, K).set_stride(1);
            output->set_estimates({{0, K}, {0, 64}});
        }
        if (auto_schedule)
            return;
        top.compute_root();
        sum_exp.compute_root();
        sum_logits.compute_root();
    }

private:
    Var c{"c"}, n{"n"};
    Output<Buffer<float>> *output = nullptr;
};

}  // namespace

HALIDE_REGISTER_GENERATOR(SoftmaxCrossEntropy, softmax_cross_entropy)
