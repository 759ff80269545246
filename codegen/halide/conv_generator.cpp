// Dense 2-D convolution (the stem's patchify and the downsampling layers),
// with a layer norm over its input channels before it (downsample) or over
// its output channels after it (stem) fused in.
//
//   out[n, y, x, o] = [LN_out] (bias[o] + Σ_{ky,kx,i} w[ky, kx, i, o] ·
//                     pad([LN_in] x)[n, y·s + ky − p, x·s + kx − p, g·Cg + i])
//
// with g the group of o. Output channels are vectorised; a pixel's outputs
// are complete before the output norm reads them.
#include "qdsl_generator_common.h"

using namespace Halide;

namespace {

class Conv : public Generator<Conv> {
public:
    GeneratorParam<int> in_channels{"in_channels", 3};
    GeneratorParam<int> out_channels{"out_channels", 64};
    GeneratorParam<int> kernel_h{"kernel_h", 4};
    GeneratorParam<int> kernel_w{"kernel_w", 4};
    GeneratorParam<int> stride_h{"stride_h", 4};
    GeneratorParam<int> stride_w{"stride_w", 4};
    GeneratorParam<int> pad_h{"pad_h", 0};
    GeneratorParam<int> pad_w{"pad_w", 0};
    GeneratorParam<int> groups{"groups", 1};
    GeneratorParam<bool> bias{"bias", true};
    GeneratorParam<bool> norm_input{"norm_input", false};
    GeneratorParam<float> eps_input{"eps_input", 1e-6f};
    GeneratorParam<bool> norm_output{"norm_output", false};
    GeneratorParam<float> eps_output{"eps_output", 1e-6f};
    GeneratorParam<int> height{"height", 224};
    GeneratorParam<int> width{"width", 224};

    Input<Buffer<float, 4>> input{"input"};  // (i, x, y, n)
    Output<Buffer<float, 4>> output{"output"};  // (o, x, y, n)

    void configure() {
        if (norm_input) {
            in_scale = add_input<Buffer<float, 1>>("in_scale");
            in_offset = add_input<Buffer<float, 1>>("in_offset");
        }
        weight = add_input<Buffer<float, 4>>("weight");  // (o, i, kx, ky)
        if (bias)
            bias_in = add_input<Buffer<float, 1>>("bias");
        if (norm_output) {
            out_scale = add_input<Buffer<float, 1>>("out_scale");
            out_offset = add_input<Buffer<float, 1>>("out_offset");
        }
    }

    void generate() {
        const int CI = in_channels, CO = out_channels;
        const int CG = CI / groups, OG = CO / groups;
        Func source("source");
        source(i, x, y, n) = input(i, x, y, n);
        Func src = source;
        if (norm_input)
            src = qdsl_gen::layer_norm(source, CI, eps_input, *in_scale, *in_offset,
                                       in_mean, in_inv_std, "normed_in",
                                       qdsl_gen::lane_sums(get_target(), auto_schedule));
        Expr W = input.dim(1).extent(), H = input.dim(2).extent();
        padded = BoundaryConditions::constant_exterior(src, 0.0f, {{0, CI}, {0, W}, {0, H}});

        RDom r(0, CG, 0, kernel_w, 0, kernel_h, "r");
        Expr group = groups == 1 ? Expr(0) : o / OG;
        conv(o, x, y, n) = bias ? Expr((*bias_in)(o)) : Expr(0.0f);
        conv(o, x, y, n) += (*weight)(o, r.x, r.y, r.z) *
                            padded(group * CG + r.x, x * stride_w - pad_w + r.y,
                                   y * stride_h - pad_h + r.z, n);
        Func result = conv;
        if (norm_output)
            result = qdsl_gen::layer_norm(conv, CO, eps_output, *out_scale, *out_offset,
                                          out_mean, out_inv_std, "normed_out",
                                          qdsl_gen::lane_sums(get_target(), auto_schedule));
        output(o, x, y, n) = result(o, x, y, n);
        reduction = r;

        declare_shapes();
        if (auto_schedule)
            return;
        if (get_target().has_gpu_feature())
            schedule_gpu();
        else
            schedule_cpu();
    }

private:
    Var i{"i"}, o{"o"}, x{"x"}, y{"y"}, n{"n"};
    Func conv{"conv"}, padded{"padded"};
    Func in_mean{"in_mean"}, in_inv_std{"in_inv_std"}, out_mean{"out_mean"}, out_inv_std{"out_inv_std"};
    RDom reduction;
    Input<Buffer<float, 4>> *weight = nullptr;
    Input<Buffer<float, 1>> *bias_in = nullptr, *in_scale = nullptr, *in_offset = nullptr,
                            *out_scale = nullptr, *out_offset = nullptr;

