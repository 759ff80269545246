// The channel MLP of a block in one kernel: layer norm, expanding product,
// GELU, contracting product, layer scale and residual,
//
//   h[r, j]   = GELU(b1[j] + Σ_i LN(x)[r, i] · w1[i, j])        (j < hidden)
//   out[r, o] = residual[r, o] + γ[o] · (b2[o] + Σ_j h[r, j] · w2[j, o])
//
// computed tile of rows by tile of rows. The hidden tile (tile rows ×
// `hidden` channels) is written and read inside one task while it is in
// the core's L2; the two-kernel form (ln_pwconv_gelu, then
// pwconv_scale_residual) writes the whole hidden tensor — 4× the block's
// activation — to memory and reads it back.
//
// Each product is blocked in registers as in the pointwise generator (a few
// rows × the weights' panel of outputs; weights come packed in panels).
//
// In a training step the backward pass reads the contracting product
// (`keep_product`: returned as `product`, and the output becomes
// residual + γ ⊙ product in a second, C-wide pass) and, when the memory
// policy keeps it, the pre-GELU tensor (`keep_pre`: returned as `pre`,
// computed by a pass of its own that the tiles then read). The hidden
// tensor GELU(pre) is never stored.
#include "qdsl_generator_common.h"

using namespace Halide;

namespace {

class MLP : public Generator<MLP> {
public:
    GeneratorParam<int> channels{"channels", 64};
    GeneratorParam<int> hidden{"hidden", 256};
    GeneratorParam<float> eps{"eps", 1e-6f};
    GeneratorParam<bool> bias{"bias", true};
    GeneratorParam<bool> bias2{"bias2", true};
    // Output channels per register block of each product (the packing of
    // w1 and w2; codegen/KernelCalls.cpp linearPanel).
    GeneratorParam<int> panel{"panel", 16};
    GeneratorParam<int> panel2{"panel2", 16};
    GeneratorParam<bool> keep_product{"keep_product", false};
    GeneratorParam<bool> keep_pre{"keep_pre", false};
    // Rows per task when the kernel has rows enough for every core, and
    // when it has few (a late stage at batch 1). 48 rows (8 register
    // blocks of 6) keep a task's hidden tile (48 × hidden floats: 48 KiB
    // at C = 64, 384 KiB at C = 512) and its normalised rows within a 1 MiB
    // L2 (2-vCPU EPYC here); 12, 24, 48 and 96 rows measured within 3% of
    // each other at C = 64 over 25088 rows, so the L1 is not what limits.
    GeneratorParam<int> tile_rows{"tile_rows", 48};
    GeneratorParam<int> small_tile_rows{"small_tile_rows", 24};
    // Typical number of rows, for the autoscheduler.
    GeneratorParam<int> rows{"rows", 3136};

    Input<Buffer<float, 2>> input{"input"};            // (i, r)
    Input<Buffer<float, 1>> norm_scale{"norm_scale"};  // (i)
    Input<Buffer<float, 1>> norm_offset{"norm_offset"};
    Input<Buffer<float, 3>> w1{"w1"};  // packed (p, i, j / panel)
    Output<Buffer<float, 2>> output{"output"};  // (o, r)

    void configure() {
        if (bias)
            b1 = add_input<Buffer<float, 1>>("b1");
        w2 = add_input<Buffer<float, 3>>("w2");  // packed (p, j, o / panel2)
        if (bias2)
            b2 = add_input<Buffer<float, 1>>("b2");
        gamma = add_input<Buffer<float, 1>>("gamma");
        residual = add_input<Buffer<float, 2>>("residual");
        if (keep_product)
            product = add_output<Buffer<float, 2>>("product");  // (o, r)
        if (keep_pre)
            pre = add_output<Buffer<float, 2>>("pre");  // (j, r)
    }

