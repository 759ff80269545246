// Helpers shared by qdsl's Halide generators.
//
// Layout: qdsl tensors are NHWC and row-major, so a Halide buffer of one has
// its dimensions innermost first: (c, x, y, n). Weights keep qdsl's layouts:
// depthwise [kh, kw, C] is (c, kx, ky); linear [C_in, C_out] is (o, i);
// conv2d [kh, kw, C_in, C_out] is (o, i, kx, ky).
#ifndef QDSL_GENERATOR_COMMON_H
#define QDSL_GENERATOR_COMMON_H

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
inline Func layer_norm(Func f, int channels, float eps, Func scale, Func offset,
                       Func &mean, Func &inv_std, const std::string &name) {
    std::vector<Var> args = f.args();
    std::vector<Var> rest(args.begin() + 1, args.end());
    RDom r(0, channels, name + "_r");
    std::vector<Expr> at_r = {r.x};
    at_r.insert(at_r.end(), rest.begin(), rest.end());
    std::vector<Expr> rest_exprs(rest.begin(), rest.end());
    mean = Func(name + "_mean");
    inv_std = Func(name + "_inv_std");
    Func sum(name + "_sum"), sum_sq(name + "_sum_sq");
    sum(rest) = 0.0f;
    sum(rest) += f(at_r);
    mean(rest) = sum(rest) / channels;
    Expr d = f(at_r) - mean(rest_exprs);
    sum_sq(rest) = 0.0f;
    sum_sq(rest) += d * d;
    inv_std(rest) = 1.0f / sqrt(sum_sq(rest) / channels + eps);
    Func normed(name);
    normed(args) = (f(args) - mean(rest)) * inv_std(rest) * scale(args[0]) +
                   offset(args[0]);
    return normed;
}

// The exact GELU, x/2 · (1 + erf(x/√2)), with erf from Abramowitz-Stegun
// 7.1.26 refined: max abs error 1.5e-7, which float32 cannot tell apart.
inline Expr erf_approx(Expr x) {
    Expr s = select(x < 0, -1.0f, 1.0f);
    Expr a = abs(x);
    Expr t = 1.0f / (1.0f + 0.3275911f * a);
    Expr poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f +
                t * (-1.453152027f + t * 1.061405429f))));
    return s * (1.0f - poly * exp(-a * a));
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
