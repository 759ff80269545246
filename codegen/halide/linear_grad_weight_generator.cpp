// The linear_grad_weight generator of a training step's backward pass; its helpers are
// in qdsl_gradient_common.h.
#include "qdsl_gradient_common.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

using namespace Halide;
using namespace qdsl_gen;

namespace {

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
        // 4 or 8 inputs: 8 (or 12) accumulators of AVX2's 16 registers,
        // 16 of AVX-512's 32.
        const int ib = V >= 16 ? block_of(CI, {8, 4, 2}) : block_of(CI, {4, 2});
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

}  // namespace

HALIDE_REGISTER_GENERATOR(LinearGradWeight, linear_grad_weight)
