//===- Targets.cpp - code generation targets and their fusion rules -------===//

#include "codegen/Targets.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/TargetParser/Host.h"

namespace qdsl::codegen {

namespace {

// The kernels of a QuadraNet on a CPU: each residual half of a block is at
// most two kernels, and nothing between them goes through memory twice.
std::vector<FusionRule> cpuRules() {
  return {
      // x + γ ⊙ qdwconv(LN(x)): the spatial half of a QuadraBlock.
      {"ln_qdwconv_scale_residual",
       {"quadra.layernorm", "quadra.qdwconv", "quadra.layerscale", "quadra.add"}},
      // The same with a plain depthwise convolution (ConvBlock).
      {"ln_dwconv_scale_residual",
       {"quadra.layernorm", "quadra.dwconv", "quadra.layerscale", "quadra.add"}},
      // x + γ ⊙ PW2(GELU(PW1(LN(x)))): the channel MLP whole, its hidden
      // tensor (4× the block's activation) kept tile by tile in the cache.
      // In a training step it also returns PW2's output (which the layer
      // scale's gradient reads) and PW1's (the pre-GELU tensor, when the
      // memory policy keeps it); the hidden tensor itself never leaves.
      {"ln_mlp_scale_residual",
       {"quadra.layernorm", "quadra.linear", "quadra.gelu", "quadra.linear",
        "quadra.layerscale", "quadra.add"},
       {3, 1}},
      // GELU(PW1(LN(x))): the expanding half of the channel MLP.
      {"ln_pwconv_gelu", {"quadra.layernorm", "quadra.linear", "quadra.gelu"}},
      // x + γ ⊙ PW2(h): the contracting half, with its residual.
      {"pwconv_scale_residual",
       {"quadra.linear", "quadra.layerscale", "quadra.add"}},
      // Stem: patchifying convolution, then layer norm.
      {"conv_ln", {"quadra.conv2d", "quadra.layernorm"}},
      // Downsample: layer norm, then strided convolution.
      {"ln_conv", {"quadra.layernorm", "quadra.conv2d"}},
      // Backward: the gradient of a linear layer's input, times the
      // derivative of the activation before the layer.
      {"pwconv_grad_gelu", {"quadra.linear_grad_input", "quadra.gelu_grad"}},
      {"pwconv_grad_relu", {"quadra.linear_grad_input", "quadra.relu_grad"}},
      // Head: global average pool, layer norm, linear classifier.
      {"pool_ln_linear",
       {"quadra.avgpool", "quadra.layernorm", "quadra.linear"}},
  };
}

// The kernels of a QuadraNet on an NVIDIA GPU (docs/CODEGEN.md, "CUDA"). The
// pointwise layers are cuBLASLt matmuls, whose epilogues take a bias, an
// activation and (with the layer scale folded into the weights) the residual,
// but cannot normalise their input: the layer norm before a pointwise layer
// stays a kernel of its own. Everything else is fused as on the CPU.
std::vector<FusionRule> cudaRules() {
  std::vector<FusionRule> rules;
  for (FusionRule &rule : cpuRules())
    if (rule.family != "ln_pwconv_gelu" && rule.family != "ln_mlp_scale_residual")
      rules.push_back(std::move(rule));
  // GELU(PW1(x)): a matmul with a bias-and-GELU epilogue.
  rules.insert(rules.begin() + 2, {"pwconv_gelu", {"quadra.linear", "quadra.gelu"}});
  return rules;
}

const std::vector<std::string> kAvx2Features = {"avx2", "fma", "f16c", "sse4.1"};

const std::vector<Target> &targets() {
  static const std::vector<Target> all = {
      {kDefaultTarget, "x86-64-linux-avx2-fma-f16c-sse41", true, false, 8, cpuRules(),
       Backend::Halide, "", "", kAvx2Features},
      // AVX-512 (F, CD, BW, DQ, VL: Skylake-SP and later, AMD Zen 4 and
      // later): 16-float vectors and 32 registers.
      {"x86-64-avx512", "x86-64-linux-avx512_skylake-avx512-avx2-fma-f16c-sse41", true, false,
       16, cpuRules(), Backend::Halide, "", "",
       {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl", "avx2", "fma", "f16c"}},
      // Cortex-A76: ARMv8.2-A with dot product and fp16 arithmetic.
      {"arm64-a76", "arm-64-linux-arm_dot_prod-arm_fp16", false, false, 4, cpuRules(),
       Backend::Halide, "aarch64", "aarch64-linux-gnu-"},
      // The VPU stand-in: OpenCL kernels (run on PoCL here). The host code
      // around them is x86.
      {"opencl", "x86-64-linux-avx2-fma-f16c-sse41-opencl", true, true, 8, cpuRules(),
       Backend::Halide, "", "", kAvx2Features},
      // NVIDIA GPUs (sm_80, sm_90): CUDA C++ and cuBLASLt, built with nvcc.
      // No GPU here: its programs run where one is.
      {"cuda", "", false, true, 32, cudaRules(), Backend::Cuda},
  };
  return all;
}

} // namespace

llvm::ArrayRef<Target> allTargets() { return targets(); }

std::string missingCpuFeature(const Target &target) {
  if (target.cpuFeatures.empty())
    return "";
  llvm::StringMap<bool> host = llvm::sys::getHostCPUFeatures();
  for (const std::string &feature : target.cpuFeatures)
    if (!host.lookup(feature))
      return feature;
  return "";
}

std::string whyNotTimedHere(const Target &target) {
  if (!target.runnableHere)
    return "target " + target.name + " does not run on this machine";
  if (std::string feature = missingCpuFeature(target); !feature.empty())
    return "target " + target.name + " needs the CPU feature " + feature +
           ", which this machine's CPU lacks";
  return "";
}

const Target *lookupTarget(llvm::StringRef name) {
  // `host`: the x86 target with the widest vectors this CPU runs.
  if (name == kHostTarget) {
#if defined(__x86_64__)
    for (const char *widest : {"x86-64-avx512", kDefaultTarget})
      if (const Target *t = lookupTarget(widest); t && missingCpuFeature(*t).empty())
        return t;
#endif
    return nullptr;
  }
  for (const Target &t : targets())
    if (name == t.name)
      return &t;
  return nullptr;
}

} // namespace qdsl::codegen