    void declare_shapes() {
        const int CI = in_channels, CO = out_channels, CG = CI / groups;
        int out_w = (int(width) + 2 * pad_w - kernel_w) / stride_w + 1;
        int out_h = (int(height) + 2 * pad_h - kernel_h) / stride_h + 1;
        input.dim(0).set_bounds(0, CI).set_stride(1);
        input.dim(1).set_stride(CI);
        output.dim(0).set_bounds(0, CO).set_stride(1);
        output.dim(1).set_stride(CO);
        input.set_estimates({{0, CI}, {0, width}, {0, height}, {0, 8}});
        output.set_estimates({{0, CO}, {0, out_w}, {0, out_h}, {0, 8}});
        weight->dim(0).set_bounds(0, CO).set_stride(1);
        weight->dim(1).set_bounds(0, CG).set_stride(CO);
        weight->dim(2).set_bounds(0, kernel_w).set_stride(CO * CG);
        weight->dim(3).set_bounds(0, kernel_h).set_stride(CO * CG * kernel_w);
        weight->set_estimates({{0, CO}, {0, CG}, {0, kernel_w}, {0, kernel_h}});
        for (auto *v : {bias_in, out_scale, out_offset})
            if (v) {
                v->dim(0).set_bounds(0, CO);
                v->set_estimates({{0, CO}});
            }
        for (auto *v : {in_scale, in_offset})
            if (v) {
                v->dim(0).set_bounds(0, CI);
                v->set_estimates({{0, CI}});
            }
    }

    void schedule_cpu() {
        const int CO = out_channels;
        const int V = natural_vector_size<float>();
        const int vo = CO % V == 0 ? V : 1;
        Var t("t");
        output.compute_root().fuse(y, n, t).parallel(t);
        if (norm_output) {
            // Every output channel of a pixel, then its norm.
            output.vectorize(o, vo);
            conv.compute_at(output, x).vectorize(o, vo);
            conv.update().reorder(o, reduction.x, reduction.y, reduction.z).vectorize(o, vo);
            out_mean.compute_at(output, x);
            out_inv_std.compute_at(output, x);
        } else {
            // Blocks of 4 pixels × 2 vectors of output channels.
            Var oo("oo"), oi("oi"), xo("xo"), xi("xi");
            const int block = CO % (2 * V) == 0 ? 2 * V : (CO % V == 0 ? V : CO);
            output.split(x, xo, xi, 4, TailStrategy::GuardWithIf)
                .split(o, oo, oi, block)
                .reorder(oi, xi, oo, xo)
                .vectorize(oi, vo)
                .unroll(xi);
            conv.compute_at(output, oo).vectorize(o, vo).unroll(x);
            conv.update()
                .reorder(o, x, reduction.x, reduction.y, reduction.z)
                .vectorize(o, vo)
                .unroll(x);
        }
        std::vector<Var> p = padded.args();
        padded.compute_at(output, t);
        if (norm_input) {
            in_mean.compute_at(padded, p[1]);
            in_inv_std.compute_at(padded, p[1]);
        }
    }

    void schedule_gpu() {
        Var xo("xo"), xi("xi"), yo("yo"), yi("yi");
        output.compute_root().gpu_tile(x, y, xo, yo, xi, yi, 8, 8, TailStrategy::GuardWithIf);
        conv.compute_at(output, xi);
        if (norm_input) {
            in_mean.compute_root().gpu_tile(in_mean.args()[0], in_mean.args()[1],
                                            Var("a"), Var("b"), Var("c"), Var("d"), 8, 8, TailStrategy::GuardWithIf);
            in_inv_std.compute_root().gpu_tile(in_inv_std.args()[0], in_inv_std.args()[1],
                                               Var("e"), Var("f"), Var("g"), Var("h"), 8, 8, TailStrategy::GuardWithIf);
        }
    }
};

}  // namespace

HALIDE_REGISTER_GENERATOR(Conv, conv)
