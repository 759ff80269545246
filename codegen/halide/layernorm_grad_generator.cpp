// The layernorm_grad generator of a training step's backward pass; its helpers are
// in qdsl_gradient_common.h.
#include "qdsl_gradient_common.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

using namespace Halide;
using namespace qdsl_gen;

namespace {

// dx, dscale and doffset of a layer norm over the channels, from its input
// x (not its output: the statistics are recomputed, which costs one read)
// and dy:
//   dx = inv_std · (g − mean(g) − x̂ · mean(g ⊙ x̂)),  g = dy ⊙ scale
//   dscale = Σ_rows dy ⊙ x̂,  doffset = Σ_rows dy
class LayerNormGrad : public Generator<LayerNormGrad> {
public:
    GeneratorParam<int> channels{"channels", 64};
    GeneratorParam<float> eps{"eps", 1e-6f};

    Input<Buffer<float, 2>> input{"input"};  // (c, r)
    Input<Buffer<float, 1>> scale{"scale"};
    Input<Buffer<float, 2>> dy{"dy"};
    Output<Buffer<float, 2>> dinput{"dinput"};
    Output<Buffer<float, 1>> dscale{"dscale"};
    Output<Buffer<float, 1>> doffset{"doffset"};

    void generate() {
        const int C = channels;
        Func x("x"), g("g");
        x(c, r) = input(c, r);
        Func mean, inv_std;
        Func unit_scale("unit_scale"), zero("zero");
        unit_scale(c) = 1.0f;
        zero(c) = 0.0f;
        Func xhat = qdsl_gen::layer_norm(x, C, eps, unit_scale, zero, mean, inv_std, "xhat",
                                         qdsl_gen::lane_sums(get_target(), auto_schedule));
        g(c, r) = dy(c, r) * scale(c);
        RDom k(0, C, "k");
        Func sum_g("sum_g"), sum_gx("sum_gx");
        sum_g(r) = 0.0f;
        sum_g(r) += g(k, r);
        sum_gx(r) = 0.0f;
        sum_gx(r) += g(k, r) * xhat(k, r);
        dinput(c, r) = inv_std(r) * (g(c, r) - sum_g(r) / C - xhat(c, r) * (sum_gx(r) / C));

        Expr rows = input.dim(1).extent();
        Func dy_xhat("dy_xhat"), dy_f("dy_f");
        dy_xhat(c, r) = dy(c, r) * xhat(c, r);
        dy_f(c, r) = dy(c, r);
        RowSum scale_sum(dy_xhat, rows, "scale_sum"), offset_sum(dy_f, rows, "offset_sum");
        dscale(c) = scale_sum.total(c);
        doffset(c) = offset_sum.total(c);

        dense_rows(input, C);
        dense_rows(dy, C);
        dense_rows(dinput, C);
        scale.dim(0).set_bounds(0, C);
        scale.set_estimates({{0, C}});
        for (auto *o : {&dscale, &doffset}) {
            o->dim(0).set_bounds(0, C);
            o->set_estimates({{0, C}});
        }
        if (auto_schedule)
            return;
        const int V = natural_vector_size<float>();
        const int vec = C % V == 0 ? V : 1;
        Var ro("ro"), ri("ri");
        // The row statistics once (two floats a row), for dx and dscale.
        for (Func f : {mean, inv_std})
            f.compute_root().split(r, ro, ri, 64, TailStrategy::GuardWithIf).parallel(ro);
        dinput.compute_root().split(r, ro, ri, 16, TailStrategy::GuardWithIf).parallel(ro).vectorize(c, vec);
        sum_g.compute_at(dinput, ri);
        sum_gx.compute_at(dinput, ri);
        scale_sum.schedule(C, get_target());
        offset_sum.schedule(C, get_target());
        dscale.compute_root();
        doffset.compute_root();
    }

private:
    Var c{"c"}, r{"r"};
};

}  // namespace

HALIDE_REGISTER_GENERATOR(LayerNormGrad, layernorm_grad)
