// Helpers shared by qdsl's Halide generators.
//
// Layout: qdsl tensors are NHWC and row-major, so a Halide buffer of one has
// its dimensions innermost first: (c, x, y, n). Weights keep qdsl's layouts:
// depthwise [kh, kw, C] is (c, kx, ky); linear [C_in, C_out] is (o, i);
// conv2d [kh, kw, C_in, C_out] is (o, i, kx, ky).
#ifndef QDSL_GENERATOR_COMMON_H
#define QDSL_GENERATOR_COMMON_H

#include <functional>

#include "Halide.h"

namespace qdsl_gen {

using namespace Halide;

// The filters of a layer as inputs named wa (and wb, wc for a quadratic
// layer), with biases ba (bb, bc) when `bias` is set.
template <typename Gen, typename WeightBuffer>
void add_filter_inputs(Gen &gen, bool quadratic, bool bias,
                       std::vector<GeneratorInput<WeightBuffer> *> &weights,
                       std::vector<GeneratorInput<Buffer<float, 1>> *> &biases) {
    const std::string names[] = {"a", "b", "c"};
    int count = quadratic ? 3 : 1;
    for (int k = 0; k < count; ++k)
        weights.push_back(gen.template add_input<WeightBuffer>("w" + names[k]));
    if (bias)
        for (int k = 0; k < count; ++k)
            biases.push_back(gen.template add_input<Buffer<float, 1>>("b" + names[k]));
}

// Layer normalisation over dimension 0 of `f` (the channels), as
// (x - mean) / sqrt(var + eps) * scale + offset with the biased variance,
// computed in two passes (mean, then squared deviations) so that a large
// mean does not cancel the variance away. `mean` and `inv_std` are returned
// for scheduling; they are computed per position.
//
// Each sum over the channels runs as 8 interleaved partial sums (when the
// channels divide by 8): one chain of dependent additions per position ran
// at the adder's latency, 256 of them in a row for a 256-channel pixel,
// longer than the product that follows. `sums` says how the lanes are
// scheduled (lane_sums below).
enum class LaneSums { Vector, Unrolled, Unscheduled };

// One vector on a CPU, unrolled in a GPU thread, and left to an
// autoscheduler when one schedules the generator.
inline LaneSums lane_sums(const Target &target, bool auto_schedule) {
    if (auto_schedule)
        return LaneSums::Unscheduled;
    return target.has_gpu_feature() ? LaneSums::Unrolled : LaneSums::Vector;
}

inline Func layer_norm(Func f, int channels, float eps, Func scale, Func offset,
                       Func &mean, Func &inv_std, const std::string &name, LaneSums sums) {
    std::vector<Var> args = f.args();
    std::vector<Var> rest(args.begin() + 1, args.end());
    std::vector<Expr> rest_exprs(rest.begin(), rest.end());
    const int lanes = channels % 8 == 0 ? 8 : 1;
    Var lane(name + "_lane");
    std::vector<Var> lane_args = {lane};
    lane_args.insert(lane_args.end(), rest.begin(), rest.end());
    RDom step(0, channels / lanes, name + "_step");
    RDom across(0, lanes, name + "_across");
    // sum over the channels of `term(channel)`, lane by lane, then across.
    auto channel_sum = [&](const std::string &what, const std::function<Expr(Expr)> &term) {
        Func partial(name + "_" + what + "_partial"), total(name + "_" + what);
        partial(lane_args) = 0.0f;
        partial(lane_args) += term(step.x * lanes + lane);
        if (sums != LaneSums::Unscheduled) {
            partial.compute_at(total, Var::outermost());
            partial.update().reorder(lane, step.x);
        }
        if (sums == LaneSums::Vector) {
            partial.vectorize(lane);
            partial.update().vectorize(lane);
        } else if (sums == LaneSums::Unrolled) {
            partial.unroll(lane);
            partial.update().unroll(lane);
        }
        std::vector<Expr> at_lane = {across.x};
        at_lane.insert(at_lane.end(), rest.begin(), rest.end());
        total(rest) = 0.0f;
        total(rest) += partial(at_lane);
        return total;
    };
    auto at = [&](Expr channel) {
        std::vector<Expr> a = {channel};
        a.insert(a.end(), rest_exprs.begin(), rest_exprs.end());
        return a;
    };
    mean = Func(name + "_mean");
    inv_std = Func(name + "_inv_std");
    Func sum = channel_sum("sum", [&](Expr c) { return f(at(c)); });
    mean(rest) = sum(rest) / channels;
    Func sum_sq = channel_sum("sum_sq", [&](Expr c) {
        Expr d = f(at(c)) - mean(rest_exprs);
        return d * d;
    });
    inv_std(rest) = 1.0f / sqrt(sum_sq(rest) / channels + eps);
    Func normed(name);
    normed(args) = (f(args) - mean(rest)) * inv_std(rest) * scale(args[0]) +
                   offset(args[0]);
    return normed;
}

// erf for the exact GELU, x/2 · (1 + erf(x/√2)), as x·P(x²)/Q(x²) with
// P and Q of degree 5, fitted for qdsl by weighted least squares iterated
// towards the minimax error on |x| ≤ 3.925, where erf reaches 1 to float
// precision (beyond it the input is clamped). Max abs error 1.6e-8 in exact
// arithmetic, 4e-7 evaluated in float32 (scripts/fit_erf.py refits them and
// checks these; test/codegen/gelu-erf-accuracy.test); 12 multiply-adds and one division
// and no exponential: the epilogue of a product with 64 input channels pays
// for every operation here.
inline Expr erf_approx(Expr x) {
    Expr c = clamp(x, -3.925f, 3.925f);
    Expr t = c * c;
    Expr p = 1.128379020e+00f + t * (1.929748925e-01f + t * (5.308464453e-02f +
             t * (3.876424457e-03f + t * (2.874937989e-04f + t * 2.030842505e-06f))));
    Expr q = 1.0f + t * (5.043511828e-01f + t * (1.151684112e-01f + t * (1.518854878e-02f +
             t * (1.189772790e-03f + t * 3.803125920e-05f))));
    return c * p / q;
}

inline Expr gelu(Expr x) {
    return 0.5f * x * (1.0f + erf_approx(x * 0.70710678118654752f));
}

// GELU′(x) = Φ(x) + x·φ(x), for the backward pass.
inline Expr gelu_derivative(Expr x) {
    Expr cdf = 0.5f * (1.0f + erf_approx(x * 0.70710678118654752f));
    Expr pdf = exp(-0.5f * x * x) * 0.39894228040143268f;
    return cdf + x * pdf;
}

// A depthwise filter (or its gradient) stored dense as [kh, kw, C]:
// constant strides keep every tap's address a compile-time offset.
template <typename B>
void dense_depthwise_filter(B &b, int channels, int kernel_w, int kernel_h) {
    b.dim(0).set_bounds(0, channels).set_stride(1);
    b.dim(1).set_bounds(0, kernel_w).set_stride(channels);
    b.dim(2).set_bounds(0, kernel_h).set_stride(channels * kernel_w);
    b.set_estimates({{0, channels}, {0, kernel_w}, {0, kernel_h}});
}

}  // namespace qdsl_gen

#endif  // QDSL_GENERATOR_COMMON_H
