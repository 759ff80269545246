// The global average pool on its own, [N, H, W, C] to [N, C] (the head
// kernel fuses it with the layer norm and classifier that follow it in a
// QuadraNet).
#include "qdsl_generator_common.h"

using namespace Halide;

namespace {

class GlobalAvgPool : public Generator<GlobalAvgPool> {
public:
    GeneratorParam<int> channels{"channels", 64};

    Input<Buffer<float, 4>> input{"input"};  // (c, x, y, n)
    Output<Buffer<float, 2>> output{"output"};  // (c, n)

    void generate() {
        const int C = channels;
        Expr W = input.dim(1).extent(), H = input.dim(2).extent();
        RDom p(0, W, 0, H, "p");
        Func sum("sum");
        sum(c, n) = 0.0f;
        sum(c, n) += input(c, p.x, p.y, n);
        output(c, n) = sum(c, n) / cast<float>(W * H);
        input.dim(0).set_bounds(0, C).set_stride(1);
        input.dim(1).set_stride(C);
        output.dim(0).set_bounds(0, C).set_stride(1);
        input.set_estimates({{0, C}, {0, 7}, {0, 7}, {0, 8}});
        output.set_estimates({{0, C}, {0, 8}});
        if (auto_schedule)
            return;
        const int V = natural_vector_size<float>();
        if (get_target().has_gpu_feature()) {
            output.compute_root().gpu_tile(c, Var("co"), Var("ci"), 64, TailStrategy::GuardWithIf);
            return;
        }
        output.compute_root().vectorize(c, C % V == 0 ? V : 1).parallel(n);
        sum.compute_at(output, n).vectorize(c, C % V == 0 ? V : 1);
        sum.update().reorder(c, p.x, p.y).vectorize(c, C % V == 0 ? V : 1);
    }

private:
    Var c{"c"}, n{"n"};
};

}  // namespace

HALIDE_REGISTER_GENERATOR(GlobalAvgPool, avgpool)
