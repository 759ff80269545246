//===- FormKernels.cpp - group ops into kernels by fusion rules -----------===//

#include "codegen/Targets.h"
#include "passes/analysis/MemoryPlan.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/StringMap.h"

#include <map>
#include <optional>

namespace qdsl::quadra {
#define GEN_PASS_DEF_QUADRAFORMKERNELS
#include "passes/Passes.h.inc"
} // namespace qdsl::quadra

using namespace mlir;
using namespace qdsl::quadra;

namespace {

/// Whether `op` is a layer op (forward or backward) that belongs in some
/// kernel.
bool isLayerOp(Operation &op) {
  return op.getDialect() && llvm::isa<QuadraDialect>(op.getDialect()) &&
         !llvm::isa<WeightOp, ChoiceOp, YieldOp, KernelOp, IdentityOp>(op) &&
         op.getNumResults() >= 1;
}

/// The only user of `op`'s only result, if it uses it exactly once.
Operation *soleUser(Operation *op) {
  if (op->getNumResults() != 1)
    return nullptr;
  Value result = op->getResult(0);
  if (!result.hasOneUse())
    return nullptr;
  return *result.getUsers().begin();
}

/// The backward ops of one stride-1 quadratic depthwise convolution, when
/// they are exactly what its gradient rule builds (QuadraGradients.cpp):
/// ga = g ⊙ xb and gb = g ⊙ xa; per branch j (a, b, c; gc = g) a filter
/// gradient, a channel sum when the conv has biases, and an input gradient
/// when x needs one, the three summed by two adds. Other ops of the group
/// (the sum of x's gradient with that of x's other uses) stay outside.
/// They become one kernel
/// of family `qdwconv_grad` whose inputs are x, g, xa, xb, wa, wb, wc and
/// whose outputs are dx (if any), dwa, dwb, dwc, then dba, dbb, dbc (if
/// any): the order codegen/halide/qdwconv_grad_generator.cpp takes and
/// returns them in.
struct QDWConvBackward {
  SmallVector<Value> inputs, outputs;
  SmallVector<Operation *> ops;
};

std::optional<QDWConvBackward> matchQDWConvBackward(QuadraticDepthwiseConv2DOp conv,
                                                    ArrayRef<Operation *> group) {
  if (llvm::any_of(conv.getStride(), [](int64_t s) { return s != 1; }))
    return std::nullopt;
  Value w[3] = {conv.getWa(), conv.getWb(), conv.getWc()};
  SmallVector<MulOp> muls;
  SmallVector<AddOp> adds;
  SmallVector<DepthwiseConv2DGradInputOp> gradInputs;
  SmallVector<DepthwiseConv2DGradFilterOp> gradFilters;
  SmallVector<ChannelSumOp> sums;
  for (Operation *op : group) {
    if (auto m = dyn_cast<MulOp>(op))
      muls.push_back(m);
    else if (auto a = dyn_cast<AddOp>(op))
      adds.push_back(a);
    else if (auto gi = dyn_cast<DepthwiseConv2DGradInputOp>(op))
      gradInputs.push_back(gi);
    else if (auto gf = dyn_cast<DepthwiseConv2DGradFilterOp>(op))
      gradFilters.push_back(gf);
    else if (auto cs = dyn_cast<ChannelSumOp>(op))
      sums.push_back(cs);
    else if (!op->hasAttr(kRecomputeAttr) && !isa<DepthwiseConv2DOp>(op))
      return std::nullopt;  // recomputed values (x, xa, xb) stay kernels of their own
  }
  bool biased = !conv.getBiases().empty();
  if (muls.size() != 2 || gradFilters.size() != 3 || sums.size() != (biased ? 3u : 0u) ||
      (gradInputs.size() != 3 && !gradInputs.empty()))
    return std::nullopt;
  // The conv's input, or its copy when the memory policy recomputes it.
  Value x = gradFilters[0].getInput();
  // The rule builds g ⊙ xb first, then g ⊙ xa.
  Value g = muls[0].getLhs();
  if (muls[1].getLhs() != g)
    return std::nullopt;
  Value xb = muls[0].getRhs(), xa = muls[1].getRhs();
  auto isResponse = [&](Value v, Value filter) {
    auto dw = v.getDefiningOp<DepthwiseConv2DOp>();
    return dw && dw.getInput() == x && dw.getFilter() == filter;
  };
  if (!isResponse(xa, w[0]) || !isResponse(xb, w[1]))
    return std::nullopt;
  Value branch[3] = {muls[0].getResult(), muls[1].getResult(), g};

  QDWConvBackward match;
  match.inputs = {x, g, xa, xb, w[0], w[1], w[2]};
  match.ops = {muls[0], muls[1]};
  SmallVector<Value> dw, db, dx;
  for (int j = 0; j < 3; ++j) {
    auto gf = llvm::find_if(gradFilters, [&](DepthwiseConv2DGradFilterOp op) {
      return op.getInput() == x && op.getDy() == branch[j];
    });
    if (gf == gradFilters.end() || gf->getPadding() != conv.getPadding())
      return std::nullopt;
    dw.push_back(gf->getResult());
    match.ops.push_back(*gf);
    if (biased) {
      auto cs = llvm::find_if(sums, [&](ChannelSumOp op) { return op.getInput() == branch[j]; });
      if (cs == sums.end())
        return std::nullopt;
      db.push_back(cs->getResult());
      match.ops.push_back(*cs);
    }
  }
  if (!gradInputs.empty()) {
    Value part[3];
    for (int j = 0; j < 3; ++j) {
      auto gi = llvm::find_if(gradInputs, [&](DepthwiseConv2DGradInputOp op) {
        return op.getDy() == branch[j] && op.getFilter() == w[j];
      });
      if (gi == gradInputs.end() || gi->getPadding() != conv.getPadding())
        return std::nullopt;
      part[j] = gi->getResult();
      match.ops.push_back(*gi);
    }
    auto sumOf = [&](Value a, Value b) -> AddOp {
      auto add = llvm::find_if(adds, [&](AddOp op) {
        return (op.getLhs() == a && op.getRhs() == b) || (op.getLhs() == b && op.getRhs() == a);
      });
      return add == adds.end() ? AddOp() : *add;
    };
    AddOp first = sumOf(part[0], part[1]);
    AddOp second = first ? sumOf(first.getResult(), part[2]) : AddOp();
    if (!second)
      return std::nullopt;
    match.ops.append({first, second});
    dx.push_back(second.getResult());
  }
  match.outputs.append(dx);
  match.outputs.append(dw);
  match.outputs.append(db);
  llvm::sort(match.ops, [](Operation *a, Operation *b) { return a->isBeforeInBlock(b); });

  // Nothing but the outputs leaves the kernel, and nothing uses them before
  // the kernel's place (its last op).
  llvm::DenseSet<Operation *> inside(match.ops.begin(), match.ops.end());
  llvm::DenseSet<Value> outputs(match.outputs.begin(), match.outputs.end());
  Operation *last = match.ops.back();
  for (Operation *op : match.ops)
    for (Value result : op->getResults())
      for (Operation *user : result.getUsers())
        if (!inside.count(user) &&
            (!outputs.count(result) || user->getBlock() != last->getBlock() ||
             user->isBeforeInBlock(last)))
          return std::nullopt;
  return match;
}

class KernelFormer {
public:
  KernelFormer(const qdsl::codegen::Target &target) : target(target) {}

