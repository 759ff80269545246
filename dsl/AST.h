//===- AST.h - syntax tree of .qd files -------------------------*- C++ -*-===//
//
// What the parser builds and semantic analysis checks. Every node keeps its
// source position so that any later stage can point at the user's text.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_DSL_AST_H
#define QDSL_DSL_AST_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Casting.h"
#include "llvm/Support/SMLoc.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace qdsl::dsl {

//===----------------------------------------------------------------------===//
// Types of values in the language
//===----------------------------------------------------------------------===//

enum class ValueType { Int, Float, Bool, String, Tensor, Unknown };

llvm::StringRef typeName(ValueType type);
/// `int`, `float`, `bool`, `tensor`; nullopt for other words.
std::optional<ValueType> parseTypeName(llvm::StringRef word);

//===----------------------------------------------------------------------===//
// Expressions
//===----------------------------------------------------------------------===//

class Expr {
public:
  enum class Kind { Int, Float, Bool, String, Name, Unary, Binary, Member, Call, Set, Choice };

  Expr(Kind kind, llvm::SMLoc loc) : kind(kind), loc(loc) {}
  virtual ~Expr() = default;

  Kind getKind() const { return kind; }
  llvm::SMLoc getLoc() const { return loc; }

private:
  Kind kind;
  llvm::SMLoc loc;
};

using ExprPtr = std::unique_ptr<Expr>;

class IntExpr : public Expr {
public:
  IntExpr(llvm::SMLoc loc, int64_t value) : Expr(Kind::Int, loc), value(value) {}
  int64_t value;
  static bool classof(const Expr *e) { return e->getKind() == Kind::Int; }
};

class FloatExpr : public Expr {
public:
  FloatExpr(llvm::SMLoc loc, double value) : Expr(Kind::Float, loc), value(value) {}
  double value;
  static bool classof(const Expr *e) { return e->getKind() == Kind::Float; }
};

class BoolExpr : public Expr {
public:
  BoolExpr(llvm::SMLoc loc, bool value) : Expr(Kind::Bool, loc), value(value) {}
  bool value;
  static bool classof(const Expr *e) { return e->getKind() == Kind::Bool; }
};

class StringExpr : public Expr {
public:
  StringExpr(llvm::SMLoc loc, std::string value)
      : Expr(Kind::String, loc), value(std::move(value)) {}
  std::string value;
  static bool classof(const Expr *e) { return e->getKind() == Kind::String; }
};

/// A parameter, a `let` binding or (inside a choice) the name of a block
/// used without parentheses.
class NameExpr : public Expr {
public:
  NameExpr(llvm::SMLoc loc, std::string name)
      : Expr(Kind::Name, loc), name(std::move(name)) {}
  std::string name;
  static bool classof(const Expr *e) { return e->getKind() == Kind::Name; }
};

class UnaryExpr : public Expr {
public:
  UnaryExpr(llvm::SMLoc loc, char op, ExprPtr operand)
      : Expr(Kind::Unary, loc), op(op), operand(std::move(operand)) {}
  char op; // '-'
  ExprPtr operand;
  static bool classof(const Expr *e) { return e->getKind() == Kind::Unary; }
};

class BinaryExpr : public Expr {
public:
  BinaryExpr(llvm::SMLoc loc, char op, ExprPtr lhs, ExprPtr rhs)
      : Expr(Kind::Binary, loc), op(op), lhs(std::move(lhs)), rhs(std::move(rhs)) {}
  char op; // + - * / %
  ExprPtr lhs, rhs;
  static bool classof(const Expr *e) { return e->getKind() == Kind::Binary; }
};

/// `x.channels`: a property of a tensor.
class MemberExpr : public Expr {
public:
  MemberExpr(llvm::SMLoc loc, ExprPtr base, std::string member, llvm::SMLoc memberLoc)
      : Expr(Kind::Member, loc), base(std::move(base)), member(std::move(member)),
        memberLoc(memberLoc) {}
  ExprPtr base;
  std::string member;
  llvm::SMLoc memberLoc;
  static bool classof(const Expr *e) { return e->getKind() == Kind::Member; }
};

struct Argument {
  llvm::SMLoc loc;
  /// Empty for a positional argument.
  std::string name;
  ExprPtr value;
};

