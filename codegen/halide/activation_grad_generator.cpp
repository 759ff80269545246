// The activation_grad generator of a training step's backward pass; its helpers are
// in qdsl_gradient_common.h.
#include "qdsl_gradient_common.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

using namespace Halide;
using namespace qdsl_gen;

namespace {

// dy ⊙ f'(x) for GELU (exact: Φ(x) + x·φ(x)) or ReLU.
class ActivationGrad : public Generator<ActivationGrad> {
public:
    GeneratorParam<std::string> op{"op", "gelu"};
    GeneratorParam<int> channels{"channels", 64};

    Input<Buffer<float, 2>> input{"input"};
    Input<Buffer<float, 2>> dy{"dy"};
    Output<Buffer<float, 2>> output{"output"};

    void generate() {
        const std::string kind = op;
        const int C = channels;
        Expr x = input(c, r);
        Expr derivative;
        if (kind == "gelu") {
            derivative = qdsl_gen::gelu_derivative(x);
        } else if (kind == "relu") {
            derivative = select(x > 0.0f, 1.0f, 0.0f);
        } else {
            std::fprintf(stderr, "activation_grad: unknown op '%s'\n", kind.c_str());
            std::exit(1);
        }
        output(c, r) = dy(c, r) * derivative;
        dense_rows(input, C);
        dense_rows(dy, C);
        dense_rows(output, C);
        if (auto_schedule)
            return;
        const int V = natural_vector_size<float>();
        Var ro("ro"), ri("ri");
        output.compute_root()
            .split(r, ro, ri, 64, TailStrategy::GuardWithIf)
            .parallel(ro)
            .vectorize(c, C % V == 0 ? V : 1);
    }

private:
    Var c{"c"}, r{"r"};
};

}  // namespace

HALIDE_REGISTER_GENERATOR(ActivationGrad, activation_grad)