  /// Fuses the backward ops of each stride-1 qdwconv of a training step.
  void formQDWConvBackward(func::FuncOp step) {
    std::vector<Operation *> forward = forwardOps(step);
    std::map<int64_t, SmallVector<Operation *>> groups;
    for (Operation &op : step.getBody().front())
      if (auto of = op.getAttrOfType<IntegerAttr>(kBackwardOfAttr))
        groups[of.getInt()].push_back(&op);
    for (auto &[index, group] : groups) {
      if (index < 0 || index >= int64_t(forward.size()))
        continue;
      auto conv = dyn_cast<QuadraticDepthwiseConv2DOp>(forward[index]);
      if (!conv)
        continue;
      if (std::optional<QDWConvBackward> match = matchQDWConvBackward(conv, group))
        outline(match->ops, "qdwconv_grad", match->inputs, match->outputs);
    }
  }

  void run(Block &block) {
    // Identity is no computation: its users read its input directly.
    for (Operation &op : llvm::make_early_inc_range(block))
      if (auto identity = llvm::dyn_cast<IdentityOp>(op)) {
        identity.getResult().replaceAllUsesWith(identity.getInput());
        identity.erase();
      }
    std::vector<std::pair<SmallVector<Operation *>, std::string>> groups;
    llvm::DenseSet<Operation *> taken;
    for (Operation &op : block) {
      if (!isLayerOp(op) || taken.count(&op))
        continue;
      SmallVector<Operation *> chain;
      std::string family;
      for (const qdsl::codegen::FusionRule &rule : target.rules)
        if (match(&op, rule, taken, chain)) {
          family = rule.family;
          break;
        }
      if (family.empty()) {
        chain = {&op};
        family = op.getName().stripDialect().str();
      }
      taken.insert(chain.begin(), chain.end());
      groups.push_back({chain, family});
    }
    for (auto &[ops, family] : groups)
      outline(ops, family, {}, sideOutputs(ops, family));
  }

private:
  bool match(Operation *first, const qdsl::codegen::FusionRule &rule,
             const llvm::DenseSet<Operation *> &taken,
             SmallVector<Operation *> &chain) {
    chain.clear();
    Operation *op = first;
    for (auto [i, name] : llvm::enumerate(rule.chain)) {
      if (i > 0) {
        bool side = llvm::is_contained(rule.sideOutputs, static_cast<int>(i - 1));
        op = side ? soleForwardUser(chain.back()) : soleUser(chain.back());
        if (!op || op->getBlock() != first->getBlock())
          return false;
      }
      // A kernel runs or is skipped as a whole: one supernet path each.
      if (op->getName().getStringRef() != name || taken.count(op) ||
          !isLayerOp(*op) || op->getAttr(kPathAttr) != first->getAttr(kPathAttr))
        return false;
      chain.push_back(op);
    }
    return true;
  }

