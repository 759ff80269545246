// The backward pass of a training step: one generator per gradient op that
// the forward generators do not already compute (the gradient of a linear
// layer's input is a pointwise product with the transposed weight, and the
// elementwise generator serves the sums and products of the chain rule).
//
// Layouts as in qdsl_generator_common.h. Every reduction over the batch
// (weight gradients, channel sums) is split into `kChunks` slices of rows
// or examples summed in parallel, then added up in a fixed order, so a
// gradient does not depend on the number of threads.
#include "qdsl_generator_common.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

using namespace Halide;

namespace {

constexpr int kChunks = 16;

// The largest of `options` that divides `extent`, else 1.
int block_of(int extent, std::initializer_list<int> options) {
    for (int b : options)
        if (b > 0 && extent % b == 0)
            return b;
    return 1;
}

// A (c, rows) buffer of `channels` densely packed channels.
template <typename B>
void dense_rows(B &b, int channels) {
    b.dim(0).set_bounds(0, channels).set_stride(1);
    b.dim(1).set_stride(channels);
    b.set_estimates({{0, channels}, {0, 3136}});
}

// A (c, x, y, n) buffer of a dense NHWC tensor.
template <typename B>
void dense_image(B &b, int channels, int width, int height) {
    b.dim(0).set_bounds(0, channels).set_stride(1);
    b.dim(1).set_bounds(0, width).set_stride(channels);
    b.dim(2).set_bounds(0, height).set_stride(channels * width);
    b.set_estimates({{0, channels}, {0, width}, {0, height}, {0, 8}});
}

// Σ over rows of f(c, r) for r < rows, as `kChunks` partial sums computed
// in parallel and then added in order.
struct RowSum {
    Func partial, total;
    Var c{"c"}, chunk{"chunk"};
    RDom r, k;

    RowSum(Func f, Expr rows, const std::string &name)
        : partial(name + "_partial"), total(name) {
        Expr per_chunk = (rows + kChunks - 1) / kChunks;
        r = RDom(0, per_chunk, name + "_r");
        r.where(chunk * per_chunk + r < rows);
        partial(c, chunk) = 0.0f;
        // The clamp only tells bounds inference what `where` guarantees.
        partial(c, chunk) += f(c, min(chunk * per_chunk + r, rows - 1));
        k = RDom(0, kChunks, name + "_k");
        total(c) = 0.0f;
        total(c) += partial(c, k);
    }

    void schedule(int channels, const Target &t) {
        const int V = t.natural_vector_size<float>();
        const int vec = channels % V == 0 ? V : 1;
        partial.compute_root().parallel(chunk).vectorize(c, vec);
        partial.update().reorder(c, r, chunk).parallel(chunk).vectorize(c, vec);
        total.compute_root().vectorize(c, vec);
        total.update().reorder(c, k).vectorize(c, vec);
    }
};

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
        Func xhat = qdsl_gen::layer_norm(x, C, eps, unit_scale, zero, mean, inv_std, "xhat");
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

// dW[i, o] = Σ_rows x[r, i] · dy[r, o]: a matrix product over the rows.
// Two shapes of schedule, both summing every output's rows in a fixed
// order, so the result does not depend on the number of threads:
//  * enough output tiles to share among threads (the wide layers of an
//    ImageNet-sized model): each thread owns (o, i) tiles of about 24 KiB
//    and walks all rows in blocks of `KB`, a register tile (4 inputs × 2–3
//    vectors of outputs) summing a block's rows before adding them into
//    the tile; no partial copies of dW.
//  * few outputs and many rows (a small model): `kChunks` slices of rows
//    summed in parallel into partial copies of dW, then added in order.
class LinearGradWeight : public Generator<LinearGradWeight> {
public:
    GeneratorParam<int> in_channels{"in_channels", 64};
    GeneratorParam<int> out_channels{"out_channels", 256};

    Input<Buffer<float, 2>> input{"input"};  // (i, r)
    Input<Buffer<float, 2>> dy{"dy"};        // (o, r)
    Output<Buffer<float, 2>> output{"output"};  // (o, i)

