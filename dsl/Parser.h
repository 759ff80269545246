//===- Parser.h - .qd source to syntax tree ---------------------*- C++ -*-===//
//
// A recursive-descent parser that recovers from an error at the next
// statement, layer or declaration, so that one run reports every independent
// syntax error.
//
//===----------------------------------------------------------------------===//

#ifndef QDSL_DSL_PARSER_H
#define QDSL_DSL_PARSER_H

#include "dsl/AST.h"
#include "dsl/Lexer.h"

namespace qdsl::dsl {

class Parser {
public:
  Parser(SourceFile &file, llvm::StringRef buffer, Diagnostics &diags);

  /// Fills the file's declarations; false when any error was reported.
  bool parseFile();

private:
  // Token stream.
  void consume();
  bool consumeIf(TokenKind kind);
  bool consumeIfIdentifier(llvm::StringRef word);
  /// Reports "expected <what> <context>, got <token>" and fails.
  bool expect(TokenKind kind, llvm::StringRef context);
  /// With `missingAfterPrevious`, a token missing at the end of a line is
  /// reported there rather than at the start of the next line.
  bool fail(llvm::StringRef expected, bool missingAfterPrevious = false);
  std::string describeCurrent() const;

  // Recovery: skips tokens up to one that can start something in `syncs`,
  // outside any brackets opened while skipping.
  void skipUntil(llvm::function_ref<bool(const Token &)> isSync);
  /// After a statement that began at `start` failed: skips to the next
  /// sync token, over stray closing brackets, always making progress.
  void recover(const char *start,
               llvm::function_ref<bool(const Token &)> isSync);

  // Declarations.
  bool parseImport();
  std::unique_ptr<BlockDecl> parseBlock();
  std::unique_ptr<ModelDecl> parseModel();
  bool parseParams(std::vector<Param> &params, bool typesOptional);
  bool parseStmt(BlockDecl &block);
  bool parseModelItem(ModelDecl &model);
  bool parseInput(ModelDecl &model);
  bool parseLayer(ModelDecl &model, Role role);
  bool parseConstraint(ModelDecl &model);

  // Expressions.
  ExprPtr parseExpr();
  ExprPtr parseAdditive();
  ExprPtr parseMultiplicative();
  ExprPtr parseUnary();
  ExprPtr parsePostfix();
  ExprPtr parsePrimary();
  std::unique_ptr<CallExpr> parseCall(bool parensOptional);
  bool parseArgs(CallExpr &call);
  ExprPtr parseChoice();
  std::optional<std::string> parseStringLiteral();

  SourceFile &file;
  Lexer lexer;
  Diagnostics &diags;
  Token tok;
  llvm::SMLoc prevEnd; // just past the previous token
  Token peekTok;
  bool hasPeek = false;
  unsigned depth = 0;
  const Token &peek();
};

} // namespace qdsl::dsl

#endif // QDSL_DSL_PARSER_H
