// Helpers shared by the generators of the backward pass (one generator per
// gradient op that the forward generators do not already compute: the
// gradient of a linear layer's input is a pointwise product with the
// transposed weight, and the elementwise generator serves the sums and
// products of the chain rule).
//
// Layouts as in qdsl_generator_common.h. Every reduction over the batch
// (weight gradients, channel sums) is split into `kChunks` slices of rows
// or examples summed in parallel, then added up in a fixed order, so a
// gradient does not depend on the number of threads.
#ifndef QDSL_GRADIENT_COMMON_H
#define QDSL_GRADIENT_COMMON_H

#include "qdsl_generator_common.h"

#include <initializer_list>
#include <string>

namespace qdsl_gen {

using namespace Halide;

inline constexpr int kChunks = 16;

// The largest of `options` that divides `extent`, else 1.
inline int block_of(int extent, std::initializer_list<int> options) {
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

}  // namespace qdsl_gen

#endif  // QDSL_GRADIENT_COMMON_H