    void generate() {
        const int CI = in_channels, CO = out_channels;
        const int V = natural_vector_size<float>();
        const int ob = block_of(CO, {3 * V, 2 * V, V});
        const int ib = block_of(CI, {4, 2});
        // Output tiles of about 24 KiB: whole register tiles.
        const int OT = ob % V == 0 ? ob * block_of(CO / ob, {4, 3, 2}) : CO;
        const int IT = ib * block_of(CI / ib, {16, 12, 8, 6, 4, 3, 2});
        const bool tiled = ob % V == 0 && ib > 1 && (CO / OT) * (CI / IT) >= 8;
        if (tiled)
            by_output_tiles(ob, ib, OT, IT);
        else
            by_row_slices(ob, ib);
    }

private:
    void constrain_layouts() {
        const int CI = in_channels, CO = out_channels;
        dense_rows(input, CI);
        dense_rows(dy, CO);
        output.dim(0).set_bounds(0, CO).set_stride(1);
        output.dim(1).set_bounds(0, CI).set_stride(CO);
        output.set_estimates({{0, CO}, {0, CI}});
    }

    void by_output_tiles(int ob, int ib, int OT, int IT) {
        const int KB = 64;
        Expr rows = input.dim(1).extent();
        RDom k(0, KB, "k");
        Expr row = block * KB + k;
        k.where(row < rows);
        // The clamp only tells bounds inference what `where` guarantees.
        Expr at = min(row, rows - 1);
        Func block_sum("block_sum"), total("total");
        block_sum(o, i, block) = 0.0f;
        block_sum(o, i, block) += input(i, at) * dy(o, at);
        RDom b(0, (rows + KB - 1) / KB, "b");
        total(o, i) = 0.0f;
        total(o, i) += block_sum(o, i, b);
        output(o, i) = total(o, i);
        constrain_layouts();
        if (auto_schedule)
            return;
        const int V = natural_vector_size<float>();
        Var to("to"), ti("ti"), ot("ot"), it("it"), tile("tile");
        Var oo("oo"), oi("oi"), ov("ov"), ol("ol"), io("io"), ii("ii");
        output.compute_root()
            .tile(o, i, to, ti, ot, it, OT, IT)
            .fuse(to, ti, tile)
            .parallel(tile)
            .vectorize(ot, V);
        total.compute_at(output, tile).vectorize(o, V);
        total.update()
            .split(o, oo, oi, ob)
            .split(oi, ol, ov, V)
            .split(i, io, ii, ib)
            .reorder(ov, ol, ii, oo, io, b)
            .vectorize(ov)
            .unroll(ol)
            .unroll(ii);
        // Rows of x and dy lie a multiple of 4 KiB apart in wide layers
        // and would share L1 sets: copy the block's rows of the tile close
        // together first.
        Func x_block = input.in(block_sum), dy_block = dy.in(block_sum);
        x_block.compute_at(total, b).vectorize(x_block.args()[0], block_of(IT, {V, 4}));
        dy_block.compute_at(total, b).vectorize(dy_block.args()[0], V);
        block_sum.compute_at(total, oo).vectorize(o, V).unroll(i);
        block_sum.update()
            .split(o, ol, ov, V)
            .reorder(ov, ol, i, k)
            .vectorize(ov)
            .unroll(ol)
            .unroll(i);
    }

