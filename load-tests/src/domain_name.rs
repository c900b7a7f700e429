//! The domain-name rule both simulators apply to the domains they are given.

/// `raw` as a domain name, lower-cased: letters, digits and hyphens in at least two
/// dot-separated labels, no label starting or ending with a hyphen, at most 253 characters.
pub fn normalized(raw: &str) -> Option<String> {
    let name = raw.trim().to_ascii_lowercase();
    let labels_ok = name.split('.').all(|label| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    (labels_ok && name.contains('.') && name.len() <= 253).then_some(name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn domain_names() {
        assert_eq!(
            super::normalized(" Contoso.COM ").as_deref(),
            Some("contoso.com")
        );
        for bad in [
            "", "contoso", "-a.com", "a-.com", "a..com", "a b.com", "a_b.com",
        ] {
            assert_eq!(super::normalized(bad), None, "{bad}");
        }
    }
}
