//! The error type of the `proto` crate: decoding wire messages.

/// Failure to decode or validate a wire message.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("undecodable message: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("unsupported wire version {found} (this build speaks {supported})")]
    Version { found: u32, supported: u32 },
}

impl ProtoError {
    /// A message that cannot be decoded will never decode: redelivering it is pointless.
    pub fn is_retryable(&self) -> bool {
        false
    }
}
