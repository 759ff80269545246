// The conv_grad_input generator of a training step's backward pass; its helpers are
// in qdsl_gradient_common.h.
#include "qdsl_conv_gradient.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

using namespace Halide;
using namespace qdsl_gen;

namespace {

// The gradient of a convolution's input: every output position scatters
// back through the taps that read it. Written as a gather: input position
// (x, y) receives dy at ((x + pad − k) / stride, …) for each tap k where
// that divides evenly and lands inside dy. Depthwise (`depthwise`: one
// filter per channel, (c, kx, ky)) or dense in `groups` groups
// ((o, i mod C_in/groups, kx, ky)).
class ConvGradInput : public ConvGradient<ConvGradInput> {
public:
    Input<Buffer<float, 4>> dy{"dy"};  // (o, ox, oy, n)
    Output<Buffer<float, 4>> output{"output"};  // (i, x, y, n)

    void configure() {
        filter = depthwise ? add_input<Buffer<float>>("filter", 3)
                           : add_input<Buffer<float>>("filter", 4);
    }

    void generate() {
        const Window w = window();
        const int CI = w.CI, CO = w.CO, KH = w.KH, KW = w.KW, SH = w.SH, SW = w.SW;
        const int PH = w.PH, PW = w.PW, H = w.H, W = w.W, OH = w.OH, OW = w.OW;
        Func d = BoundaryConditions::constant_exterior(dy, 0.0f, {{0, CO}, {0, OW}, {0, OH}});
        Func sum("sum");
        Expr tx, ty, ok;
        if (depthwise) {
            RDom t(0, KW, 0, KH, "t");
            tx = x + PW - t.x;
            ty = y + PH - t.y;
            ok = (tx % SW == 0) && (ty % SH == 0);
            sum(c, x, y, n) = 0.0f;
            sum(c, x, y, n) += select(ok, d(c, tx / SW, ty / SH, n) * (*filter)(c, t.x, t.y), 0.0f);
        } else {
            const int G = groups, in_per_group = CI / G, out_per_group = CO / G;
            // The filter with its input channel innermost, so that a vector
            // of input channels reads it contiguously.
            transposed(c, o, kx, ky) = (*filter)(o, c, kx, ky);
            Expr group_base = (c / in_per_group) * out_per_group;
            sum(c, x, y, n) = 0.0f;
            if (SW == KW && SH == KH && PW == 0 && PH == 0 && W % SW == 0 && H % SH == 0) {
                // Non-overlapping windows (a patchifying or downsampling
                // convolution): each input position has exactly one tap.
                RDom t(0, out_per_group, "t");
                Expr oc = group_base + t.x;
                sum(c, x, y, n) += dy(oc, x / SW, y / SH, n) *
                                   transposed(c % in_per_group, oc, x % SW, y % SH);
            } else {
                RDom t(0, out_per_group, 0, KW, 0, KH, "t");
                tx = x + PW - t.y;
                ty = y + PH - t.z;
                ok = (tx % SW == 0) && (ty % SH == 0);
                Expr oc = group_base + t.x;
                sum(c, x, y, n) += select(ok, d(oc, tx / SW, ty / SH, n) *
                                                  transposed(c % in_per_group, oc, t.y, t.z), 0.0f);
            }
        }
        output(c, x, y, n) = sum(c, x, y, n);

        dense_image(dy, CO, OW, OH);
        dense_image(output, CI, W, H);
        if (depthwise) {
            filter->dim(0).set_bounds(0, CI).set_stride(1);
            filter->set_estimates({{0, CI}, {0, KW}, {0, KH}});
        } else {
            filter->dim(0).set_bounds(0, CO).set_stride(1);
            filter->set_estimates({{0, CO}, {0, CI / static_cast<int>(groups)}, {0, KW}, {0, KH}});
        }
        if (auto_schedule)
            return;
        const int V = natural_vector_size<float>();
        const int vec = CI % V == 0 ? V : 1;
        Var yn("yn");
        output.compute_root().vectorize(c, vec).fuse(y, n, yn).parallel(yn);
        sum.compute_at(output, x).vectorize(c, vec);
        sum.update().vectorize(c, vec);
        if (!depthwise)
            transposed.compute_root();
    }

private:
    Var c{"c"}, x{"x"}, y{"y"}, n{"n"}, o{"o"}, kx{"kx"}, ky{"ky"};
    Func transposed{"transposed"};
    Input<Buffer<float>> *filter = nullptr;
};

}  // namespace

HALIDE_REGISTER_GENERATOR(ConvGradInput, conv_grad_input)
