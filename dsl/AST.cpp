//===- AST.cpp - syntax tree of .qd files ---------------------------------===//

#include "dsl/AST.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/Format.h"

using namespace llvm;

namespace qdsl::dsl {

StringRef typeName(ValueType type) {
  switch (type) {
  case ValueType::Int: return "int";
  case ValueType::Float: return "float";
  case ValueType::Bool: return "bool";
  case ValueType::String: return "string";
  case ValueType::Tensor: return "tensor";
  case ValueType::Unknown: return "unknown";
  }
  return "unknown";
}

std::optional<ValueType> parseTypeName(StringRef word) {
  return StringSwitch<std::optional<ValueType>>(word)
      .Case("int", ValueType::Int)
      .Case("float", ValueType::Float)
      .Case("bool", ValueType::Bool)
      .Case("tensor", ValueType::Tensor)
      .Default(std::nullopt);
}

StringRef roleKeyword(Role role) {
  switch (role) {
  case Role::Stem: return "stem";
  case Role::Stage: return "stage";
  case Role::Down: return "down";
  case Role::Head: return "head";
  case Role::Layer: return "layer";
  }
  return "layer";
}

std::optional<Role> parseRole(StringRef word) {
  return StringSwitch<std::optional<Role>>(word)
      .Case("stem", Role::Stem)
      .Case("stage", Role::Stage)
      .Case("down", Role::Down)
      .Case("head", Role::Head)
      .Case("layer", Role::Layer)
      .Default(std::nullopt);
}

void printString(StringRef value, raw_ostream &os) {
  os << '"';
  for (char c : value) {
    if (c == '"' || c == '\\')
      os << '\\' << c;
    else
      os << c;
  }
  os << '"';
}

static void printExprTo(const Expr &expr, raw_ostream &os) {
  switch (expr.getKind()) {
  case Expr::Kind::Int:
    os << cast<IntExpr>(expr).value;
    return;
  case Expr::Kind::Float:
    os << format("%g", cast<FloatExpr>(expr).value);
    return;
  case Expr::Kind::Bool:
    os << (cast<BoolExpr>(expr).value ? "true" : "false");
    return;
  case Expr::Kind::String:
    printString(cast<StringExpr>(expr).value, os);
    return;
  case Expr::Kind::Name:
    os << cast<NameExpr>(expr).name;
    return;
  case Expr::Kind::Unary: {
    const auto &unary = cast<UnaryExpr>(expr);
    os << "(" << unary.op;
    printExprTo(*unary.operand, os);
    os << ")";
    return;
  }
  case Expr::Kind::Binary: {
    const auto &binary = cast<BinaryExpr>(expr);
    os << "(";
    printExprTo(*binary.lhs, os);
    os << " " << binary.op << " ";
    printExprTo(*binary.rhs, os);
    os << ")";
    return;
  }
  case Expr::Kind::Member: {
    const auto &member = cast<MemberExpr>(expr);
    printExprTo(*member.base, os);
    os << "." << member.member;
    return;
  }
  case Expr::Kind::Call: {
    const auto &call = cast<CallExpr>(expr);
    os << call.callee << "(";
    interleaveComma(call.args, os, [&](const Argument &arg) {
      if (!arg.name.empty())
        os << arg.name << " = ";
      printExprTo(*arg.value, os);
    });
    os << ")";
    return;
  }
  case Expr::Kind::Set: {
    os << "{";
    interleaveComma(cast<SetExpr>(expr).elements, os,
                    [&](const ExprPtr &e) { printExprTo(*e, os); });
    os << "}";
    return;
  }
  case Expr::Kind::Choice: {
    os << "choice(";
    interleaveComma(cast<ChoiceExpr>(expr).candidates, os,
                    [&](const std::unique_ptr<CallExpr> &c) { printExprTo(*c, os); });
    os << ")";
    return;
  }
  }
}

std::string printExpr(const Expr &expr) {
  std::string s;
  raw_string_ostream os(s);
  printExprTo(expr, os);
  return s;
}

namespace {
class Dumper {
public:
  Dumper(const SourceMgr &sourceMgr, raw_ostream &os)
      : sourceMgr(sourceMgr), os(os) {}

  std::string at(SMLoc loc) {
    if (!loc.isValid())
      return "";
    auto [line, col] = sourceMgr.getLineAndColumn(loc);
    return " @" + std::to_string(line) + ":" + std::to_string(col);
  }

  void params(const std::vector<Param> &params, unsigned indent) {
    for (const Param &p : params) {
      os.indent(indent) << "param " << p.name << ": " << typeName(p.type);
      if (p.defaultValue)
        os << " = " << printExpr(*p.defaultValue);
      os << at(p.loc) << "\n";
    }
  }

  void dump(const SourceFile &file) {
    os << "file \"" << file.path << "\"\n";
    for (const ImportDecl &import : file.imports) {
      os.indent(2) << "import ";
      printString(import.path, os);
      os << at(import.loc) << "\n";
    }
    for (const auto &block : file.blocks) {
      os.indent(2) << "block " << block->name << at(block->loc) << "\n";
      params(block->params, 4);
      for (const Stmt &stmt : block->body) {
        if (stmt.kind == Stmt::Kind::Let)
          os.indent(4) << "let " << stmt.name << " = ";
        else
          os.indent(4) << "return ";
        os << printExpr(*stmt.value) << at(stmt.loc) << "\n";
      }
    }
    for (const auto &model : file.models) {
      os.indent(2) << (model->isSpace ? "space " : "model ") << model->name
                   << at(model->loc) << "\n";
      params(model->params, 4);
      if (model->input) {
        os.indent(4) << "input " << model->input->elementType << "[";
        interleaveComma(model->input->dims, os,
                        [&](const ExprPtr &d) { os << printExpr(*d); });
        os << "]" << at(model->input->loc) << "\n";
      }
      for (const LayerDecl &layer : model->layers) {
        os.indent(4) << roleKeyword(layer.role) << " " << printExpr(*layer.layer);
        if (layer.repeat)
          os << " x " << printExpr(*layer.repeat);
        if (layer.width)
          os << " at " << printExpr(*layer.width);
        os << at(layer.loc) << "\n";
      }
      for (const ConstraintDecl &c : model->constraints) {
        os.indent(4) << "constraint " << c.metric << "(";
        printString(c.device, os);
        os << ") <= " << format("%g", c.limitMs) << " ms" << at(c.loc) << "\n";
      }
    }
  }

private:
  const SourceMgr &sourceMgr;
  raw_ostream &os;
};
} // namespace

void dumpAST(const SourceFile &file, const SourceMgr &sourceMgr,
             raw_ostream &os) {
  Dumper(sourceMgr, os).dump(file);
}

} // namespace qdsl::dsl