    void generate() {
        const int C = channels, H = hidden, P1 = panel, P2 = panel2;
        Func source("source");
        source(i, r) = input(i, r);
        Func normed = qdsl_gen::layer_norm(source, C, eps, norm_scale, norm_offset, mean,
                                           inv_std, "normed",
                                           qdsl_gen::lane_sums(get_target(), auto_schedule));
        lhs(i, r) = normed(i, r);

        RDom k(0, C, "k");
        expand(j, r) = bias ? Expr((*b1)(j)) : Expr(0.0f);
        expand(j, r) += w1(j % P1, k, j / P1) * lhs(k, r);
        if (pre) {
            (*pre)(j, r) = expand(j, r);
            hidden_tile(j, r) = qdsl_gen::gelu((*pre)(j, r));
        } else {
            hidden_tile(j, r) = qdsl_gen::gelu(expand(j, r));
        }

        RDom m(0, H, "m");
        contract(o, r) = bias2 ? Expr((*b2)(o)) : Expr(0.0f);
        contract(o, r) += (*w2)(o % P2, m, o / P2) * hidden_tile(m, r);
        if (product) {
            (*product)(o, r) = contract(o, r);
            output(o, r) = (*residual)(o, r) + (*gamma)(o) * (*product)(o, r);
        } else {
            output(o, r) = (*residual)(o, r) + (*gamma)(o) * contract(o, r);
        }
        reduce_expand = k;
        reduce_contract = m;

        declare_shapes();
        if (auto_schedule)
            return;
        if (get_target().has_gpu_feature())
            schedule_gpu();
        else
            schedule_cpu();
    }

private:
    Var i{"i"}, j{"j"}, o{"o"}, r{"r"};
    Func lhs{"lhs"}, mean{"mean"}, inv_std{"inv_std"};
    Func expand{"expand"}, hidden_tile{"hidden_tile"}, contract{"contract"};
    RDom reduce_expand, reduce_contract;
    Input<Buffer<float, 1>> *b1 = nullptr, *b2 = nullptr, *gamma = nullptr;
    Input<Buffer<float, 3>> *w2 = nullptr;
    Input<Buffer<float, 2>> *residual = nullptr;
    Output<Buffer<float, 2>> *product = nullptr, *pre = nullptr;

    void declare_shapes() {
        const int C = channels, H = hidden, P1 = panel, P2 = panel2;
        input.dim(0).set_bounds(0, C).set_stride(1);
        input.dim(1).set_stride(C);
        output.dim(0).set_bounds(0, C).set_stride(1);
        output.dim(1).set_stride(C);
        residual->dim(0).set_bounds(0, C).set_stride(1);
        residual->dim(1).set_stride(C);
        input.set_estimates({{0, C}, {0, rows}});
        output.set_estimates({{0, C}, {0, rows}});
        if (product) {
            product->dim(0).set_bounds(0, C).set_stride(1);
            product->dim(1).set_stride(C);
            product->set_estimates({{0, C}, {0, rows}});
        }
        if (pre) {
            pre->dim(0).set_bounds(0, H).set_stride(1);
            pre->dim(1).set_stride(H);
            pre->set_estimates({{0, H}, {0, rows}});
        }
        residual->set_estimates({{0, C}, {0, rows}});
        auto packed = [](Input<Buffer<float, 3>> &w, int in, int out, int p) {
            w.dim(0).set_bounds(0, p).set_stride(1);
            w.dim(1).set_bounds(0, in).set_stride(p);
            w.dim(2).set_bounds(0, out / p).set_stride(p * in);
            w.set_estimates({{0, p}, {0, in}, {0, out / p}});
        };
        packed(w1, C, H, P1);
        packed(*w2, H, C, P2);
        auto vector = [](Input<Buffer<float, 1>> *v, int n) {
            if (!v)
                return;
            v->dim(0).set_bounds(0, n);
            v->set_estimates({{0, n}});
        };
        vector(&norm_scale, C);
        vector(&norm_offset, C);
        vector(b1, H);
        vector(b2, C);
        vector(gamma, C);
    }

    // Rows of a register block for a panel of `p` outputs: 12 accumulators
    // (6 rows × 2 vectors, or 4 rows × 3 vectors).
    static int block_rows_for(int p, int V) { return p >= 3 * V ? 4 : 6; }

