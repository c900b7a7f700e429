//! Recursive-descent parser from tokens to the tree, checking every call against the
//! function table.
//!
//! Grammar (whitespace between tokens is free):
//!
//! ```text
//! expression := operand [ ("=" | "<>" | "<" | "<=" | ">" | ">=") operand ]
//! operand    := string | number | "True" | "False" | "[" name "]" | call
//! call       := function "(" [ argument { "," argument } ] ")"
//! argument   := [ expression ]          (empty: an omitted optional argument)
//! ```

use super::ast::{Node, NodeKind};
use super::error::ExprError;
use super::functions::{self, CallArgs, Func};
use super::lexer::{Token, TokenKind};
use super::{MAX_DEPTH, MAX_EXPRESSION_CHARS};

pub(super) fn parse(text: &str) -> Result<Node, ExprError> {
    if text.chars().nth(MAX_EXPRESSION_CHARS).is_some() {
        return Err(ExprError::parse(
            format!("expression longer than {MAX_EXPRESSION_CHARS} characters"),
            MAX_EXPRESSION_CHARS,
        ));
    }
    let tokens = super::lexer::tokenize(text)?;
    let mut parser = Parser { tokens, next: 0 };
    let node = parser.expression(0)?;
    match parser.peek() {
        TokenKind::End => Ok(node),
        _ => Err(parser.unexpected("end of expression")),
    }
}

struct Parser {
    tokens: Vec<Token>,
    next: usize,
}

impl Parser {
    fn peek(&self) -> &TokenKind {
        &self.tokens[self.next].kind
    }

    fn pos(&self) -> usize {
        self.tokens[self.next].pos
    }

    /// Takes the current token; the `End` token is never passed.
    fn bump(&mut self) -> Token {
        let token = self.tokens[self.next].clone();
        if self.next + 1 < self.tokens.len() {
            self.next += 1;
        }
        token
    }

    fn unexpected(&self, expected: &str) -> ExprError {
        ExprError::parse(format!("expected {expected}"), self.pos())
    }

    /// `depth` is the number of calls around this expression.
    fn expression(&mut self, depth: usize) -> Result<Node, ExprError> {
        let left = self.operand(depth)?;
        let TokenKind::Op(op) = *self.peek() else {
            return Ok(left);
        };
        self.bump();
        let right = self.operand(depth)?;
        Ok(Node {
            pos: left.pos,
            kind: NodeKind::Compare {
                op,
                left: Box::new(left),
                right: Box::new(right),
            },
        })
    }

    fn operand(&mut self, depth: usize) -> Result<Node, ExprError> {
        let pos = self.pos();
        let kind = match self.peek().clone() {
            TokenKind::Str(s) => NodeKind::Str(s),
            TokenKind::Int(n) => NodeKind::Int(n),
            TokenKind::Attr(name) => NodeKind::Attr(name),
            TokenKind::Ident(name) => {
                self.bump();
                return self.after_name(name, pos, depth);
            }
            _ => return Err(self.unexpected("an expression")),
        };
        self.bump();
        Ok(Node { pos, kind })
    }

    /// A name was read at `pos`: a call, or a boolean constant.
    fn after_name(&mut self, name: String, pos: usize, depth: usize) -> Result<Node, ExprError> {
        if *self.peek() != TokenKind::LParen {
            if name.eq_ignore_ascii_case("true") || name.eq_ignore_ascii_case("false") {
                return Ok(Node {
                    pos,
                    kind: NodeKind::Bool(name.eq_ignore_ascii_case("true")),
                });
            }
            if Func::lookup(&name).is_some() {
                return Err(self.unexpected("\"(\""));
            }
            return Err(ExprError::parse(format!("unknown name \"{name}\""), pos));
        }
        let Some(func) = Func::lookup(&name) else {
            return Err(ExprError::parse(
                format!("unknown function \"{name}\""),
                pos,
            ));
        };
        if depth >= MAX_DEPTH {
            return Err(ExprError::parse(
                format!("expression nested deeper than {MAX_DEPTH} calls"),
                pos,
            ));
        }
        self.bump();
        let (mut args, positions) = self.arguments(depth + 1)?;
        functions::check_call(
            func,
            &CallArgs {
                name_pos: pos,
                args: &args,
                positions: &positions,
            },
        )?;
        functions::compile_patterns(func, &mut args, &positions)?;
        Ok(Node {
            pos,
            kind: NodeKind::Call { func, args },
        })
    }

    /// After "(": the arguments and their positions, through ")".
    fn arguments(&mut self, depth: usize) -> Result<(Vec<Option<Node>>, Vec<usize>), ExprError> {
        let mut args = Vec::new();
        let mut positions = Vec::new();
        if *self.peek() == TokenKind::RParen {
            self.bump();
            return Ok((args, positions));
        }
        loop {
            positions.push(self.pos());
            args.push(match self.peek() {
                TokenKind::Comma | TokenKind::RParen => None,
                _ => Some(self.expression(depth)?),
            });
            match self.peek() {
                TokenKind::Comma => {
                    self.bump();
                }
                TokenKind::RParen => {
                    self.bump();
                    return Ok((args, positions));
                }
                _ => return Err(self.unexpected("\",\" or \")\"")),
            }
        }
    }
}
