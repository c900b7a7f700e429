//! Users' profile photos: `GET /users/{id}/photo` for the entity tag that changes with the
//! photo, and `/photo/$value` for its bytes.
//!
//! Photos are not change-tracked by `users/delta` (graph.md §1.2), so the avatar pass asks
//! for the tag; a user without a photo answers `404 ImageNotFound`, which is an answer
//! ("none"), not an error.

use serde::Deserialize;

use super::GraphClient;
use crate::CoordinatorError;

/// The metadata answer; only the tag matters.
#[derive(Deserialize)]
struct PhotoMetadata {
    #[serde(rename = "@odata.mediaEtag")]
    etag: Option<String>,
}

/// The entity tag of a metadata answer; an answer without one is refused, as there would be
/// nothing to tell a new photo from the old by.
pub fn parse_photo_etag(body: &[u8]) -> Result<String, CoordinatorError> {
    let meta: PhotoMetadata = serde_json::from_slice(body)
        .map_err(|e| CoordinatorError::GraphPage(format!("photo metadata: {e}")))?;
    meta.etag
        .filter(|t| !t.is_empty())
        .ok_or_else(|| CoordinatorError::GraphPage("photo metadata without a media etag".into()))
}

/// An Entra object id as a URL path segment: ids are GUIDs; anything else is refused rather
/// than escaped, so no id can reach another path.
fn user_segment(id: &str) -> Result<&str, CoordinatorError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    ok.then_some(id)
        .ok_or_else(|| CoordinatorError::Invalid(format!("{id:?} is not an entra object id")))
}

/// Turns "no photo" (404) into `None`.
fn none_if_missing<T>(result: Result<T, CoordinatorError>) -> Result<Option<T>, CoordinatorError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(CoordinatorError::GraphStatus { status: 404, .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

impl GraphClient {
    /// The entity tag of the user's photo; `None` when the user has no photo (or is gone).
    pub async fn photo_etag(&self, user_id: &str) -> Result<Option<String>, CoordinatorError> {
        let url = format!(
            "{}/v1.0/users/{}/photo",
            self.graph_base_url(),
            user_segment(user_id)?
        );
        none_if_missing(self.fetch(&url, parse_photo_etag).await)
    }

    /// The user's photo (JPEG bytes); `None` when the user has none.
    pub async fn photo(&self, user_id: &str) -> Result<Option<Vec<u8>>, CoordinatorError> {
        let url = format!(
            "{}/v1.0/users/{}/photo/$value",
            self.graph_base_url(),
            user_segment(user_id)?
        );
        none_if_missing(self.fetch(&url, |b| Ok(b.to_vec())).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_media_etag_is_the_tag() {
        let body = br#"{"@odata.context":"x","@odata.mediaContentType":"image/jpeg",
            "@odata.mediaEtag":"\"BA09D118\"","id":"240X240","height":240,"width":240}"#;
        assert_eq!(parse_photo_etag(body).unwrap(), "\"BA09D118\"");
        assert!(parse_photo_etag(br#"{"id":"240X240"}"#).is_err());
        assert!(parse_photo_etag(b"<html>").is_err());
    }

    #[test]
    fn only_guid_like_ids_become_path_segments() {
        assert!(user_segment("0a1b2c3d-0000-4000-8000-000000000001").is_ok());
        for bad in ["", "../me", "a/b", "a?x=1", "a b", "%2e%2e"] {
            assert!(user_segment(bad).is_err(), "{bad}");
        }
    }
}
