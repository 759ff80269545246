//===- Token.h - tokens of the .qd language ---------------------*- C++ -*-===//

#ifndef QDSL_DSL_TOKEN_H
#define QDSL_DSL_TOKEN_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/SMLoc.h"

namespace qdsl::dsl {

enum class TokenKind {
  Eof,
  Error, // the lexer already reported it
  Identifier,
  Integer,
  Float,
  String,
  // Reserved words. Role words (stem, stage, ...) are identifiers that mean
  // something only at the start of a model item.
  KwImport,
  KwBlock,
  KwModel,
  KwSpace,
  KwLet,
  KwReturn,
  KwTrue,
  KwFalse,
  // Punctuation
  LParen,
  RParen,
  LBrace,
  RBrace,
  LBracket,
  RBracket,
  Comma,
  Colon,
  Semicolon,
  Equal,
  Plus,
  Minus,
  Star,
  Slash,
  Percent,
  Dot,
  LessEqual,
  Less,
  Pipe,
};

/// How a token kind reads in an error message: `'('`, `an identifier`.
llvm::StringRef describe(TokenKind kind);

struct Token {
  TokenKind kind = TokenKind::Eof;
  /// The token's text in the source buffer.
  llvm::StringRef text;

  llvm::SMLoc loc() const { return llvm::SMLoc::getFromPointer(text.data()); }
  /// The location just past the token, for "expected X after Y".
  llvm::SMLoc endLoc() const {
    return llvm::SMLoc::getFromPointer(text.data() + text.size());
  }
  bool is(TokenKind k) const { return kind == k; }
  bool isIdentifier(llvm::StringRef word) const {
    return kind == TokenKind::Identifier && text == word;
  }
};

} // namespace qdsl::dsl

#endif // QDSL_DSL_TOKEN_H
