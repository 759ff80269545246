// The conv_grad_filter generator of a training step's backward pass; its helpers are
// in qdsl_gradient_common.h.
#include "qdsl_conv_gradient.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

using namespace Halide;
using namespace qdsl_gen;

namespace {

// The gradient of a convolution's filter: Σ over examples and output
// positions of input tap × dy, per example in parallel, then over examples.
// Dense filters (o, i, kx, ky) in `groups` groups read input channel
// (o / (C_out/groups)) · C_in/groups + i.
class ConvGradFilter : public ConvGradient<ConvGradFilter> {
public:

    Input<Buffer<float, 4>> input{"input"};  // (i, x, y, n)
    Input<Buffer<float, 4>> dy{"dy"};        // (o, ox, oy, n)

    void configure() {
        output = depthwise ? add_output<Buffer<float>>("output", 3)
                           : add_output<Buffer<float>>("output", 4);
    }

    void generate() {
        const Window w = window();
        const int CI = w.CI, CO = w.CO, KH = w.KH, KW = w.KW, SH = w.SH, SW = w.SW;
        const int PH = w.PH, PW = w.PW, H = w.H, W = w.W, OH = w.OH, OW = w.OW;
        Func xin = BoundaryConditions::constant_exterior(input, 0.0f, {{0, CI}, {0, W}, {0, H}});
        RDom p(0, OW, 0, OH, "p");
        Expr batch = input.dim(3).extent();
        RDom e(0, batch, "e");
        Func partial("partial"), total("total");
        const int V = natural_vector_size<float>();
        const int vec = (depthwise ? CI : CO) % V == 0 ? V : 1;
        if (depthwise) {
            // Per example, the input zero-padded (no bounds checks on the
            // taps) and dy, both stored as planes of one vector of
            // channels, so that one vector's taps lie close together.
            padded(ci, co, x, y, n) = xin(co * vec + ci, x, y, n);
            dy_planes(ci, co, x, y, n) = dy(co * vec + ci, x, y, n);
            tap_sum(ci, co, kx, ky, n) = 0.0f;
            tap_sum(ci, co, kx, ky, n) += padded(ci, co, p.x * SW + kx - PW, p.y * SH + ky - PH, n) *
                                          dy_planes(ci, co, p.x, p.y, n);
            partial(c, kx, ky, n) = tap_sum(c % vec, c / vec, kx, ky, n);
            total(c, kx, ky) = 0.0f;
            total(c, kx, ky) += partial(c, kx, ky, e);
            (*output)(c, kx, ky) = total(c, kx, ky);
        } else {
            const int G = groups, in_per_group = CI / G, out_per_group = CO / G;
            Expr channel = (c / out_per_group) * in_per_group + i;
            partial(c, i, kx, ky, n) = 0.0f;
            partial(c, i, kx, ky, n) += xin(channel, p.x * SW + kx - PW, p.y * SH + ky - PH, n) * dy(c, p.x, p.y, n);
            total(c, i, kx, ky) = 0.0f;
            total(c, i, kx, ky) += partial(c, i, kx, ky, e);
            (*output)(c, i, kx, ky) = total(c, i, kx, ky);
        }

        dense_image(input, CI, W, H);
        dense_image(dy, CO, OW, OH);
        if (depthwise) {
            qdsl_gen::dense_depthwise_filter(*output, CI, KW, KH);
        } else {
            const int IG = CI / static_cast<int>(groups);
            output->dim(0).set_bounds(0, CO).set_stride(1);
            output->dim(1).set_bounds(0, IG).set_stride(CO);
            output->dim(2).set_bounds(0, KW).set_stride(CO * IG);
            output->dim(3).set_bounds(0, KH).set_stride(CO * IG * KW);
            output->set_estimates({{0, CO}, {0, IG}, {0, KW}, {0, KH}});
        }
        if (auto_schedule)
            return;
        if (depthwise) {
            // Per example, vector of channels and filter row: the row's
            // taps sum in registers over every output position, each dy
            // vector loaded once for the whole row.
            partial.compute_root()
                .split(c, co, ci, vec)
                .reorder(ci, kx, ky, co, n)
                .parallel(n)
                .vectorize(ci)
                .unroll(kx);
            tap_sum.compute_at(partial, ky).vectorize(ci).unroll(kx);
            tap_sum.update().reorder(ci, kx, p.x, p.y).vectorize(ci).unroll(kx);
            for (Func f : {padded, dy_planes})
                f.compute_at(partial, n).reorder_storage(ci, x, y, co, n).reorder(ci, x, y, co).vectorize(ci);
        } else {
            partial.compute_root().parallel(n).vectorize(c, vec);
            partial.update().reorder(c, i, kx, ky, p.x, p.y, n).parallel(n).vectorize(c, vec);
        }
        total.compute_root().vectorize(c, vec);
        total.update().vectorize(c, vec);
    }

private:
    Var c{"c"}, i{"i"}, kx{"kx"}, ky{"ky"}, n{"n"}, x{"x"}, y{"y"}, co{"co"}, ci{"ci"};
    Func padded{"padded"}, dy_planes{"dy_planes"}, tap_sum{"tap_sum"};
    Output<Buffer<float>> *output = nullptr;
};

}  // namespace

HALIDE_REGISTER_GENERATOR(ConvGradFilter, conv_grad_filter)
