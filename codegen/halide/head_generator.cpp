// The classifier head: global average pool, layer norm, linear map.
//
//   logits[n, k] = b[k] + Σ_c w[c, k] · LN(mean_{y,x} x[n, y, x, c])[c]
#include "qdsl_generator_common.h"

using namespace Halide;

namespace {

class Head : public Generator<Head> {
public:
    GeneratorParam<int> channels{"channels", 512};
    GeneratorParam<int> classes{"classes", 1000};
    GeneratorParam<float> eps{"eps", 1e-6f};
    GeneratorParam<bool> bias{"bias", true};

    Input<Buffer<float, 4>> input{"input"};  // (c, x, y, n)
    Input<Buffer<float, 1>> norm_scale{"norm_scale"};
    Input<Buffer<float, 1>> norm_offset{"norm_offset"};
    Input<Buffer<float, 2>> weight{"weight"};  // [C, classes] as (k, c)
    Output<Buffer<float, 2>> output{"output"};  // (k, n)

    void configure() {
        if (bias)
            bias_in = add_input<Buffer<float, 1>>("bias");
    }

    void generate() {
        const int C = channels, K = classes;
        Expr W = input.dim(1).extent(), H = input.dim(2).extent();
        RDom p(0, W, 0, H, "p");
        pooled(c, n) = 0.0f;
        pooled(c, n) += input(c, p.x, p.y, n);
        Func mean_value("mean_value");
        mean_value(c, n) = pooled(c, n) / cast<float>(W * H);
        Func normed = qdsl_gen::layer_norm(mean_value, C, eps, norm_scale, norm_offset,
                                           mean, inv_std, "normed",
                                           qdsl_gen::lane_sums(get_target(), auto_schedule));
        RDom r(0, C, "r");
        logits(k, n) = bias ? Expr((*bias_in)(k)) : Expr(0.0f);
        logits(k, n) += weight(k, r) * normed(r, n);
        output(k, n) = logits(k, n);

        input.dim(0).set_bounds(0, C).set_stride(1);
        input.dim(1).set_stride(C);
        output.dim(0).set_bounds(0, K).set_stride(1);
        weight.dim(0).set_bounds(0, K).set_stride(1);
        weight.dim(1).set_bounds(0, C).set_stride(K);
        norm_scale.dim(0).set_bounds(0, C);
        norm_offset.dim(0).set_bounds(0, C);
        input.set_estimates({{0, C}, {0, 7}, {0, 7}, {0, 8}});
        output.set_estimates({{0, K}, {0, 8}});
        weight.set_estimates({{0, K}, {0, C}});
        norm_scale.set_estimates({{0, C}});
        norm_offset.set_estimates({{0, C}});
        if (bias_in) {
            bias_in->dim(0).set_bounds(0, K);
            bias_in->set_estimates({{0, K}});
        }
        if (auto_schedule)
            return;
        const int V = natural_vector_size<float>();
        if (get_target().has_gpu_feature()) {
            Var ko("ko"), ki("ki");
            output.compute_root().gpu_tile(k, ko, ki, 64, TailStrategy::GuardWithIf);
            pooled.compute_root().gpu_tile(c, Var("co"), Var("ci"), 64, TailStrategy::GuardWithIf);
            normed.compute_root().gpu_tile(normed.args()[0], Var("no"), Var("ni"), 64,
                                           TailStrategy::GuardWithIf);
            mean.compute_root().gpu_tile(mean.args()[0], Var("mo"), Var("mi"), 8,
                                         TailStrategy::GuardWithIf);
            inv_std.compute_root().gpu_tile(inv_std.args()[0], Var("io"), Var("ii"), 8,
                                            TailStrategy::GuardWithIf);
            return;
        }
        // Vectorise only what divides evenly: a vector past the last class
        // would read weights that do not exist.
        const int vc = C % V == 0 ? V : 1, vk = K % V == 0 ? V : 1;
        pooled.compute_root().vectorize(c, vc).parallel(n);
        pooled.update().reorder(c, p.x, p.y, n).vectorize(c, vc).parallel(n);
        normed.compute_root().vectorize(normed.args()[0], vc);
        // The statistics once per example, not once per channel.
        mean.compute_at(normed, normed.args()[1]);
        inv_std.compute_at(normed, normed.args()[1]);
        output.compute_root().vectorize(k, vk).parallel(n);
        logits.compute_at(output, n).vectorize(k, vk);
        logits.update().reorder(k, r, n).vectorize(k, vk);
    }

private:
    Var c{"c"}, k{"k"}, n{"n"};
    Func pooled{"pooled"}, logits{"logits"}, mean{"mean"}, inv_std{"inv_std"};
    Input<Buffer<float, 1>> *bias_in = nullptr;
};

}  // namespace

HALIDE_REGISTER_GENERATOR(Head, head)
