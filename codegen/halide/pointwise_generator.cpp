// Pointwise convolution (a matrix product over the channel axis), with the
// layer norm before it and GELU, or the layer scale and residual add, after
// it fused in; also the quadratic linear layer (Wa x)⊙(Wb x) + Wc x.
//
//   out[r, o] = epilogue(bias[o] + Σ_i prologue(x)[r, i] · w[i, o])
//
// Rows are pixels (N·H·W of an NHWC tensor) or examples; the caller passes
// any tensor as a 2-D buffer (c, rows). The product is blocked in registers
// (a few rows × three vectors of outputs) and tiled for the caches; the
// normalised rows of a tile are computed once into a scratch buffer, and the
// epilogue is applied to each accumulator block before it is stored.
#include "qdsl_generator_common.h"
#include "runtime/shipped/Contract.h"

using namespace Halide;
using qdsl::contract::Activation;

namespace {

class Pointwise : public Generator<Pointwise> {
public:
    GeneratorParam<int> in_channels{"in_channels", 64};
    GeneratorParam<int> out_channels{"out_channels", 256};
    GeneratorParam<bool> norm{"norm", false};
    GeneratorParam<float> eps{"eps", 1e-6f};
    GeneratorParam<bool> quadratic{"quadratic", false};
    GeneratorParam<bool> bias{"bias", true};
    // A qdsl::contract::Activation: none, GELU or ReLU.
    GeneratorParam<int> activation{"activation", int(Activation::None)};
    GeneratorParam<bool> scale_residual{"scale_residual", false};
    // The backward pass: the product times f′(pre) for the activation f
    // (an Activation) whose input `pre` was, fusing an activation's
    // gradient into the gradient of the next layer's input.
    GeneratorParam<int> activation_grad{"activation_grad", int(Activation::None)};
    // Output channels per register block; the weights come packed in panels
    // of this width (see below). 0: one vector.
    GeneratorParam<int> panel{"panel", 16};
    // Typical number of rows, for the autoscheduler.
    GeneratorParam<int> rows{"rows", 3136};

    Input<Buffer<float, 2>> input{"input"};  // (i, r)
    Output<Buffer<float, 2>> output{"output"};  // (o, r)

    void configure() {
        if (norm) {
            norm_scale = add_input<Buffer<float, 1>>("norm_scale");
            norm_offset = add_input<Buffer<float, 1>>("norm_offset");
        }
        qdsl_gen::add_filter_inputs(*this, quadratic, bias, weights, biases);
        if (scale_residual) {
            gamma = add_input<Buffer<float, 1>>("gamma");
            residual = add_input<Buffer<float, 2>>("residual");
        }
        if (activation_grad != int(Activation::None))
            pre = add_input<Buffer<float, 2>>("pre");
    }

    void generate() {
        const int CI = in_channels;
        Func source("source");
        source(i, r) = input(i, r);
        Func normed = source;
        if (norm)
            normed = qdsl_gen::layer_norm(source, CI, eps, *norm_scale, *norm_offset,
                                          mean, inv_std, "normed",
                                          qdsl_gen::lane_sums(get_target(), auto_schedule));
        lhs(i, r) = normed(i, r);

        RDom k(0, CI, "k");
        const int B = panel;
        int count = quadratic ? 3 : 1;
        for (int f = 0; f < count; ++f) {
            Func p("product_" + std::to_string(f));
            p(o, r) = bias ? Expr((*biases[f])(o)) : Expr(0.0f);
            // The weight [C_in, C_out] arrives packed panel by panel,
            // [C_out / B][C_in][B] (Halide (pi, i, po)): a register block
            // then streams one contiguous panel instead of touching a new
            // page for every input channel. The model packs it once, when
            // it loads its weights.
            p(o, r) += (*weights[f])(o % B, k, o / B) * lhs(k, r);
            products.push_back(p);
        }
        Expr value = quadratic ? products[0](o, r) * products[1](o, r) + products[2](o, r)
                               : products[0](o, r);
        if (activation == int(Activation::Gelu))
            value = qdsl_gen::gelu(value);
        else if (activation == int(Activation::Relu))
            value = max(value, 0.0f);
        if (scale_residual)
            value = (*residual)(o, r) + (*gamma)(o) * value;
        if (activation_grad == int(Activation::Gelu))
            value = value * qdsl_gen::gelu_derivative((*pre)(o, r));
        else if (activation_grad == int(Activation::Relu))
            value = select((*pre)(o, r) > 0.0f, value, 0.0f);
        output(o, r) = value;
        reduction = k;

        declare_shapes();
        if (auto_schedule)
            return;
        if (get_target().has_gpu_feature())
            schedule_gpu();
        else
            schedule_cpu();
    }

private:
    Var i{"i"}, o{"o"}, r{"r"};
    Func lhs{"lhs"}, mean{"mean"}, inv_std{"inv_std"};
    std::vector<Func> products;
    RDom reduction;
    std::vector<Input<Buffer<float, 3>> *> weights;
    std::vector<Input<Buffer<float, 1>> *> biases;
    Input<Buffer<float, 1>> *norm_scale = nullptr, *norm_offset = nullptr, *gamma = nullptr;
    Input<Buffer<float, 2>> *residual = nullptr, *pre = nullptr;

