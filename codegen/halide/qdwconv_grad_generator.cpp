// The qdwconv_grad generator of a training step's backward pass; its helpers are
// in qdsl_gradient_common.h.
#include "qdsl_gradient_common.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

using namespace Halide;
using namespace qdsl_gen;

namespace {

// The whole backward pass of a quadratic depthwise convolution with stride
// 1, y = xa ⊙ xb + xc (xa, xb, xc depthwise convolutions of x), from x, dy
// and the kept responses xa and xb:
//   ga = dy ⊙ xb,  gb = dy ⊙ xa,  gc = dy
//   dw_j = Σ_{n,p} x(p + k − pad) · g_j(p),   db_j = Σ_{n,p} g_j(p)
//   dx = Σ_j Σ_k g_j(x + pad − k) · w_j(k)
// One kernel instead of thirteen (2 products, 3 input gradients, 2 sums,
// 3 filter gradients, 3 channel sums): ga and gb never reach memory, and
// dy, xa and xb are each read three times. Sums over examples are
// per-example partials added in order, independent of the thread count.
class QDWConvGrad : public Generator<QDWConvGrad> {
public:
    GeneratorParam<int> channels{"channels", 64};
    GeneratorParam<int> kernel_h{"kernel_h", 7}, kernel_w{"kernel_w", 7};
    GeneratorParam<int> pad_h{"pad_h", 3}, pad_w{"pad_w", 3};
    // x's spatial size.
    GeneratorParam<int> height{"height", 56}, width{"width", 56};
    GeneratorParam<bool> bias{"bias", true};
    GeneratorParam<bool> input_grad{"input_grad", true};

    Input<Buffer<float, 4>> input{"input"};  // x (c, x, y, n)
    Input<Buffer<float, 4>> dy{"dy"};        // (c, ox, oy, n), and xa, xb alike
    Input<Buffer<float, 4>> xa{"xa"};
    Input<Buffer<float, 4>> xb{"xb"};
    Input<Buffer<float, 3>> wa{"wa"}, wb{"wb"}, wc{"wc"};  // (c, kx, ky)

    // Outputs in this order: dx (with input_grad), dwa, dwb, dwc, then
    // dba, dbb, dbc (with bias).
    void configure() {
        if (input_grad)
            dx = add_output<Buffer<float, 4>>("dx");
        for (const char *name : {"dwa", "dwb", "dwc"})
            dw.push_back(add_output<Buffer<float, 3>>(name));
        if (bias)
            for (const char *name : {"dba", "dbb", "dbc"})
                db.push_back(add_output<Buffer<float, 1>>(name));
    }

