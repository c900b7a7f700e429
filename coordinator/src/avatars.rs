//! "Sync user avatars": which users' photos to look at, and the URLs dirsync serves them at.
//!
//! Webex takes an avatar as a URL (`photos[].value`) that it fetches itself; an Entra photo is
//! only readable with the tenant's Graph token. So dirsync serves each photo at
//! `{public_url}/avatars/{tenant}/{user}/{tag}` (`http.rs`), where the tag is an HMAC of the
//! tenant, the user and the photo's entity tag under a deployment key: the URL cannot be
//! guessed from ids, it stops answering when the photo changes or goes, and a new photo
//! means a new URL, which is what makes Webex fetch it again.
//!
//! Graph does not change-track photos, so a run with avatars on ends with an **avatar pass**
//! (`run/avatars.rs`): it asks Graph for the entity tag of a bounded number of active users,
//! never-checked ones first (the users the run created), then the longest unchecked, and
//! sends the users whose URL differs from the one Webex has as follow-up entries.

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use sqlx::PgPool;

use dirsync_proto::TenantId;

use crate::CoordinatorError;

/// The mirror path of the avatar URL (the worker's `map::PHOTO`).
const PHOTO_PATH: &str = "photos[type eq \"photo\"].value";

/// Bytes of the HMAC kept in a URL: 128 bits, hex-encoded.
const TAG_BYTES: usize = 16;

/// Shortest deployment key accepted.
pub const MIN_KEY_BYTES: usize = 32;

/// Signs and checks avatar URLs with the deployment's key.
#[derive(Debug, Clone)]
pub struct AvatarSigner {
    public_url: String,
    key: SecretString,
}