    void declare_shapes() {
        const int CI = in_channels, CO = out_channels;
        input.dim(0).set_bounds(0, CI).set_stride(1);
        input.dim(1).set_stride(CI);
        output.dim(0).set_bounds(0, CO).set_stride(1);
        output.dim(1).set_stride(CO);
        input.set_estimates({{0, CI}, {0, rows}});
        output.set_estimates({{0, CO}, {0, rows}});
        const int B = panel;
        for (auto *w : weights) {
            w->dim(0).set_bounds(0, B).set_stride(1);
            w->dim(1).set_bounds(0, CI).set_stride(B);
            w->dim(2).set_bounds(0, CO / B).set_stride(B * CI);
            w->set_estimates({{0, B}, {0, CI}, {0, CO / B}});
        }
        for (auto *b : biases) {
            b->dim(0).set_bounds(0, CO);
            b->set_estimates({{0, CO}});
        }
        if (norm_scale) {
            for (auto *v : {norm_scale, norm_offset}) {
                v->dim(0).set_bounds(0, CI);
                v->set_estimates({{0, CI}});
            }
        }
        if (gamma) {
            gamma->dim(0).set_bounds(0, CO);
            gamma->set_estimates({{0, CO}});
            residual->dim(0).set_bounds(0, CO).set_stride(1);
            residual->dim(1).set_stride(CO);
            residual->set_estimates({{0, CO}, {0, rows}});
        }
        if (pre) {
            pre->dim(0).set_bounds(0, CO).set_stride(1);
            pre->dim(1).set_stride(CO);
            pre->set_estimates({{0, CO}, {0, rows}});
        }
    }

    // A register block of `block_rows` rows × `block_vectors` vectors of
    // outputs (12 accumulators for a linear layer on AVX2). For each tile of
    // `tile_rows` rows (in parallel), the loop over output blocks is outside
    // the loop over row blocks: one block's weight panel (C_in × 24 floats)
    // stays in L1 while every row block of the tile uses it, and the tile's
    // (normalised) inputs stay in L2.
    void schedule_cpu() {
        const int V = natural_vector_size<float>();
        const bool quad = quadratic;
        // 6 rows × 2 vectors (BLIS's Haswell shape) or 4 rows × 3 vectors:
        // 12 accumulators either way.
        const int block_o = panel;
        // A panel that is not a whole number of vectors (a small output) is
        // computed with scalars: a vector past its end would read the next
        // panel's weights, or none.
        const int vo = block_o % V == 0 ? V : 1;
        const int block_rows = quad ? 4 : (block_o >= 3 * V ? 4 : 6);
        const int tile_rows = 8 * block_rows;
        // Tasks are tiles of rows × groups of about 128 output channels, so
        // that a layer with few rows (a late stage at batch 1: 49 rows)
        // still keeps every core busy.
        const int CO = out_channels;
        const int panels = CO / block_o;
        const int group = std::max(1, std::min(panels, 128 / std::max(1, block_o)));
        Var ro("ro"), ri("ri"), rii("rii"), oo("oo"), og("og"), oi("oi"), t("t");
        // With tiles enough for every core the task is a whole tile (the
        // layer norm of its rows computed once); with few, a tile × a group.
        auto tile = [&](Stage stage, bool whole_tiles) {
            stage.split(r, ro, ri, tile_rows, TailStrategy::GuardWithIf)
                .split(ri, ri, rii, block_rows, TailStrategy::GuardWithIf)
                .split(o, oo, oi, block_o, TailStrategy::GuardWithIf)
                .split(oo, og, oo, group, TailStrategy::GuardWithIf)
                .reorder(oi, rii, ri, oo, og, ro);
            if (whole_tiles)
                stage.rename(ro, t);
            else
                stage.fuse(og, ro, t);
            stage.parallel(t).vectorize(oi, vo).unroll(rii);
        };
        output.compute_root();
        if (group < panels)
            tile(output.specialize(output.dim(1).extent() >= 16 * tile_rows), true);
        tile(output, false);
        for (Func &p : products) {
            p.compute_at(output, ri).vectorize(o, vo).unroll(r);
            p.update()
                .reorder(o, r, reduction.x)
                .vectorize(o, vo)
                .unroll(o)
                .unroll(r);
        }
        if (pre) {
            // The block's f'(pre) inputs copied close together before its
            // product rather than read in the epilogue, row by row 4 KiB
            // apart between the stores of the block's outputs: QuadraNet36-T's
            // pwconv_grad_gelu 8% faster at AVX-512 (stage 0: 22%), the same
            // at AVX2.
            Func pre_block = pre->in(output);
            pre_block.compute_at(output, ri)
                .vectorize(pre_block.args()[0], vo)
                .unroll(pre_block.args()[1]);
        }
        if (norm) {
            // The tile's rows normalised once per task.
            lhs.compute_at(output, t).vectorize(i, V);
            mean.compute_at(lhs, r);
            inv_std.compute_at(lhs, r);
        }
    }

    void schedule_gpu() {
        Var oo("oo"), oi("oi"), ro("ro"), ri("ri");
        output.compute_root().gpu_tile(o, r, oo, ro, oi, ri, 16, 16, TailStrategy::GuardWithIf);
        for (Func &p : products)
            p.compute_at(output, oi);
        if (norm) {
            lhs.compute_root();
            Var lo("lo"), li("li");
            lhs.gpu_tile(r, lo, li, 64, TailStrategy::GuardWithIf);
        }
    }
};

}  // namespace

HALIDE_REGISTER_GENERATOR(Pointwise, pointwise)