  /// The only user of `op`'s only result that is not a backward op, when
  /// every other user is one (and comes after it).
  static Operation *soleForwardUser(Operation *op) {
    if (op->getNumResults() != 1)
      return nullptr;
    Operation *forward = nullptr;
    for (Operation *user : op->getResult(0).getUsers()) {
      if (user->hasAttr(kBackwardOfAttr))
        continue;
      if (forward && forward != user)
        return nullptr;
      forward = user;
    }
    if (!forward || forward->getNumOperands() < 1 ||
        llvm::count(forward->getOperands(), op->getResult(0)) != 1)
      return nullptr;
    return forward;
  }

  /// A kernel's outputs when its rule returns side outputs that something
  /// outside reads: the last op's results, then those; empty otherwise
  /// (outline's default).
  SmallVector<Value> sideOutputs(ArrayRef<Operation *> ops, StringRef family) {
    const qdsl::codegen::FusionRule *rule = nullptr;
    for (const qdsl::codegen::FusionRule &r : target.rules)
      if (r.family == family && r.chain.size() == ops.size())
        rule = &r;
    if (!rule || rule->sideOutputs.empty())
      return {};
    llvm::DenseSet<Operation *> inside(ops.begin(), ops.end());
    SmallVector<Value> outputs(ops.back()->getResults());
    for (int position : rule->sideOutputs) {
      Value result = ops[position]->getResult(0);
      if (llvm::any_of(result.getUsers(), [&](Operation *user) { return !inside.count(user); }))
        outputs.push_back(result);
    }
    if (outputs.size() == ops.back()->getNumResults())
      return {};
    return outputs;
  }