    void by_row_slices(int ob, int ib) {
        const int CI = in_channels, CO = out_channels;
        // Rows per block: the block of x and dy in about 24 KiB.
        const int KB = std::max(8, std::min(128, 6144 / (CI + CO)));
        Expr rows = input.dim(1).extent();
        Expr blocks_per_chunk = ((rows + kChunks - 1) / kChunks + KB - 1) / KB;
        RDom k(0, KB, "k");
        Expr row = (chunk * blocks_per_chunk + block) * KB + k;
        k.where(row < rows);
        Expr at = min(row, rows - 1);
        Func block_sum("block_sum"), partial("partial");
        block_sum(o, i, chunk, block) = 0.0f;
        block_sum(o, i, chunk, block) += input(i, at) * dy(o, at);
        RDom b(0, blocks_per_chunk, "b");
        partial(o, i, chunk) = 0.0f;
        partial(o, i, chunk) += block_sum(o, i, chunk, b);
        RDom q(0, kChunks, "q");
        Func total("total");
        total(o, i) = 0.0f;
        total(o, i) += partial(o, i, q);
        output(o, i) = total(o, i);
        constrain_layouts();
        if (auto_schedule)
            return;
        const int V = natural_vector_size<float>();
        const int vec = ob % V == 0 ? V : 1;
        Var oo("oo"), oi("oi"), io("io"), ii("ii");
        partial.compute_root().parallel(chunk).vectorize(o, block_of(CO, {V}));
        partial.update()
            .tile(o, i, oo, io, oi, ii, ob, ib)
            .reorder(oi, ii, oo, io, b, chunk)
            .vectorize(oi, vec)
            .unroll(ii)
            .parallel(chunk);
        block_sum.compute_at(partial, oo).vectorize(o, vec).unroll(i);
        block_sum.update().reorder(o, i, k).vectorize(o, vec).unroll(i);
        output.compute_root().parallel(i).vectorize(o, block_of(CO, {V}));
        total.compute_at(output, i).vectorize(o, block_of(CO, {V}));
        total.update().reorder(o, q).vectorize(o, block_of(CO, {V}));
    }

    Var o{"o"}, i{"i"}, chunk{"chunk"}, block{"block"};
};

// The parameters both convolution gradients share: the forward
// convolution's channels, groups and window, and its input's size.
template <typename T>
class ConvGradient : public Generator<T> {
public:
    GeneratorParam<bool> depthwise{"depthwise", true};
    GeneratorParam<int> groups{"groups", 1};
    GeneratorParam<int> in_channels{"in_channels", 64};
    GeneratorParam<int> out_channels{"out_channels", 64};
    GeneratorParam<int> kernel_h{"kernel_h", 3}, kernel_w{"kernel_w", 3};
    GeneratorParam<int> stride_h{"stride_h", 1}, stride_w{"stride_w", 1};
    GeneratorParam<int> pad_h{"pad_h", 1}, pad_w{"pad_w", 1};
    // The forward input's spatial size.
    GeneratorParam<int> height{"height", 56}, width{"width", 56};

protected:
    struct Window {
        int CI, CO, KH, KW, SH, SW, PH, PW, H, W, OH, OW;
    };
    Window window() const {
        Window w;
        w.CI = in_channels, w.CO = out_channels, w.KH = kernel_h, w.KW = kernel_w;
        w.SH = stride_h, w.SW = stride_w, w.PH = pad_h, w.PW = pad_w;
        w.H = height, w.W = width;
        w.OH = (w.H + 2 * w.PH - w.KH) / w.SH + 1;
        w.OW = (w.W + 2 * w.PW - w.KW) / w.SW + 1;
        return w;
    }
};

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

HALIDE_REGISTER_GENERATOR(LayerNormGrad, layernorm_grad)
HALIDE_REGISTER_GENERATOR(ActivationGrad, activation_grad)
HALIDE_REGISTER_GENERATOR(ChannelSum, channel_sum)
HALIDE_REGISTER_GENERATOR(LinearGradWeight, linear_grad_weight)
HALIDE_REGISTER_GENERATOR(ConvGradInput, conv_grad_input)
HALIDE_REGISTER_GENERATOR(ConvGradFilter, conv_grad_filter)
HALIDE_REGISTER_GENERATOR(QDWConvGrad, qdwconv_grad)
HALIDE_REGISTER_GENERATOR(AvgPoolGrad, avgpool_grad)
HALIDE_REGISTER_GENERATOR(SoftmaxCrossEntropy, softmax_cross_entropy)
