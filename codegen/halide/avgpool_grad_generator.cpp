// The avgpool_grad generator of a training step's backward pass; its helpers are
// in qdsl_gradient_common.h.
#include "qdsl_gradient_common.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

using namespace Halide;
using namespace qdsl_gen;

namespace {

// The global average pool's gradient: dy spread evenly over the positions.
class AvgPoolGrad : public Generator<AvgPoolGrad> {
public:
    GeneratorParam<int> channels{"channels", 64};
    GeneratorParam<int> height{"height", 7}, width{"width", 7};

    Input<Buffer<float, 2>> dy{"dy"};  // (c, n)
    Output<Buffer<float, 4>> output{"output"};  // (c, x, y, n)

    void generate() {
        const int C = channels, H = height, W = width;
        output(c, x, y, n) = dy(c, n) * (1.0f / (H * W));
        dy.dim(0).set_bounds(0, C).set_stride(1);
        dy.set_estimates({{0, C}, {0, 8}});
        dense_image(output, C, W, H);
        if (auto_schedule)
            return;
        const int V = natural_vector_size<float>();
        output.compute_root().vectorize(c, C % V == 0 ? V : 1).parallel(n);
    }

private:
    Var c{"c"}, x{"x"}, y{"y"}, n{"n"};
};

}  // namespace

HALIDE_REGISTER_GENERATOR(AvgPoolGrad, avgpool_grad)