impl AvatarSigner {
    /// `public_url`: where Webex reaches this deployment's `/avatars/` (http or https, no
    /// query); `key`: a secret of at least [`MIN_KEY_BYTES`] bytes, the same on every
    /// coordinator.
    pub fn new(public_url: &str, key: SecretString) -> Result<Self, CoordinatorError> {
        let parsed = url::Url::parse(public_url)
            .map_err(|e| CoordinatorError::Invalid(format!("public url {public_url:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https")
            || parsed.query().is_some()
            || parsed.host().is_none()
        {
            return Err(CoordinatorError::Invalid(format!(
                "public url {public_url:?} must be an http(s) url without a query"
            )));
        }
        if key.expose_secret().len() < MIN_KEY_BYTES {
            return Err(CoordinatorError::Invalid(format!(
                "the avatar key must be at least {MIN_KEY_BYTES} bytes"
            )));
        }
        Ok(Self {
            public_url: public_url.trim_end_matches('/').to_string(),
            key,
        })
    }

    fn mac(&self, tenant: TenantId, user: &str, etag: &str) -> Hmac<Sha256> {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(self.key.expose_secret().as_bytes())
                .expect("hmac takes keys of any length");
        // Lengths first, so that no two (user, etag) pairs give the same message.
        for part in [tenant.0.to_string().as_str(), user, etag] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac
    }

    /// The tag of a user's photo as its entity tag is now.
    pub fn tag(&self, tenant: TenantId, user: &str, etag: &str) -> String {
        let bytes = self.mac(tenant, user, etag).finalize().into_bytes();
        bytes[..TAG_BYTES]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Whether `tag` is the tag of this photo (in constant time).
    pub fn verify(&self, tenant: TenantId, user: &str, etag: &str, tag: &str) -> bool {
        let Some(bytes) = hex(tag).filter(|b| b.len() == TAG_BYTES) else {
            return false;
        };
        self.mac(tenant, user, etag)
            .verify_truncated_left(&bytes)
            .is_ok()
    }

    /// The URL Webex is given for the photo.
    pub fn url(&self, tenant: TenantId, user: &str, etag: &str) -> String {
        format!(
            "{}/avatars/{tenant}/{user}/{}",
            self.public_url,
            self.tag(tenant, user, etag)
        )
    }
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// A user to look at: the Entra id and the avatar URL Webex has (as dirsync last set it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub entra_id: String,
    pub current: Option<String>,
}

/// Up to `limit` active users of the tenant not looked at since `since`, in the order their
/// photos should be looked at: never looked at first, then the longest ago.
pub async fn candidates(
    pool: &PgPool,
    tenant: TenantId,
    limit: usize,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<Candidate>, CoordinatorError> {
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT u.entra_id, u.attributes ->> $3 FROM mirror_users u \
         LEFT JOIN photo_checks c ON c.tenant_id = u.tenant_id AND c.entra_id = u.entra_id \
         WHERE u.tenant_id = $1 AND u.active AND (c.checked_at IS NULL OR c.checked_at < $4) \
         ORDER BY c.checked_at ASC NULLS FIRST, u.entra_id LIMIT $2",
    )
    .bind(tenant.0)
    .bind(limit as i64)
    .bind(PHOTO_PATH)
    .bind(since)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(entra_id, current)| Candidate { entra_id, current })
        .collect())
}

/// Records that these users' photos were looked at now.
pub async fn checked(
    pool: &PgPool,
    tenant: TenantId,
    users: &[String],
) -> Result<(), CoordinatorError> {
    sqlx::query(
        "INSERT INTO photo_checks (tenant_id, entra_id, checked_at) \
         SELECT $1, u, now() FROM UNNEST($2::text[]) AS u \
         ON CONFLICT (tenant_id, entra_id) DO UPDATE SET checked_at = excluded.checked_at",
    )
    .bind(tenant.0)
    .bind(users)
    .execute(pool)
    .await?;
    Ok(())
}

/// The avatar change for one user, if any: `Some(Some(url))` sets it, `Some(None)` removes
/// it, `None` leaves Webex as it is. Pure.
pub fn change(
    signer: &AvatarSigner,
    tenant: TenantId,
    candidate: &Candidate,
    etag: Option<&str>,
) -> Option<Option<String>> {
    let wanted = etag.map(|etag| signer.url(tenant, &candidate.entra_id, etag));
    (wanted != candidate.current).then_some(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> AvatarSigner {
        AvatarSigner::new(
            "https://dirsync.example.com/",
            SecretString::from("k".repeat(MIN_KEY_BYTES)),
        )
        .unwrap()
    }

    #[test]
    fn urls_name_the_photo_and_verify_only_for_it() {
        let s = signer();
        let t = TenantId(uuid::Uuid::from_u128(7));
        let url = s.url(t, "u1", "\"A1\"");
        let tag = url.rsplit('/').next().unwrap();
        assert_eq!(
            url,
            format!("https://dirsync.example.com/avatars/{t}/u1/{tag}")
        );
        assert_eq!(tag.len(), TAG_BYTES * 2);
        assert!(s.verify(t, "u1", "\"A1\"", tag));
        // Another photo, user, tenant or key: not this tag.
        assert!(!s.verify(t, "u1", "\"A2\"", tag));
        assert!(!s.verify(t, "u2", "\"A1\"", tag));
        assert!(!s.verify(TenantId(uuid::Uuid::from_u128(8)), "u1", "\"A1\"", tag));
        let other = AvatarSigner::new(
            "https://dirsync.example.com",
            SecretString::from("x".repeat(MIN_KEY_BYTES)),
        )
        .unwrap();
        assert!(!other.verify(t, "u1", "\"A1\"", tag));
        for bad in ["", "zz", &tag[..10], "é"] {
            assert!(!s.verify(t, "u1", "\"A1\"", bad), "{bad:?}");
        }
        // Lengths are part of the message: moving a character between parts changes it.
        assert_ne!(s.tag(t, "u1a", "b"), s.tag(t, "u1", "ab"));
    }

    #[test]
    fn bad_settings_are_refused_with_reasons() {
        let key = || SecretString::from("k".repeat(MIN_KEY_BYTES));
        for url in ["ftp://x", "not a url", "https://x/?a=1", "file:///tmp"] {
            assert!(AvatarSigner::new(url, key()).is_err(), "{url}");
        }
        let short = AvatarSigner::new("https://x", SecretString::from("short".to_string()));
        assert!(short.unwrap_err().to_string().contains("at least"));
    }

    #[test]
    fn a_change_is_a_differing_url() {
        let s = signer();
        let t = TenantId(uuid::Uuid::from_u128(7));
        let none = Candidate {
            entra_id: "u1".into(),
            current: None,
        };
        let has = Candidate {
            current: Some(s.url(t, "u1", "e1")),
            ..none.clone()
        };
        assert_eq!(change(&s, t, &none, None), None);
        assert_eq!(
            change(&s, t, &none, Some("e1")),
            Some(Some(s.url(t, "u1", "e1")))
        );
        assert_eq!(change(&s, t, &has, Some("e1")), None);
        assert_eq!(
            change(&s, t, &has, Some("e2")),
            Some(Some(s.url(t, "u1", "e2")))
        );
        assert_eq!(change(&s, t, &has, None), Some(None));
    }
}
