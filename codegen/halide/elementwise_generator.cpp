// Layers that touch each element once: layer norm, GELU, ReLU, layer scale,
// sum and product of two tensors. The fused kernels cover these wherever a
// QuadraNet has them; this generator serves the ops a model uses on their
// own.
#include "qdsl_generator_common.h"

#include <cstdio>
#include <cstdlib>

using namespace Halide;

namespace {

class Elementwise : public Generator<Elementwise> {
public:
    // layernorm, gelu, relu, layerscale, add, mul
    GeneratorParam<std::string> op{"op", "gelu"};
    GeneratorParam<int> channels{"channels", 64};
    GeneratorParam<float> eps{"eps", 1e-6f};

    Input<Buffer<float, 2>> input{"input"};  // (c, rows)
    Output<Buffer<float, 2>> output{"output"};

    void configure() {
        const std::string kind = op;
        if (kind == "layernorm") {
            scale = add_input<Buffer<float, 1>>("scale");
            offset = add_input<Buffer<float, 1>>("offset");
        } else if (kind == "layerscale") {
            scale = add_input<Buffer<float, 1>>("scale");
        } else if (kind == "add" || kind == "mul") {
            other = add_input<Buffer<float, 2>>("other");
        }
    }

    void generate() {
        const std::string kind = op;
        const int C = channels;
        Func in("in");
        in(c, r) = input(c, r);
        Func mean("mean"), inv_std("inv_std");
        Expr value;
        if (kind == "layernorm") {
            Func normed = qdsl_gen::layer_norm(in, C, eps, *scale, *offset, mean, inv_std, "normed",
                                               qdsl_gen::lane_sums(get_target(), auto_schedule));
            value = normed(c, r);
        } else if (kind == "gelu") {
            value = qdsl_gen::gelu(in(c, r));
        } else if (kind == "relu") {
            value = max(in(c, r), 0.0f);
        } else if (kind == "layerscale") {
            value = in(c, r) * (*scale)(c);
        } else if (kind == "add") {
            value = in(c, r) + (*other)(c, r);
        } else if (kind == "mul") {
            value = in(c, r) * (*other)(c, r);
        } else {
            std::fprintf(stderr, "elementwise: unknown op '%s'\n", kind.c_str());
            std::exit(1);
        }
        output(c, r) = value;

        input.dim(0).set_bounds(0, C).set_stride(1);
        input.dim(1).set_stride(C);
        output.dim(0).set_bounds(0, C).set_stride(1);
        output.dim(1).set_stride(C);
        input.set_estimates({{0, C}, {0, 3136}});
        output.set_estimates({{0, C}, {0, 3136}});
        if (other) {
            other->dim(0).set_bounds(0, C).set_stride(1);
            other->dim(1).set_stride(C);
            other->set_estimates({{0, C}, {0, 3136}});
        }
        for (auto *v : {scale, offset})
            if (v) {
                v->dim(0).set_bounds(0, C);
                v->set_estimates({{0, C}});
            }
        if (auto_schedule)
            return;
        const int V = natural_vector_size<float>();
        Var ro("ro"), ri("ri");
        if (get_target().has_gpu_feature()) {
            output.compute_root().gpu_tile(c, r, Var("co"), ro, Var("ci"), ri, 16, 16, TailStrategy::GuardWithIf);
            if (kind == "layernorm") {
                mean.compute_root().gpu_tile(r, ro, ri, 64, TailStrategy::GuardWithIf);
                inv_std.compute_root().gpu_tile(r, ro, ri, 64, TailStrategy::GuardWithIf);
            }
            return;
        }
        output.compute_root()
            .split(r, ro, ri, 16, TailStrategy::GuardWithIf)
            .parallel(ro)
            .vectorize(c, C % V == 0 ? V : 1);
        if (kind == "layernorm") {
            mean.compute_at(output, ri);
            inv_std.compute_at(output, ri);
        }
    }

private:
    Var c{"c"}, r{"r"};
    Input<Buffer<float, 1>> *scale = nullptr, *offset = nullptr;
    Input<Buffer<float, 2>> *other = nullptr;
};

}  // namespace

HALIDE_REGISTER_GENERATOR(Elementwise, elementwise)
