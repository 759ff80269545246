//===- Sema.cpp - semantic checks of a .qd program ------------------------===//

#include "dsl/Sema.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringSet.h"

#include <functional>

using namespace llvm;

namespace qdsl::dsl {

unsigned Callee::tensorParamCount() const {
  return count_if(params,
                  [](const CalleeParam &p) { return p.type == ValueType::Tensor; });
}

int Callee::firstTensorParam() const {
  for (auto [i, p] : enumerate(params))
    if (p.type == ValueType::Tensor)
      return static_cast<int>(i);
  return -1;
}

std::optional<Callee> resolveCallee(const Program &program, StringRef name) {
  Callee callee;
  callee.name = name.str();
  if (const Primitive *primitive = lookupPrimitive(name)) {
    callee.primitive = primitive;
    for (const PrimitiveParam &p : primitive->params)
      callee.params.push_back({p.name, p.type, !p.required(), nullptr});
    return callee;
  }
  auto it = program.blocks.find(name);
  if (it == program.blocks.end())
    return std::nullopt;
  callee.block = it->second;
  for (const Param &p : callee.block->params)
    callee.params.push_back(
        {p.name, p.type, p.defaultValue != nullptr, p.defaultValue.get()});
  return callee;
}

static std::string paramList(const Callee &callee, int skip) {
  std::string s;
  for (auto [i, p] : enumerate(callee.params)) {
    if (static_cast<int>(i) == skip)
      continue;
    if (!s.empty())
      s += ", ";
    s += p.name;
  }
  return s.empty() ? "no arguments" : s;
}

bool bindCall(const Callee &callee, const CallExpr &call, bool implicitTensor,
              BoundCall &bound, Diagnostics *diags) {
  bound.args.assign(callee.params.size(), nullptr);
  bound.nameArg = nullptr;
  bound.implicitParam = implicitTensor ? callee.firstTensorParam() : -1;
  auto error = [&](SMLoc loc, const Twine &message) {
    if (diags)
      diags->error(loc, message);
    return false;
  };
  if (implicitTensor && bound.implicitParam < 0)
    return error(call.getLoc(), "'" + callee.name +
                                    "' takes no tensor, so it cannot be a layer");
  if (implicitTensor && callee.tensorParamCount() > 1)
    return error(call.getLoc(),
                 "'" + callee.name + "' takes " +
                     Twine(callee.tensorParamCount()) +
                     " tensors, but a layer passes it only its input; call "
                     "it from a block instead");

  bool ok = true;
  size_t nextPositional = 0;
  bool sawNamed = false;
  for (const Argument &arg : call.args) {
    if (arg.name == "name") {
      if (bound.nameArg) {
        ok = error(arg.loc, "argument 'name' given twice");
        continue;
      }
      bound.nameArg = arg.value.get();
      sawNamed = true;
      continue;
    }
    if (arg.name.empty()) {
      if (sawNamed) {
        ok = error(arg.loc, "a positional argument cannot follow named ones");
        continue;
      }
      while (nextPositional < callee.params.size() &&
             static_cast<int>(nextPositional) == bound.implicitParam)
        ++nextPositional;
      if (nextPositional >= callee.params.size()) {
        ok = error(arg.loc, "too many arguments to '" + callee.name +
                                "': it takes " +
                                paramList(callee, bound.implicitParam));
        continue;
      }
      bound.args[nextPositional++] = arg.value.get();
      continue;
    }
    sawNamed = true;
    auto it = find_if(callee.params,
                      [&](const CalleeParam &p) { return p.name == arg.name; });
    if (it == callee.params.end()) {
      std::vector<std::string> names;
      for (const CalleeParam &p : callee.params)
        names.push_back(p.name);
      names.push_back("name");
      ok = error(arg.loc, "'" + callee.name + "' has no parameter '" +
                              arg.name + "'; it takes " +
                              paramList(callee, bound.implicitParam) +
                              didYouMean(arg.name, names));
      continue;
    }
    size_t index = it - callee.params.begin();
    if (static_cast<int>(index) == bound.implicitParam) {
      ok = error(arg.loc, "'" + arg.name +
                              "' is the layer's input and is passed implicitly");
      continue;
    }
    if (bound.args[index]) {
      ok = error(arg.loc, "argument '" + arg.name + "' given twice");
      continue;
    }
    bound.args[index] = arg.value.get();
  }
  if (!ok)
    return false;
  for (auto [i, p] : enumerate(callee.params)) {
    if (static_cast<int>(i) == bound.implicitParam || bound.args[i] ||
        p.hasDefault)
      continue;
    ok = error(call.getLoc(),
               "missing argument '" + p.name + "' (" + typeName(p.type) +
                   ") in the call of '" + callee.name + "'");
  }
  return ok;
}

namespace {

/// Where an expression stands, which decides what it may contain.
enum class Context {
  Block,     // a block body or a block parameter's default
  Model,     // a model's sizes: integers over model parameters
  Candidate, // an argument of a search candidate: sets allowed
};

struct Scope {
  llvm::StringMap<ValueType> names;
  std::vector<std::string> order; // for suggestions
  void define(StringRef name, ValueType type) {
    if (names.insert_or_assign(name, type).second)
      order.push_back(name.str());
  }
};

bool assignable(ValueType to, ValueType from) {
  return to == from || (to == ValueType::Float && from == ValueType::Int) ||
         from == ValueType::Unknown || to == ValueType::Unknown;
}

class Checker {
public:
  Checker(Program &program, Diagnostics &diags)
      : program(program), diags(diags) {}