    void generate() {
        const int C = channels, KH = kernel_h, KW = kernel_w, PH = pad_h, PW = pad_w;
        const int H = height, W = width, OH = H + 2 * PH - KH + 1, OW = W + 2 * PW - KW + 1;
        const int V = natural_vector_size<float>();
        vec = C % V == 0 ? V : 1;
        Input<Buffer<float, 3>> *w[3] = {&wa, &wb, &wc};
        Expr N = input.dim(3).extent();

        // g_j at output positions, zero outside them.
        Func dyz = BoundaryConditions::constant_exterior(dy, 0.0f, {{0, C}, {0, OW}, {0, OH}});
        Func xaz = BoundaryConditions::constant_exterior(xa, 0.0f, {{0, C}, {0, OW}, {0, OH}});
        Func xbz = BoundaryConditions::constant_exterior(xb, 0.0f, {{0, C}, {0, OW}, {0, OH}});
        g(c, x, y, j, n) = dyz(c, x, y, n) * select(j == 0, xbz(c, x, y, n),
                                                    j == 1, xaz(c, x, y, n), 1.0f);
        // One vector of channels per plane: a vector's neighbours lie
        // together (NHWC rows of wide layers would share L1 sets). The
        // filter gradients read only output positions: no bounds checks.
        g_planes(ci, co, x, y, j, n) = g(co * vec + ci, x, y, j, n);
        Expr ch = co * vec + ci;
        g_inside(ci, co, x, y, j, n) =
            dy(ch, x, y, n) * select(j == 0, xb(ch, x, y, n), j == 1, xa(ch, x, y, n), 1.0f);
        Func xin = BoundaryConditions::constant_exterior(input, 0.0f, {{0, C}, {0, W}, {0, H}});
        x_planes(ci, co, x, y, n) = xin(co * vec + ci, x, y, n);

        // Filter gradients: per example, channel vector, filter and row of
        // taps, the row's taps summed in registers.
        p = RDom(0, OW, 0, OH, "p");
        tap_sum(ci, co, kx, ky, j, n) = 0.0f;
        tap_sum(ci, co, kx, ky, j, n) += x_planes(ci, co, p.x + kx - PW, p.y + ky - PH, n) *
                                         g_inside(ci, co, p.x, p.y, j, n);
        partial(c, kx, ky, j, n) = tap_sum(c % vec, c / vec, kx, ky, j, n);
        RDom e(0, N, "e");
        Func total("total");
        total(c, kx, ky, j) = 0.0f;
        total(c, kx, ky, j) += partial(c, kx, ky, j, e);
        for (int f = 0; f < 3; ++f)
            (*dw[f])(c, kx, ky) = total(c, kx, ky, f);

        // Bias gradients: Σ g_j, per example then over examples.
        if (bias) {
            bias_partial(c, j, n) = 0.0f;
            bias_partial(c, j, n) += dy(c, p.x, p.y, n) *
                select(j == 0, xb(c, p.x, p.y, n), j == 1, xa(c, p.x, p.y, n), 1.0f);
            bias_total(c, j) = 0.0f;
            bias_total(c, j) += bias_partial(c, j, e);
            for (int f = 0; f < 3; ++f)
                (*db[f])(c) = bias_total(c, f);
        }

        // Input gradient: the three transposed convolutions summed in one
        // pass, as the forward kernel sums its three responses.
        if (input_grad) {
            RDom k(0, KW, 0, KH, "k");
            std::vector<Expr> init(3, 0.0f), update;
            dx_acc(ci, co, x, y, n) = Tuple(init);
            for (int f = 0; f < 3; ++f)
                update.push_back(dx_acc(ci, co, x, y, n)[f] +
                                 g_planes(ci, co, x + PW - k.x, y + PH - k.y, f, n) *
                                     (*w[f])(co * vec + ci, k.x, k.y));
            dx_acc(ci, co, x, y, n) = Tuple(update);
            Expr cc = c % vec, cb = c / vec;
            (*dx)(c, x, y, n) = dx_acc(cc, cb, x, y, n)[0] + dx_acc(cc, cb, x, y, n)[1] +
                                dx_acc(cc, cb, x, y, n)[2];
            this->k = k;
        }

        dense_image(input, C, W, H);
        for (auto *b : {&dy, &xa, &xb})
            dense_image(*b, C, OW, OH);
        for (auto *f : w)
            qdsl_gen::dense_depthwise_filter(*f, C, KW, KH);
        for (auto *o : dw)
            qdsl_gen::dense_depthwise_filter(*o, C, KW, KH);
        for (auto *o : db) {
            o->dim(0).set_bounds(0, C).set_stride(1);
            o->set_estimates({{0, C}});
        }
        if (dx)
            dense_image(*dx, C, W, H);
        if (auto_schedule)
            return;
        schedule_cpu(W);
    }

private:
    Var c{"c"}, x{"x"}, y{"y"}, n{"n"}, j{"j"}, kx{"kx"}, ky{"ky"}, ci{"ci"}, co{"co"};
    Func g{"g"}, g_planes{"g_planes"}, g_inside{"g_inside"}, x_planes{"x_planes"}, tap_sum{"tap_sum"},
        partial{"partial"}, bias_partial{"bias_partial"}, bias_total{"bias_total"},
        dx_acc{"dx_acc"};
    RDom p, k;
    int vec = 1;
    Output<Buffer<float, 4>> *dx = nullptr;
    std::vector<Output<Buffer<float, 3>> *> dw;
    std::vector<Output<Buffer<float, 1>> *> db;

    void schedule_cpu(int W) {
        partial.compute_root()
            .split(c, co, ci, vec)
            .reorder(ci, kx, ky, j, co, n)
            .parallel(n)
            .vectorize(ci)
            .unroll(kx)
            .unroll(j);
        tap_sum.compute_at(partial, ky).vectorize(ci).unroll(kx);
        tap_sum.update().reorder(ci, kx, p.x, p.y).vectorize(ci).unroll(kx);
        x_planes.compute_at(partial, co).vectorize(ci);
        g_inside.compute_at(partial, co).reorder(ci, x, y, j).vectorize(ci).unroll(j);
        for (auto *o : dw)
            o->compute_root().vectorize(c, vec);
        if (bias) {
            bias_partial.compute_root().parallel(n).vectorize(c, vec);
            bias_partial.update().reorder(c, j, p.x, p.y, n).parallel(n).vectorize(c, vec).unroll(j);
            bias_total.compute_root().vectorize(c, vec);
            bias_total.update().vectorize(c, vec);
            for (auto *o : db)
                o->compute_root().vectorize(c, vec);
        }
        if (dx) {
            // Three pixels × three filters: nine accumulators.
            const int px = std::min(3, W);
            Var xo("xo"), xi("xi"), dco("dco"), dci("dci");
            (*dx).compute_root()
                .split(c, dco, dci, vec)
                .split(x, xo, xi, px, TailStrategy::ShiftInwards)
                .reorder(dci, xi, xo, y, dco, n)
                .parallel(n)
                .vectorize(dci)
                .unroll(xi);
            dx_acc.compute_at(*dx, xo).vectorize(ci).unroll(x);
            dx_acc.update().reorder(ci, x, k.x, k.y).vectorize(ci).unroll(x).unroll(k.x);
            // The zero-padded g planes of a channel vector, again (cheap:
            // products of what is read anyway).
            g_planes.compute_at(*dx, dco).reorder(ci, x, y, j).vectorize(ci).unroll(j);
        }
    }
};

}  // namespace

HALIDE_REGISTER_GENERATOR(QDWConvGrad, qdwconv_grad)
