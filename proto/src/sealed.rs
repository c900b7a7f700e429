//! Tenant secrets sealed at rest: the Graph client secret and the SCIM token are stored as
//! `v1:<base64url(nonce || ciphertext)>`, XChaCha20-Poly1305 under the deployment's
//! [`SecretsKey`] (`DIRSYNC_SECRETS_KEY`).
//!
//! The associated data is the tenant id and the column, so a sealed value copied into
//! another tenant's row, or into the other secret's column, does not open. The nonce is 24
//! random bytes per seal (XChaCha's nonce is long enough for random nonces to never repeat
//! in practice), so sealing the same secret twice gives two different texts.
//!
//! Pure apart from drawing the nonce from the operating system's random source.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretBox, SecretString};

use crate::{ProtoError, TenantId};

/// Prefix of a sealed value; a stored value without it is a legacy plain-text secret.
pub const SEALED_PREFIX: &str = "v1:";

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;

/// Which secret of a tenant's row a value is (part of the associated data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretField {
    /// `tenants.client_secret`: the Graph app's client secret.
    ClientSecret,
    /// `tenants.scim_token`: the Webex SCIM bearer token.
    ScimToken,
}

impl SecretField {
    /// The column name, as bound into the associated data.
    pub fn column(self) -> &'static str {
        match self {
            SecretField::ClientSecret => "client_secret",
            SecretField::ScimToken => "scim_token",
        }
    }
}

/// Whether a stored value is sealed (else it is a legacy plain-text secret).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED_PREFIX)
}

/// The deployment's 32-byte key for tenant secrets. Its `Debug` never shows the bytes, and
/// they are zeroed when the last clone is dropped.
#[derive(Clone)]
pub struct SecretsKey(Arc<SecretBox<[u8; KEY_LEN]>>);

impl fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretsKey(<redacted>)")
    }
}

impl SecretsKey {
    /// A key from its text form: standard base64 of 32 bytes (`openssl rand -base64 32`),
    /// surrounding whitespace ignored. Errors never quote the text.
    pub fn from_base64(text: &str) -> Result<Self, ProtoError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| ProtoError::SecretsKey("it is not base64".into()))?;
        let bytes: [u8; KEY_LEN] = bytes.try_into().map_err(|b: Vec<u8>| {
            ProtoError::SecretsKey(format!("it decodes to {} bytes, not {KEY_LEN}", b.len()))
        })?;
        Ok(Self::from_bytes(bytes))
    }

    /// A fresh random key.
    pub fn generate() -> Result<Self, ProtoError> {
        let key =
            chacha20poly1305::Key::try_generate().map_err(|e| ProtoError::Random(e.to_string()))?;
        Ok(Self::from_bytes(key.into()))
    }

    fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        SecretsKey(Arc::new(SecretBox::new(Box::new(bytes))))
    }

    /// The text form accepted by [`Self::from_base64`].
    pub fn to_base64(&self) -> SecretString {
        SecretString::from(STANDARD.encode(self.0.expose_secret()))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.0.expose_secret().into())
    }

    /// Seals `plaintext` as the `field` of tenant `tenant`.
    pub fn seal(
        &self,
        tenant: TenantId,
        field: SecretField,
        plaintext: &str,
    ) -> Result<String, ProtoError> {
        let nonce = XNonce::try_generate().map_err(|e| ProtoError::Random(e.to_string()))?;
        let aad = associated_data(tenant, field);
        let payload = Payload {
            msg: plaintext.as_bytes(),
            aad: &aad,
        };
        // Only plaintexts longer than XChaCha's 256 GiB limit fail to seal.
        let ciphertext = self
            .cipher()
            .encrypt(&nonce, payload)
            .map_err(|_| ProtoError::SealedOpen)?;
        let mut raw = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&ciphertext);
        Ok(format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw)))
    }

    /// Opens a value sealed by [`Self::seal`] for the same tenant and field.
    pub fn open(
        &self,
        tenant: TenantId,
        field: SecretField,
        stored: &str,
    ) -> Result<SecretString, ProtoError> {
        let Some(body) = stored.strip_prefix(SEALED_PREFIX) else {
            return Err(ProtoError::SealedFormat(
                match stored.split_once(':') {
                    Some((v, _)) if v.starts_with('v') && v.len() <= 4 => "unknown version",
                    _ => "no v1: prefix",
                }
                .into(),
            ));
        };
        let raw = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| ProtoError::SealedFormat("not base64url".into()))?;
        if raw.len() < NONCE_LEN + TAG_LEN {
            return Err(ProtoError::SealedFormat("too short".into()));
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).map_err(|_| ProtoError::SealedOpen)?;
        let aad = associated_data(tenant, field);
        let payload = Payload {
            msg: ciphertext,
            aad: &aad,
        };
        let plain = self
            .cipher()
            .decrypt(&nonce, payload)
            .map_err(|_| ProtoError::SealedOpen)?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| ProtoError::SealedFormat("not utf-8".into()))
    }

    /// A stored value as a secret: sealed values are opened, a legacy plain-text value is
    /// taken as is. Returns whether it was legacy (the caller may seal it in place).
    pub fn open_or_legacy(
        &self,
        tenant: TenantId,
        field: SecretField,
        stored: &str,
    ) -> Result<(SecretString, bool), ProtoError> {
        if is_sealed(stored) {
            Ok((self.open(tenant, field, stored)?, false))
        } else {
            Ok((SecretString::from(stored.to_owned()), true))
        }
    }
}

