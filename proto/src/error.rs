//! The error type of the `proto` crate: decoding wire messages, sealing tenant secrets.

/// Failure to decode or validate a wire message, or to seal or open a tenant secret.
/// No message ever contains a secret or the key.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("undecodable message: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("unsupported wire version {found} (this build speaks {supported})")]
    Version { found: u32, supported: u32 },
    /// The deployment's secrets key is missing where tenant secrets are read or written.
    #[error("set DIRSYNC_SECRETS_KEY (base64 of 32 random bytes; `openssl rand -base64 32`)")]
    MissingSecretsKey,
    #[error(
        "invalid DIRSYNC_SECRETS_KEY: {0}; it must be the base64 of 32 random bytes \
         (`openssl rand -base64 32`)"
    )]
    SecretsKey(String),
    #[error("sealed secret is malformed: {0}")]
    SealedFormat(String),
    /// Wrong key, a value sealed for another tenant or column, or an altered value.
    #[error(
        "sealed secret does not open: another DIRSYNC_SECRETS_KEY sealed it, it belongs to \
         another tenant, or it was altered"
    )]
    SealedOpen,
    #[error("no randomness from the operating system: {0}")]
    Random(String),
    /// A URL names a host outside the deployment's `allowed_hosts` (`hosts.rs`).
    #[error("host {host:?} is not in allowed_hosts (DIRSYNC_ALLOWED_HOSTS); request refused")]
    HostNotAllowed { host: String },
}

impl ProtoError {
    /// A message that cannot be decoded will never decode: redelivering it is pointless.
    pub fn is_retryable(&self) -> bool {
        false
    }
}