  /// Moves `ops` into a new kernel placed where the last of them was. Its
  /// inputs are the values from outside, `firstInputs` first; its outputs
  /// `outputs`, or by default the last op's results.
  void outline(ArrayRef<Operation *> ops, StringRef family, ArrayRef<Value> firstInputs = {},
               ArrayRef<Value> outputs = {}) {
    Operation *last = ops.back();
    llvm::DenseSet<Operation *> inside(ops.begin(), ops.end());
    llvm::SetVector<Value> inputs;
    inputs.insert(firstInputs.begin(), firstInputs.end());
    SmallVector<Value> results(outputs);
    if (results.empty())
      results.assign(last->getResults().begin(), last->getResults().end());
    SmallVector<Type> resultTypes;
    for (Value v : results)
      resultTypes.push_back(v.getType());
    SmallVector<Location> locs;
    for (Operation *op : ops) {
      locs.push_back(op->getLoc());
      for (Value operand : op->getOperands())
        if (!inside.count(operand.getDefiningOp()))
          inputs.insert(operand);
    }
    OpBuilder builder(last);
    Location loc = builder.getFusedLoc(locs);
    auto kernel = builder.create<KernelOp>(
        loc, resultTypes, inputs.getArrayRef(),
        uniqueName(getLayerName(last->getLoc()), family), family);
    Block *body = builder.createBlock(&kernel.getBody());
    IRMapping mapping;
    for (Value input : inputs)
      mapping.map(input, body->addArgument(input.getType(), input.getLoc()));
    for (Operation *op : ops)
      builder.clone(*op, mapping);
    SmallVector<Value> yielded;
    for (Value result : results)
      yielded.push_back(mapping.lookup(result));
    builder.create<YieldOp>(last->getLoc(), yielded);
    // The supernet path of the ops, which the generated code skips or runs
    // as one.
    if (Attribute path = last->getAttr(kPathAttr)) {
      bool common = llvm::all_of(ops, [&](Operation *op) { return op->getAttr(kPathAttr) == path; });
      if (common)
        kernel->setAttr(kPathAttr, path);
      else
        failedPaths = true;
    }
    for (auto [result, output] : llvm::zip(results, kernel.getOutputs()))
      result.replaceAllUsesWith(output);
    for (Operation *op : llvm::reverse(ops))
      op->erase();
  }

  /// `layer/family`, numbered when a layer has several of one family.
  std::string uniqueName(const std::string &layer, StringRef family) {
    std::string base = (layer.empty() ? std::string("kernel") : layer) + "/" +
                       family.str();
    unsigned n = used[base]++;
    return n == 0 ? base : base + "#" + std::to_string(n);
  }

public:
  /// Whether a kernel grouped ops of different supernet paths.
  bool failedPaths = false;

private:
  const qdsl::codegen::Target &target;
  llvm::StringMap<unsigned> used;
};

struct QuadraFormKernels
    : qdsl::quadra::impl::QuadraFormKernelsBase<QuadraFormKernels> {
  using QuadraFormKernelsBase::QuadraFormKernelsBase;

  void runOnOperation() override {
    const qdsl::codegen::Target *found = qdsl::codegen::lookupTarget(target);
    if (!found) {
      std::string known;
      for (const auto &t : qdsl::codegen::allTargets())
        known += (known.empty() ? "" : ", ") + t.name;
      getOperation()->emitError("quadra-form-kernels: unknown target '")
          << target << "'; expected one of " << known;
      return signalPassFailure();
    }
    KernelFormer former(*found);
    SmallVector<func::FuncOp> steps;
    getOperation()->walk([&](func::FuncOp f) {
      if (f->hasAttr(kGradientsAttr))
        steps.push_back(f);
    });
    for (func::FuncOp step : steps)
      former.formQDWConvBackward(step);
    // Blocks of choices too; kernels never nest.
    SmallVector<Block *> blocks;
    getOperation()->walk([&](Block *block) {
      if (!llvm::isa<KernelOp>(block->getParentOp()))
        blocks.push_back(block);
    });
    for (Block *block : blocks)
      former.run(*block);
    if (former.failedPaths) {
      getOperation()->emitError("a kernel would group ops of different supernet paths");
      signalPassFailure();
    }
  }
};

} // namespace
