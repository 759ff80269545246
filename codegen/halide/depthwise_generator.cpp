// Depthwise and quadratic depthwise convolution, with the layer norm before
// and the layer scale and residual add after fused in.
//
//   y = [residual + gamma ⊙] (xa ⊙ xb + xc)   (quadratic)   or   xa
//   xa = ba + Σ_r wa[r] · pad(LN(x))[p·s + r − pad]     (xb, xc alike)
//
// The input rows a tile needs are normalised and zero-padded once into a
// scratch buffer; the three filter responses are accumulated together in
// registers from the same loaded taps, so x is read once and neither xa, xb,
// xa⊙xb nor xc is ever stored.
#include "qdsl_generator_common.h"

using namespace Halide;

namespace {

class Depthwise : public Generator<Depthwise> {
public:
    GeneratorParam<int> channels{"channels", 64};
    GeneratorParam<int> kernel_h{"kernel_h", 7};
    GeneratorParam<int> kernel_w{"kernel_w", 7};
    GeneratorParam<int> stride_h{"stride_h", 1};
    GeneratorParam<int> stride_w{"stride_w", 1};
    GeneratorParam<int> pad_h{"pad_h", 3};
    GeneratorParam<int> pad_w{"pad_w", 3};
    GeneratorParam<bool> norm{"norm", false};
    GeneratorParam<float> eps{"eps", 1e-6f};
    GeneratorParam<bool> quadratic{"quadratic", true};
    GeneratorParam<bool> bias{"bias", true};
    GeneratorParam<bool> scale_residual{"scale_residual", false};
    // Taps read turned by 180°: with stride 1 this convolution of dy is
    // the input gradient of the forward one.
    GeneratorParam<bool> flip_filter{"flip_filter", false};
    // Typical spatial size, for the schedule and the autoscheduler.
    GeneratorParam<int> height{"height", 56};
    GeneratorParam<int> width{"width", 56};
    // Schedule knobs: output pixels per register block and output rows per
    // parallel task (0: choose).
    GeneratorParam<int> block_pixels{"block_pixels", 0};
    GeneratorParam<int> tile_rows{"tile_rows", 0};

    Input<Buffer<float, 4>> input{"input"};  // (c, x, y, n)
    Output<Buffer<float, 4>> output{"output"};

    void configure() {
        if (norm) {
            norm_scale = add_input<Buffer<float, 1>>("norm_scale");
            norm_offset = add_input<Buffer<float, 1>>("norm_offset");
        }
        qdsl_gen::add_filter_inputs(*this, quadratic, bias, weights, biases);
        if (scale_residual) {
            gamma = add_input<Buffer<float, 1>>("gamma");
            residual = add_input<Buffer<float, 4>>("residual");
        }
    }

    void generate() {
        const int C = channels;
        Expr W = input.dim(1).extent(), H = input.dim(2).extent();

        // The normalised input, zero outside the image.
        Func source("source");
        source(c, x, y, n) = input(c, x, y, n);
        Func normed = source;
        if (norm) {
            normed = qdsl_gen::layer_norm(source, C, eps, *norm_scale, *norm_offset,
                                          mean, inv_std, "normed",
                                          qdsl_gen::lane_sums(get_target(), auto_schedule));
        }
        padded = BoundaryConditions::constant_exterior(
            normed, 0.0f, {{0, C}, {0, W}, {0, H}});

        // All filter responses in one reduction: each tap is loaded once.
        int filters = quadratic ? 3 : 1;
        for (int i = 0; i < filters; ++i) {
            Func w("filter_" + std::to_string(i));
            if (flip_filter)
                w(c, x, y) = (*weights[i])(c, kernel_w - 1 - x, kernel_h - 1 - y);
            else
                w(c, x, y) = (*weights[i])(c, x, y);
            filter.push_back(w);
        }
        RDom r(0, kernel_w, 0, kernel_h, "r");
        Expr tap = padded(c, x * stride_w - pad_w + r.x, y * stride_h - pad_h + r.y, n);
        Expr value;
        if (filters == 3) {
            std::vector<Expr> init, update;
            for (int i = 0; i < 3; ++i)
                init.push_back(bias ? Expr((*biases[i])(c)) : Expr(0.0f));
            acc(c, x, y, n) = Tuple(init);
            for (int i = 0; i < 3; ++i)
                update.push_back(acc(c, x, y, n)[i] + filter[i](c, r.x, r.y) * tap);
            acc(c, x, y, n) = Tuple(update);
            value = acc(c, x, y, n)[0] * acc(c, x, y, n)[1] + acc(c, x, y, n)[2];
        } else {
            acc(c, x, y, n) = bias ? Expr((*biases[0])(c)) : Expr(0.0f);
            acc(c, x, y, n) += filter[0](c, r.x, r.y) * tap;
            value = acc(c, x, y, n);
        }
        if (scale_residual)
            value = (*residual)(c, x, y, n) + (*gamma)(c) * value;
        output(c, x, y, n) = value;
        this->r = r;

        declare_shapes();
        if (auto_schedule)
            return;
        if (get_target().has_gpu_feature())
            schedule_gpu();
        else
            schedule_cpu();
    }

private:
    Var c{"c"}, x{"x"}, y{"y"}, n{"n"};
    Func acc{"acc"}, padded{"padded"}, mean{"mean"}, inv_std{"inv_std"};
    RDom r;
    std::vector<Func> filter;
    std::vector<Input<Buffer<float, 3>> *> weights;
    std::vector<Input<Buffer<float, 1>> *> biases;
    Input<Buffer<float, 1>> *norm_scale = nullptr, *norm_offset = nullptr, *gamma = nullptr;
    Input<Buffer<float, 4>> *residual = nullptr;

