// The channel_sum generator of a training step's backward pass; its helpers are
// in qdsl_gradient_common.h.
#include "qdsl_gradient_common.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

using namespace Halide;
using namespace qdsl_gen;

namespace {

// Σ over every row: the gradient of a bias or of a layer norm's offset.
class ChannelSum : public Generator<ChannelSum> {
public:
    GeneratorParam<int> channels{"channels", 64};

    Input<Buffer<float, 2>> input{"input"};
    Output<Buffer<float, 1>> output{"output"};

    void generate() {
        const int C = channels;
        Func in("in");
        in(c, r) = input(c, r);
        RowSum total(in, input.dim(1).extent(), "total");
        output(c) = total.total(c);
        dense_rows(input, C);
        output.dim(0).set_bounds(0, C);
        output.set_estimates({{0, C}});
        if (auto_schedule)
            return;
        total.schedule(C, get_target());
        output.compute_root();
    }

private:
    Var c{"c"}, r{"r"};
};

}  // namespace

HALIDE_REGISTER_GENERATOR(ChannelSum, channel_sum)