  bool run();

private:
  void collectDeclarations();
  void checkBlock(BlockDecl &block);
  void checkModel(ModelDecl &model);
  void checkRecursion();
  ValueType checkParamDefaults(std::vector<Param> &params, Scope &scope,
                               Context context, bool isModel);
  ValueType check(const Expr &expr, const Scope &scope, Context context);
  ValueType checkCall(const CallExpr &call, const Scope &scope,
                      Context context, bool implicitTensor);
  void checkLayer(const LayerDecl &layer, const Scope &scope, bool isSpace);
  void expectType(const Expr &expr, ValueType want, ValueType got,
                  StringRef what);
  std::vector<std::string> calleeNames() const;

  Program &program;
  Diagnostics &diags;
  /// Blocks each block calls, with the first call site, for the recursion
  /// check.
  llvm::StringMap<std::vector<std::pair<std::string, SMLoc>>> calls;
  const BlockDecl *currentBlock = nullptr;
};

std::vector<std::string> Checker::calleeNames() const {
  std::vector<std::string> names;
  for (const Primitive &p : allPrimitives())
    names.push_back(p.name);
  for (const auto &entry : program.blocks)
    names.push_back(entry.getKey().str());
  return names;
}

void Checker::expectType(const Expr &expr, ValueType want, ValueType got,
                         StringRef what) {
  if (assignable(want, got))
    return;
  diags.error(expr.getLoc(), what + " must be " + typeName(want) + ", got " +
                                 typeName(got));
}

void Checker::collectDeclarations() {
  for (const auto &file : program.files) {
    for (const auto &block : file->blocks) {
      if (lookupPrimitive(block->name)) {
        diags.error(block->nameLoc, "'" + block->name +
                                        "' is a primitive; choose another name "
                                        "for the block");
        continue;
      }
      auto [it, inserted] = program.blocks.try_emplace(block->name, block.get());
      if (!inserted) {
        diags.error(block->nameLoc,
                    "block '" + block->name + "' is defined twice");
        diags.note(it->second->nameLoc, "the first definition is here");
      }
    }
    for (const auto &model : file->models) {
      auto [it, inserted] = program.models.try_emplace(model->name, model.get());
      if (!inserted) {
        diags.error(model->nameLoc,
                    "'" + model->name + "' is defined twice");
        diags.note(it->second->nameLoc, "the first definition is here");
      }
    }
  }
}

ValueType Checker::checkParamDefaults(std::vector<Param> &params, Scope &scope,
                                      Context context, bool isModel) {
  StringSet<> seen;
  for (Param &param : params) {
    if (!seen.insert(param.name).second) {
      diags.error(param.loc, "parameter '" + param.name + "' is declared twice");
      continue;
    }
    if (param.name == "name")
      diags.error(param.loc, "'name' is reserved: every call takes it to name "
                             "its layer; choose another parameter name");
    if (param.defaultValue) {
      if (param.type == ValueType::Tensor) {
        diags.error(param.defaultValue->getLoc(),
                    "a tensor parameter cannot have a default value");
      } else {
        ValueType got = check(*param.defaultValue, scope, context);
        if (param.type == ValueType::Unknown)
          param.type = got; // untyped model parameter: `classes = 1000`
        else
          expectType(*param.defaultValue, param.type, got,
                     "the default of '" + param.name + "'");
      }
    } else if (isModel && param.type != ValueType::Tensor) {
      diags.error(param.loc, "parameter '" + param.name +
                                 "' of a model needs a default value "
                                 "(override it with -D " +
                                 param.name + "=VALUE)");
    }
    if (isModel && param.type == ValueType::Tensor)
      diags.error(param.typeLoc, "a model's parameters are numbers or flags; "
                                 "its tensor is declared by 'input'");
    scope.define(param.name, param.type);
  }
  return ValueType::Unknown;
}

ValueType Checker::check(const Expr &expr, const Scope &scope, Context context) {
  switch (expr.getKind()) {
  case Expr::Kind::Int:
    return ValueType::Int;
  case Expr::Kind::Float:
    return ValueType::Float;
  case Expr::Kind::Bool:
    return ValueType::Bool;
  case Expr::Kind::String:
    diags.error(expr.getLoc(),
                "a string is only allowed as the 'name' of a call");
    return ValueType::Unknown;
  case Expr::Kind::Name: {
    const auto &name = cast<NameExpr>(expr);
    auto it = scope.names.find(name.name);
    if (it != scope.names.end())
      return it->second;
    if (lookupPrimitive(name.name) || program.blocks.count(name.name)) {
      diags.error(expr.getLoc(), "'" + name.name +
                                     "' is a block or primitive; call it with "
                                     "its input, e.g. " +
                                     name.name + "(x)");
      return ValueType::Unknown;
    }
    diags.error(expr.getLoc(), "unknown name '" + name.name + "'" +
                                   didYouMean(name.name, scope.order));
    return ValueType::Unknown;
  }
  case Expr::Kind::Unary: {
    const auto &unary = cast<UnaryExpr>(expr);
    ValueType t = check(*unary.operand, scope, context);
    if (t == ValueType::Int || t == ValueType::Float || t == ValueType::Unknown)
      return t;
    diags.error(expr.getLoc(), "cannot negate a " + typeName(t) +
                                   ": expected an int or a float");
    return ValueType::Unknown;
  }
  case Expr::Kind::Binary: {
    const auto &binary = cast<BinaryExpr>(expr);
    ValueType l = check(*binary.lhs, scope, context);
    ValueType r = check(*binary.rhs, scope, context);
    if (l == ValueType::Unknown || r == ValueType::Unknown)
      return ValueType::Unknown;
    std::string op(1, binary.op);
    if (l == ValueType::Tensor && r == ValueType::Tensor) {
      if (binary.op == '+' || binary.op == '*')
        return ValueType::Tensor;
      diags.error(expr.getLoc(), "tensors combine only with '+' (sum) and "
                                 "'*' (elementwise product), not '" +
                                     op + "'");
      return ValueType::Unknown;
    }
    bool lNum = l == ValueType::Int || l == ValueType::Float;
    bool rNum = r == ValueType::Int || r == ValueType::Float;
    if (lNum && rNum) {
      if (binary.op == '%' && (l == ValueType::Float || r == ValueType::Float)) {
        diags.error(expr.getLoc(), "'%' needs two ints");
        return ValueType::Unknown;
      }
      return l == ValueType::Int && r == ValueType::Int ? ValueType::Int
                                                        : ValueType::Float;
    }
    diags.error(expr.getLoc(), "cannot apply '" + op + "' to a " +
                                   typeName(l) + " and a " + typeName(r) +
                                   ": numbers combine with numbers, tensors "
                                   "with tensors");
    return ValueType::Unknown;
  }
  case Expr::Kind::Member: {
    const auto &member = cast<MemberExpr>(expr);
    ValueType base = check(*member.base, scope, context);
    if (base == ValueType::Unknown)
      return ValueType::Unknown;
    if (base != ValueType::Tensor) {
      diags.error(member.memberLoc, "only tensors have properties; this is a " +
                                        typeName(base));
      return ValueType::Unknown;
    }
    static const std::vector<std::string> properties = {"channels", "height",
                                                        "width"};
    if (!is_contained(properties, member.member)) {
      diags.error(member.memberLoc,
                  "a tensor has no property '" + member.member +
                      "': expected channels, height or width" +
                      didYouMean(member.member, properties));
      return ValueType::Unknown;
    }
    return ValueType::Int;
  }
  case Expr::Kind::Call:
    if (context != Context::Block) {
      diags.error(expr.getLoc(), "a call makes a tensor and belongs in a block "
                                 "body or as a layer; sizes here are numbers");
      return ValueType::Unknown;
    }
    return checkCall(cast<CallExpr>(expr), scope, context, false);
  case Expr::Kind::Set:
    diags.error(expr.getLoc(), "a set of values {...} is only allowed as an "
                               "argument of a candidate inside choice(...)");
    return ValueType::Unknown;
  case Expr::Kind::Choice:
    diags.error(expr.getLoc(), "choice(...) is only allowed as a layer of a "
                               "search space");
    return ValueType::Unknown;
  }
  return ValueType::Unknown;
}

ValueType Checker::checkCall(const CallExpr &call, const Scope &scope,
                             Context context, bool implicitTensor) {
  std::optional<Callee> callee = resolveCallee(program, call.callee);
  if (!callee) {
    diags.error(call.getLoc(), "unknown block or primitive '" + call.callee +
                                   "'" + didYouMean(call.callee, calleeNames()));
    for (const Argument &arg : call.args)
      if (arg.name != "name" && arg.value->getKind() != Expr::Kind::Set)
        check(*arg.value, scope, context);
    return ValueType::Unknown;
  }
  if (callee->block && currentBlock)
    calls[currentBlock->name].push_back({callee->name, call.getLoc()});
  BoundCall bound;
  if (!bindCall(*callee, call, implicitTensor, bound, &diags))
    return ValueType::Tensor;
  if (bound.nameArg) {
    if (!isa<StringExpr>(bound.nameArg)) {
      diags.error(bound.nameArg->getLoc(),
                  "'name' must be a string such as \"QuadraConv\"");
    } else {
      StringRef name = cast<StringExpr>(bound.nameArg)->value;
      if (name.empty() ||
          !all_of(name, [](char c) { return isAlnum(c) || c == '_'; }))
        diags.error(bound.nameArg->getLoc(),
                    "a layer name must be a non-empty word of letters, digits "
                    "and '_' (it becomes part of weight names)");
    }
  }
  for (auto [i, arg] : enumerate(bound.args)) {
    if (!arg)
      continue;
    const CalleeParam &param = callee->params[i];
    std::string what = "argument '" + param.name + "' of '" + callee->name + "'";
    if (auto set = dyn_cast<SetExpr>(arg); set && context == Context::Candidate) {
      if (set->elements.empty())
        diags.error(set->getLoc(), "a set of values needs at least one value");
      for (const ExprPtr &element : set->elements)
        expectType(*element, param.type,
                   check(*element, scope, Context::Model), "each value of " + what);
      continue;
    }
    Context argContext = context == Context::Candidate ? Context::Model : context;
    expectType(*arg, param.type, check(*arg, scope, argContext), what);
  }
  return ValueType::Tensor;
}

void Checker::checkBlock(BlockDecl &block) {
  currentBlock = &block;
  Scope scope;
  checkParamDefaults(block.params, scope, Context::Block, /*isModel=*/false);
  if (none_of(block.params,
              [](const Param &p) { return p.type == ValueType::Tensor; }))
    diags.error(block.nameLoc, "block '" + block.name +
                                   "' takes no tensor: declare its input, e.g. "
                                   "block " +
                                   block.name + "(x: tensor)");
  bool returned = false;
  for (const Stmt &stmt : block.body) {
    if (returned) {
      diags.error(stmt.loc, "this statement follows 'return' and is never run");
      break;
    }
    ValueType type = check(*stmt.value, scope, Context::Block);
    if (stmt.kind == Stmt::Kind::Let) {
      scope.define(stmt.name, type);
      continue;
    }
    returned = true;
    if (type != ValueType::Tensor && type != ValueType::Unknown)
      diags.error(stmt.value->getLoc(), "a block returns a tensor, got " +
                                            typeName(type));
  }
  if (!returned)
    diags.error(block.endLoc, "block '" + block.name +
                                  "' ends without 'return': expected its "
                                  "output, e.g. return x");
  currentBlock = nullptr;
}

void Checker::checkLayer(const LayerDecl &layer, const Scope &scope,
                         bool isSpace) {
  if (const auto *choice = dyn_cast<ChoiceExpr>(layer.layer.get())) {
    if (!isSpace)
      diags.error(choice->getLoc(), "choice(...) makes a search space: declare "
                                    "'space' instead of 'model'");
    if (choice->candidates.empty())
      diags.error(choice->getLoc(), "choice(...) needs at least one candidate");
    for (const auto &candidate : choice->candidates)
      checkCall(*candidate, scope, Context::Candidate, /*implicitTensor=*/true);
  } else {
    checkCall(cast<CallExpr>(*layer.layer), scope, Context::Model,
              /*implicitTensor=*/true);
  }
  if (layer.repeat)
    expectType(*layer.repeat, ValueType::Int,
               check(*layer.repeat, scope, Context::Model),
               "the repeat count after 'x'");
  if (layer.width)
    expectType(*layer.width, ValueType::Int,
               check(*layer.width, scope, Context::Model), "the width after 'at'");
}

void Checker::checkModel(ModelDecl &model) {
  Scope scope;
  checkParamDefaults(model.params, scope, Context::Model, /*isModel=*/true);
  StringRef what = model.isSpace ? "space" : "model";
  if (!model.input) {
    diags.error(model.nameLoc, what + " '" + model.name +
                                   "' has no input: declare one, e.g. "
                                   "input f32[224, 224, 3]");
  } else {
    if (model.input->elementType != "f32")
      diags.error(model.input->elementTypeLoc,
                  "unsupported element type '" + model.input->elementType +
                      "': expected f32");
    if (model.input->dims.empty())
      diags.error(model.input->loc,
                  "the input needs at least one dimension, e.g. f32[28, 28, 1]");
    for (const ExprPtr &dim : model.input->dims)
      expectType(*dim, ValueType::Int, check(*dim, scope, Context::Model),
                 "an input dimension");
  }
  if (model.layers.empty())
    diags.error(model.nameLoc, what + " '" + model.name +
                                   "' has no layers: list them after the "
                                   "input, e.g. stage quadra x 3");
  for (const LayerDecl &layer : model.layers)
    checkLayer(layer, scope, model.isSpace);
  StringSet<> devices;
  for (const ConstraintDecl &constraint : model.constraints)
    if (!devices.insert(constraint.device).second)
      diags.error(constraint.loc, "a second latency limit for device '" +
                                      constraint.device + "'");
}

void Checker::checkRecursion() {
  // Depth-first search; a block on the current path that is called again
  // closes a cycle.
  enum class State { Unvisited, Active, Done };
  StringMap<State> state;
  std::vector<std::string> path;
  std::function<void(const std::string &)> visit = [&](const std::string &name) {
    state[name] = State::Active;
    path.push_back(name);
    // A copy: visiting may grow the map and move its vectors.
    std::vector<std::pair<std::string, SMLoc>> edges = calls.lookup(name);
    for (const auto &[callee, loc] : edges) {
      State s = state.lookup(callee);
      if (s == State::Active) {
        std::string cycle;
        auto start = find(path, callee);
        for (auto it = start; it != path.end(); ++it)
          cycle += *it + " -> ";
        cycle += callee;
        diags.error(loc, "block '" + name + "' calls '" + callee +
                             "', which leads back to it (" + cycle +
                             "); blocks cannot be recursive");
      } else if (s == State::Unvisited) {
        visit(callee);
      }
    }
    path.pop_back();
    state[name] = State::Done;
  };
  for (const auto &file : program.files)
    for (const auto &block : file->blocks)
      if (state.lookup(block->name) == State::Unvisited)
        visit(block->name);
}

bool Checker::run() {
  unsigned before = diags.errorCount();
  collectDeclarations();
  for (const auto &file : program.files)
    for (const auto &block : file->blocks)
      checkBlock(*block);
  checkRecursion();
  for (const auto &file : program.files)
    for (auto &model : file->models)
      checkModel(*model);
  return diags.errorCount() == before;
}

} // namespace

bool checkProgram(Program &program, Diagnostics &diags) {
  return Checker(program, diags).run();
}

} // namespace qdsl::dsl