    // Per task: a tile of rows, normalised into `lhs`, expanded into the
    // hidden tile (each weight panel of w1 in L1 across the tile's row
    // blocks), then contracted block by block into the output.
    void schedule_cpu() {
        const int V = natural_vector_size<float>();
        const int P1 = panel, P2 = panel2;
        const int v1 = P1 % V == 0 ? V : 1, v2 = P2 % V == 0 ? V : 1;
        const int rows1 = block_rows_for(P1, V), rows2 = block_rows_for(P2, V);
        Var t("t"), ri("ri"), rii("rii"), oo("oo"), oi("oi");
        auto tile = [&](Stage stage, int tile) {
            stage.split(r, t, ri, tile, TailStrategy::GuardWithIf)
                .split(ri, ri, rii, rows2, TailStrategy::GuardWithIf)
                .split(o, oo, oi, P2, TailStrategy::GuardWithIf)
                .reorder(oi, rii, ri, oo, t)
                .parallel(t)
                .vectorize(oi, v2)
                .unroll(rii);
        };
        // The loop nest of the tiles: the output's, or the product's when
        // the product is returned (the output is then a pass of its own).
        Func tiles = product ? Func(*product) : Func(output);
        tiles.compute_root();
        const int big = tile_rows, small = small_tile_rows;
        // Tiles of `big` rows keep 2 threads busy from 32 tiles on; below
        // that, smaller tiles spread the rows (weights re-read more often).
        tile(tiles.specialize(tiles.output_buffer().dim(1).extent() >= 32 * big), big);
        tile(tiles, small);
        if (product) {
            Var ro("ro"), rr("rr");
            output.compute_root()
                .split(r, ro, rr, 64, TailStrategy::GuardWithIf)
                .parallel(ro)
                .vectorize(o, V, TailStrategy::GuardWithIf);
        }

        contract.compute_at(tiles, ri).vectorize(o, v2).unroll(r);
        contract.update()
            .reorder(o, r, reduce_contract.x)
            .vectorize(o, v2)
            .unroll(o)
            .unroll(r);

        // The expanding product, register block by register block: into the
        // hidden tile, or (keep_pre) into `pre` in a pass of its own.
        Var jo("jo"), ji("ji"), hri("hri"), hrii("hrii"), ht("ht");
        Func expanded = pre ? Func(*pre) : hidden_tile;
        if (pre) {
            pre->compute_root()
                .split(r, ht, r, big, TailStrategy::GuardWithIf)
                .parallel(ht);
            hidden_tile.compute_at(tiles, t).vectorize(j, V);
            lhs.compute_at(*pre, ht).vectorize(i, V);
        } else {
            hidden_tile.compute_at(tiles, t);
            lhs.compute_at(tiles, t).vectorize(i, V);
        }
        expanded.split(r, hri, hrii, rows1, TailStrategy::GuardWithIf)
            .split(j, jo, ji, P1, TailStrategy::GuardWithIf)
            .reorder(ji, hrii, hri, jo)
            .vectorize(ji, v1)
            .unroll(hrii);
        expand.compute_at(expanded, hri).vectorize(j, v1).unroll(r);
        expand.update()
            .reorder(j, r, reduce_expand.x)
            .vectorize(j, v1)
            .unroll(j)
            .unroll(r);

        mean.compute_at(lhs, r);
        inv_std.compute_at(lhs, r);
    }

    // OpenCL (the VPU stand-in): the two products as separate passes over
    // the rows, the hidden tensor in device memory.
    void schedule_gpu() {
        Var oo("oo"), oi("oi"), ro("ro"), rio("rio");
        output.compute_root().gpu_tile(o, r, oo, ro, oi, rio, 16, 16, TailStrategy::GuardWithIf);
        Func tiles = output;
        if (product) {
            tiles = *product;
            product->compute_root().gpu_tile(o, r, oo, ro, oi, rio, 16, 16,
                                             TailStrategy::GuardWithIf);
        }
        contract.compute_at(tiles, oi);
        hidden_tile.compute_root().gpu_tile(j, r, oo, ro, oi, rio, 16, 16,
                                            TailStrategy::GuardWithIf);
        Func expanded = hidden_tile;
        if (pre) {
            expanded = *pre;
            pre->compute_root().gpu_tile(j, r, oo, ro, oi, rio, 16, 16,
                                         TailStrategy::GuardWithIf);
        }
        expand.compute_at(expanded, oi);
        lhs.compute_root();
        Var lo("lo"), li("li");
        lhs.gpu_tile(r, lo, li, 64, TailStrategy::GuardWithIf);
    }
};

}  // namespace

HALIDE_REGISTER_GENERATOR(MLP, mlp)