impl FromStr for SecretsKey {
    type Err = ProtoError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_base64(s)
    }
}

/// The associated data: a domain tag, the tenant id and the column.
fn associated_data(tenant: TenantId, field: SecretField) -> Vec<u8> {
    format!("dirsync/sealed/v1/{}/{}", tenant.0, field.column()).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const KEY_B: &str = "HyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4=";

    fn key(text: &str) -> SecretsKey {
        SecretsKey::from_base64(text).unwrap()
    }

    #[test]
    fn round_trips_and_hides_the_plaintext() {
        let k = key(KEY_A);
        let t = TenantId::new();
        for secret in ["s3cret", "", "ünïcödé ~.-_ with spaces", &"x".repeat(4096)] {
            for field in [SecretField::ClientSecret, SecretField::ScimToken] {
                let sealed = k.seal(t, field, secret).unwrap();
                assert!(is_sealed(&sealed), "{sealed}");
                if !secret.is_empty() {
                    assert!(!sealed.contains(secret), "{sealed}");
                }
                assert_eq!(k.open(t, field, &sealed).unwrap().expose_secret(), secret);
            }
        }
        // A fresh nonce each time: the same secret never seals to the same text.
        assert_ne!(
            k.seal(t, SecretField::ScimToken, "tok").unwrap(),
            k.seal(t, SecretField::ScimToken, "tok").unwrap()
        );
    }

    #[test]
    fn refuses_what_it_must() {
        let a = key(KEY_A);
        let b = key(KEY_B);
        let t = TenantId::new();
        let other = TenantId::new();
        let sealed = a.seal(t, SecretField::ScimToken, "tok").unwrap();
        let body = sealed.strip_prefix(SEALED_PREFIX).unwrap();
        let mut flipped = URL_SAFE_NO_PAD.decode(body).unwrap();
        *flipped.last_mut().unwrap() ^= 1;
        let flipped = format!("v1:{}", URL_SAFE_NO_PAD.encode(&flipped));
        let mut nonce_flipped = URL_SAFE_NO_PAD.decode(body).unwrap();
        nonce_flipped[0] ^= 0x80;
        let nonce_flipped = format!("v1:{}", URL_SAFE_NO_PAD.encode(&nonce_flipped));
        let truncated = &sealed[..sealed.len() - 2];
        let short = format!("v1:{}", URL_SAFE_NO_PAD.encode([0u8; 39]));
        type Case<'a> = (
            &'a str,
            &'a SecretsKey,
            TenantId,
            SecretField,
            &'a str,
            &'a str,
        );
        let cases: Vec<Case> = vec![
            (
                "wrong key",
                &b,
                t,
                SecretField::ScimToken,
                &sealed,
                "does not open",
            ),
            (
                "other tenant",
                &a,
                other,
                SecretField::ScimToken,
                &sealed,
                "does not open",
            ),
            (
                "other column",
                &a,
                t,
                SecretField::ClientSecret,
                &sealed,
                "does not open",
            ),
            (
                "tampered tag",
                &a,
                t,
                SecretField::ScimToken,
                &flipped,
                "does not open",
            ),
            (
                "tampered nonce",
                &a,
                t,
                SecretField::ScimToken,
                &nonce_flipped,
                "does not open",
            ),
            (
                "truncated",
                &a,
                t,
                SecretField::ScimToken,
                truncated,
                "does not open",
            ),
            (
                "plain text",
                &a,
                t,
                SecretField::ScimToken,
                "tok",
                "no v1: prefix",
            ),
            ("empty", &a, t, SecretField::ScimToken, "", "no v1: prefix"),
            (
                "future version",
                &a,
                t,
                SecretField::ScimToken,
                "v2:AAAA",
                "unknown version",
            ),
            (
                "not base64url",
                &a,
                t,
                SecretField::ScimToken,
                "v1:a+b/c=",
                "not base64url",
            ),
            (
                "too short",
                &a,
                t,
                SecretField::ScimToken,
                &short,
                "too short",
            ),
            (
                "empty body",
                &a,
                t,
                SecretField::ScimToken,
                "v1:",
                "too short",
            ),
        ];
        for (name, k, tenant, field, stored, expected) in cases {
            match k.open(tenant, field, stored) {
                Ok(_) => panic!("{name}: opened"),
                Err(e) => {
                    let shown = e.to_string();
                    assert!(shown.contains(expected), "{name}: {shown}");
                    assert!(!shown.contains("tok"), "{name}: {shown}");
                }
            }
        }
    }

    #[test]
    fn keys_parse_from_base64_of_32_bytes_only() {
        let cases = [
            (KEY_A, None),
            (" \tHyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4=\n", None),
            ("", Some("0 bytes")),
            ("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd", Some("30 bytes")),
            ("not base64 at all!", Some("not base64")),
            (
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gIQ==",
                Some("34 bytes"),
            ),
        ];
        for (text, expected) in cases {
            match (SecretsKey::from_base64(text), expected) {
                (Ok(_), None) => {}
                (Err(e), Some(part)) => {
                    let shown = e.to_string();
                    assert!(shown.contains(part), "{text:?}: {shown}");
                    assert!(shown.contains("DIRSYNC_SECRETS_KEY"), "{shown}");
                    assert!(
                        text.trim().is_empty() || !shown.contains(text.trim()),
                        "{shown}"
                    );
                }
                (got, _) => panic!("{text:?}: {got:?}"),
            }
        }
    }

    #[test]
    fn keys_never_print_and_survive_their_text_form() {
        let k = key(KEY_A);
        assert_eq!(format!("{k:?}"), "SecretsKey(<redacted>)");
        assert_eq!(k.to_base64().expose_secret(), KEY_A);
        let fresh = SecretsKey::generate().unwrap();
        let again = key(fresh.to_base64().expose_secret());
        let t = TenantId::new();
        let sealed = fresh.seal(t, SecretField::ClientSecret, "s3cret").unwrap();
        let opened = again.open(t, SecretField::ClientSecret, &sealed).unwrap();
        assert_eq!(opened.expose_secret(), "s3cret");
        assert_ne!(
            fresh.to_base64().expose_secret(),
            k.to_base64().expose_secret()
        );
    }

    #[test]
    fn legacy_values_are_taken_as_is() {
        let k = key(KEY_A);
        let t = TenantId::new();
        let sealed = k.seal(t, SecretField::ClientSecret, "s3cret").unwrap();
        let cases = [("s3cret", true), (sealed.as_str(), false)];
        for (stored, legacy) in cases {
            let (secret, was_legacy) = k
                .open_or_legacy(t, SecretField::ClientSecret, stored)
                .unwrap();
            assert_eq!((secret.expose_secret(), was_legacy), ("s3cret", legacy));
        }
        // A sealed value that does not open is an error, never taken as plain text.
        assert!(
            key(KEY_B)
                .open_or_legacy(t, SecretField::ClientSecret, &sealed)
                .is_err()
        );
    }
}
