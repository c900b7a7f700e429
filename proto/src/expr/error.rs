//! The error of the expression language: what went wrong and at which character.

/// Why an expression could not be parsed, or could not be evaluated for one object.
///
/// Both carry the 0-based position, in characters (not bytes), of the place in the expression
/// text the message is about, so a configuration screen can point at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    /// The text is not a valid expression (syntax, unknown function, arity, argument kind).
    /// Found once, when a mapping configuration is saved.
    #[error("{message} at {position}")]
    Parse { message: String, position: usize },
    /// A valid expression met a value it cannot work with for this object (say, `Mid` with a
    /// start read from an attribute that is not a number).
    #[error("{message} at {position}")]
    Evaluate { message: String, position: usize },
}

impl ExprError {
    pub(super) fn parse(message: impl Into<String>, position: usize) -> Self {
        Self::Parse {
            message: message.into(),
            position,
        }
    }

    pub(super) fn evaluate(message: impl Into<String>, position: usize) -> Self {
        Self::Evaluate {
            message: message.into(),
            position,
        }
    }

    /// The 0-based character position the error is about.
    pub fn position(&self) -> usize {
        match self {
            Self::Parse { position, .. } | Self::Evaluate { position, .. } => *position,
        }
    }

    /// The message without its position.
    pub fn message(&self) -> &str {
        match self {
            Self::Parse { message, .. } | Self::Evaluate { message, .. } => message,
        }
    }

    /// The same expression on the same object fails the same way every time.
    pub fn is_retryable(&self) -> bool {
        false
    }
}