    void declare_shapes() {
        const int C = channels;
        int out_w = (int(width) + 2 * pad_w - kernel_w) / stride_w + 1;
        int out_h = (int(height) + 2 * pad_h - kernel_h) / stride_h + 1;
        input.dim(0).set_bounds(0, C).set_stride(1);
        input.dim(1).set_stride(C);
        output.dim(0).set_bounds(0, C).set_stride(1);
        output.dim(1).set_stride(C);
        input.set_estimates({{0, C}, {0, width}, {0, height}, {0, 8}});
        output.set_estimates({{0, C}, {0, out_w}, {0, out_h}, {0, 8}});
        for (auto *w : weights)
            qdsl_gen::dense_depthwise_filter(*w, C, kernel_w, kernel_h);
        for (auto *b : biases) {
            b->dim(0).set_bounds(0, C);
            b->set_estimates({{0, C}});
        }
        for (auto *v : {norm_scale, norm_offset, gamma})
            if (v) {
                v->dim(0).set_bounds(0, C);
                v->set_estimates({{0, C}});
            }
        if (residual) {
            residual->dim(0).set_bounds(0, C).set_stride(1);
            residual->dim(1).set_stride(C);
            residual->set_estimates({{0, C}, {0, out_w}, {0, out_h}, {0, 8}});
        }
    }

    // CPU: channels in vectors, a few output pixels per step sharing the
    // loaded filter taps, rows of tiles in parallel over the batch.
    void schedule_cpu() {
        const int C = channels;
        const int V = natural_vector_size<float>();
        // One vector of channels for 3 pixels and 3 filters: 9 accumulators,
        // 3 filter taps and an input vector stay within the 16 AVX2
        // registers; each tap's input is loaded once for three FMAs and each
        // filter tap once for three pixels.
        const int cv = C % V == 0 ? V : 1;
        // Blocks never wider than the output: the last block of a row is
        // shifted inwards (recomputing a few pixels) instead of guarded,
        // which keeps the inner loop free of bounds checks.
        const int out_w = (int(width) + 2 * pad_w - kernel_w) / stride_w + 1;
        const int out_h = (int(height) + 2 * pad_h - kernel_h) / stride_h + 1;
        const int px = std::max(1, std::min(block_pixels > 0 ? int(block_pixels)
                                                             : (quadratic ? 3 : 6), out_w));
        // Two rows a task on large maps; half the map on small ones, where
        // two rows would normalise and pad each input row 4 times over (the
        // window's halo) for little work (N8·C256·14²: 1.12 → 1.08 ms).
        const int chosen_rows = out_h <= 16 ? (out_h + 1) / 2 : 2;
        const int rows = std::max(1, std::min(tile_rows > 0 ? int(tile_rows) : chosen_rows, out_h));
        Var xo("xo"), xi("xi"), yo("yo"), yi("yi"), co("co"), ci("ci"), t("t");
        output.compute_root()
            .split(y, yo, yi, rows, TailStrategy::ShiftInwards)
            .split(x, xo, xi, px, TailStrategy::ShiftInwards)
            .split(c, co, ci, cv)
            .reorder(ci, xi, xo, yi, co, yo, n)
            .fuse(yo, n, t)
            .parallel(t)
            .vectorize(ci)
            .unroll(xi);
        acc.compute_at(output, xo)
            .vectorize(c)
            .unroll(x);
        acc.update()
            .reorder(c, x, r.x, r.y)
            .vectorize(c)
            .unroll(x)
            .unroll(r.x);
        // The rows a tile reads, normalised and padded once. With 256
        // channels or more, one vector of channels at a time: that vector's
        // window then lies contiguous (8 KiB at 14×14) instead of one line
        // per pixel 1 KiB or more apart, where the loads of a block fell in
        // a few L1 sets (N8·C256·14²: 1.08 → 0.91 ms); the layer norm's
        // statistics are then computed once per tile for every vector. With
        // fewer channels whole pixels are copied (8% faster at C128·28²).
        std::vector<Var> p = padded.args();
        const bool by_vector = C >= 256 && cv == V;
        if (by_vector)
            padded.compute_at(output, co).vectorize(p[0], cv);
        else
            padded.compute_at(output, t).vectorize(p[0], V);
        // The filters are [kh, kw, C]: a vector's 49 taps lie C floats
        // apart, and at C = 256 (1 KiB) they fall in a handful of L1 sets
        // and evict each other on every block. Each vector of channels
        // copies its taps together first (1.9 → 1.4 ms at N8·C256·14²).
        for (Func &w : filter)
            w.compute_at(output, co).vectorize(w.args()[0], cv);
        if (norm) {
            LoopLevel statistics = by_vector ? LoopLevel(output, t) : LoopLevel(padded, p[1]);
            mean.compute_at(statistics);
            inv_std.compute_at(statistics);
        }
    }

    void schedule_gpu() {
        Var xo("xo"), xi("xi"), yo("yo"), yi("yi");
        output.compute_root()
            .gpu_tile(x, y, xo, yo, xi, yi, 8, 8, TailStrategy::GuardWithIf)
            .reorder(c, xi, yi, xo, yo, n);
        acc.compute_at(output, xi);
        acc.update().unroll(r.x);
        if (norm) {
            mean.compute_root().gpu_tile(x, y, Var("mxo"), Var("myo"), Var("mxi"), Var("myi"), 8, 8, TailStrategy::GuardWithIf);
            inv_std.compute_root().gpu_tile(x, y, Var("ixo"), Var("iyo"), Var("ixi"), Var("iyi"), 8, 8, TailStrategy::GuardWithIf);
        }
    }
};

}  // namespace

HALIDE_REGISTER_GENERATOR(Depthwise, depthwise)
