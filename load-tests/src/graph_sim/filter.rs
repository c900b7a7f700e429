//! The one `$filter` form user delta supports (graph.md §1.1): `id eq '…'`, OR-ed, for up to 50
//! objects, a targeted read of those objects. Anything else stays unsupported.

/// Most ids one `$filter` may name.
pub(crate) const MAX_FILTER_IDS: usize = 50;

/// Why a `$filter` was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FilterError {
    /// Not of the form `id eq '…' or id eq '…' …`.
    Unsupported,
    /// More than [`MAX_FILTER_IDS`] ids.
    TooMany(usize),
}

/// The ids of `id eq 'a' or id eq 'b' …` (keywords case-insensitive, any whitespace), in order,
/// without repeats.
pub(crate) fn parse_id_filter(raw: &str) -> Result<Vec<String>, FilterError> {
    let mut tokens = raw.split_whitespace();
    let mut ids: Vec<String> = Vec::new();
    loop {
        let (Some(property), Some(op), Some(literal)) =
            (tokens.next(), tokens.next(), tokens.next())
        else {
            return Err(FilterError::Unsupported);
        };
        if !property.eq_ignore_ascii_case("id") || !op.eq_ignore_ascii_case("eq") {
            return Err(FilterError::Unsupported);
        }
        let id = literal
            .strip_prefix('\'')
            .and_then(|l| l.strip_suffix('\''))
            .filter(|id| !id.is_empty() && !id.contains('\''))
            .ok_or(FilterError::Unsupported)?;
        if !ids.iter().any(|known| known == id) {
            ids.push(id.to_owned());
        }
        match tokens.next() {
            None => break,
            Some(or) if or.eq_ignore_ascii_case("or") => {}
            Some(_) => return Err(FilterError::Unsupported),
        }
    }
    if ids.len() > MAX_FILTER_IDS {
        return Err(FilterError::TooMany(ids.len()));
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing() {
        let fifty: Vec<String> = (0..50).map(|i| format!("id eq 'u{i}'")).collect();
        let fifty_one: Vec<String> = (0..51).map(|i| format!("id eq 'u{i}'")).collect();
        let fifty = fifty.join(" or ");
        let fifty_one = fifty_one.join(" or ");
        // (raw, expected)
        let cases: Vec<(&str, Result<Vec<&str>, FilterError>)> = vec![
            ("id eq 'a'", Ok(vec!["a"])),
            ("ID  EQ 'a'  OR id eq 'b'", Ok(vec!["a", "b"])),
            ("id eq 'a' or id eq 'a'", Ok(vec!["a"])),
            ("", Err(FilterError::Unsupported)),
            ("id eq a", Err(FilterError::Unsupported)),
            ("id eq ''", Err(FilterError::Unsupported)),
            ("id ne 'a'", Err(FilterError::Unsupported)),
            ("displayName eq 'a'", Err(FilterError::Unsupported)),
            ("id eq 'a' and id eq 'b'", Err(FilterError::Unsupported)),
            ("id eq 'a' or", Err(FilterError::Unsupported)),
            ("startswith(displayName,'a')", Err(FilterError::Unsupported)),
            (fifty_one.as_str(), Err(FilterError::TooMany(51))),
        ];
        for (raw, expected) in cases {
            let expected = expected.map(|ids| ids.into_iter().map(str::to_owned).collect());
            assert_eq!(parse_id_filter(raw), expected, "{raw:?}");
        }
        assert_eq!(parse_id_filter(&fifty).unwrap().len(), 50);
    }
}