/// A use of a block or primitive: `qdwconv(h, k = 7)`. In a model's layer
/// list the parentheses may be left out (`stage quadra x 3`).
class CallExpr : public Expr {
public:
  CallExpr(llvm::SMLoc loc, std::string callee)
      : Expr(Kind::Call, loc), callee(std::move(callee)) {}
  std::string callee;
  std::vector<Argument> args;
  llvm::SMLoc endLoc;
  static bool classof(const Expr *e) { return e->getKind() == Kind::Call; }
};

/// `{3, 5, 7}`: the values an argument of a search candidate ranges over.
class SetExpr : public Expr {
public:
  SetExpr(llvm::SMLoc loc) : Expr(Kind::Set, loc) {}
  std::vector<ExprPtr> elements;
  static bool classof(const Expr *e) { return e->getKind() == Kind::Set; }
};

/// `choice(quadra(k = {3, 5, 7}), skip)`: the candidates of one searchable
/// layer.
class ChoiceExpr : public Expr {
public:
  ChoiceExpr(llvm::SMLoc loc) : Expr(Kind::Choice, loc) {}
  std::vector<std::unique_ptr<CallExpr>> candidates;
  static bool classof(const Expr *e) { return e->getKind() == Kind::Choice; }
};

//===----------------------------------------------------------------------===//
// Declarations
//===----------------------------------------------------------------------===//

struct Param {
  llvm::SMLoc loc;
  std::string name;
  ValueType type = ValueType::Unknown;
  llvm::SMLoc typeLoc;
  ExprPtr defaultValue; // may be null
};

/// `let name = value` or `return value` inside a block.
struct Stmt {
  enum class Kind { Let, Return };
  Kind kind;
  llvm::SMLoc loc;
  std::string name; // for Let
  llvm::SMLoc nameLoc;
  ExprPtr value;
};

struct BlockDecl {
  llvm::SMLoc loc;
  std::string name;
  llvm::SMLoc nameLoc;
  std::vector<Param> params;
  std::vector<Stmt> body;
  llvm::SMLoc endLoc;
};

/// What a layer of a model is for; it decides the layer's name
/// (`stem`, `stages.S.J`, `downsample.D`, `head`, `layers.L`).
enum class Role { Stem, Stage, Down, Head, Layer };
llvm::StringRef roleKeyword(Role role);
std::optional<Role> parseRole(llvm::StringRef word);

/// `stage quadra(k = 7) x 3 at 64`
struct LayerDecl {
  llvm::SMLoc loc;
  Role role;
  ExprPtr layer; // CallExpr or ChoiceExpr
  ExprPtr repeat; // `x N`; may be null
  ExprPtr width;  // `at W`; may be null
};

/// `input f32[224, 224, 3]`: one example, without the batch dimension.
struct InputDecl {
  llvm::SMLoc loc;
  std::string elementType;
  llvm::SMLoc elementTypeLoc;
  std::vector<ExprPtr> dims;
};

/// `constraint latency("cortex-a76") <= 300 ms`
struct ConstraintDecl {
  llvm::SMLoc loc;
  std::string metric;
  std::string device;
  double limitMs = 0;
};

struct ModelDecl {
  llvm::SMLoc loc;
  bool isSpace = false;
  std::string name;
  llvm::SMLoc nameLoc;
  std::vector<Param> params;
  std::optional<InputDecl> input;
  std::vector<LayerDecl> layers;
  std::vector<ConstraintDecl> constraints;
  llvm::SMLoc endLoc;
};

struct ImportDecl {
  llvm::SMLoc loc;
  std::string path;
};

/// One parsed file.
struct SourceFile {
  std::string path;
  unsigned bufferId = 0;
  std::vector<ImportDecl> imports;
  std::vector<std::unique_ptr<BlockDecl>> blocks;
  std::vector<std::unique_ptr<ModelDecl>> models;
};

/// Prints the tree in an indented form for `qdsl compile --emit=ast`, with
/// positions as line:col and expressions fully parenthesised.
void dumpAST(const SourceFile &file, const llvm::SourceMgr &sourceMgr,
             llvm::raw_ostream &os);

/// Source text of an expression with every binary operation in parentheses.
std::string printExpr(const Expr &expr);

/// A string literal as the language writes it (quotes and escapes).
void printString(llvm::StringRef value, llvm::raw_ostream &os);

} // namespace qdsl::dsl

#endif // QDSL_DSL_AST_H
