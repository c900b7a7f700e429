//! Which hosts a deployment lets dirsync contact on a tenant's behalf (`allowed_hosts`).
//!
//! URLs that a tenant's data can name (its Graph and SCIM roots, Graph's `@odata.nextLink`
//! and `@odata.deltaLink`) are checked against this list before a request goes out, so a
//! forged link or a mistyped base URL cannot send a tenant's token to another server. The
//! coordinator's Graph client and the worker's SCIM client both use it, hence `proto`: the
//! matching is pure, the URL parsing stays with the callers.
//!
//! A pattern is a host name or IP literal, matched exactly and case-insensitively
//! (`graph.microsoft.com`, `127.0.0.1`, `[::1]`), or `*.` and a domain, matching the hosts
//! under that domain but not the domain itself (`*.webex.com`). Ports and schemes are not
//! part of a pattern.

use std::fmt;

use crate::ProtoError;

/// The hosts of the Microsoft clouds dirsync knows (global, GCC High, DoD) and of Webex:
/// what a deployment allows unless its configuration says otherwise.
pub const DEFAULT_ALLOWED_HOSTS: [&str; 6] = [
    "login.microsoftonline.com",
    "graph.microsoft.com",
    "login.microsoftonline.us",
    "graph.microsoft.us",
    "dod-graph.microsoft.us",
    "webexapis.com",
];

/// One parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Exact(String),
    /// `*.domain`: stored as `.domain`, matched as a suffix.
    Under(String),
}

/// The deployment's allow-list of hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHosts {
    patterns: Vec<Pattern>,
}

impl Default for AllowedHosts {
    /// [`DEFAULT_ALLOWED_HOSTS`].
    fn default() -> Self {
        Self::parse(&DEFAULT_ALLOWED_HOSTS).expect("the default patterns are valid")
    }
}

impl AllowedHosts {
    /// The patterns, each trimmed; an error names the first pattern that is not a host name,
    /// an IP literal or `*.` and a domain (empty, a URL, a port, a path, a `*` elsewhere).
    pub fn parse<S: AsRef<str>>(patterns: &[S]) -> Result<Self, String> {
        let mut parsed = Vec::with_capacity(patterns.len());
        for raw in patterns {
            let pattern = raw.as_ref().trim().to_ascii_lowercase();
            let (under, name) = match pattern.strip_prefix("*.") {
                Some(domain) => (true, domain),
                None => (false, pattern.as_str()),
            };
            let bracketed = name.starts_with('[') && name.ends_with(']') && !under;
            let valid = !name.is_empty()
                && (bracketed
                    || name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'))
                && !name.starts_with('.')
                && !name.ends_with('.');
            if !valid {
                return Err(format!(
                    "{:?} is not a host name, an IP address or `*.` and a domain",
                    raw.as_ref()
                ));
            }
            parsed.push(if under {
                Pattern::Under(format!(".{name}"))
            } else {
                Pattern::Exact(name.to_string())
            });
        }
        Ok(Self { patterns: parsed })
    }

    /// Whether `host` (a URL's host, e.g. `url::Url::host_str`) may be contacted.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        !host.is_empty()
            && self.patterns.iter().any(|p| match p {
                Pattern::Exact(name) => *name == host,
                Pattern::Under(suffix) => host.ends_with(suffix.as_str()),
            })
    }

    /// [`Self::allows`] as a result: [`ProtoError::HostNotAllowed`] names the host (empty
    /// for `None`, a URL without one). Such a request is never sent, nor retried.
    pub fn check(&self, host: Option<&str>) -> Result<(), ProtoError> {
        match host {
            Some(h) if self.allows(h) => Ok(()),
            other => Err(ProtoError::HostNotAllowed {
                host: other.unwrap_or_default().to_string(),
            }),
        }
    }
}

impl fmt::Display for AllowedHosts {
    /// The patterns as configured, comma-separated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.patterns.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match p {
                Pattern::Exact(name) => f.write_str(name)?,
                Pattern::Under(suffix) => write!(f, "*{suffix}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_matched_exactly_or_under_a_domain() {
        let allowed =
            AllowedHosts::parse(&["graph.microsoft.com", "*.webex.com", "127.0.0.1", "[::1]"])
                .unwrap();
        // (host, allowed)
        let cases = [
            ("graph.microsoft.com", true),
            ("GRAPH.Microsoft.COM", true),
            ("graph.microsoft.com.", true),
            ("evil-graph.microsoft.com", false),
            ("graph.microsoft.com.evil.example", false),
            ("microsoft.com", false),
            ("api.webex.com", true),
            ("a.b.webex.com", true),
            ("webex.com", false),
            ("evilwebex.com", false),
            ("127.0.0.1", true),
            ("127.0.0.2", false),
            ("[::1]", true),
            ("[::2]", false),
            ("", false),
            (".", false),
        ];
        for (host, expected) in cases {
            assert_eq!(allowed.allows(host), expected, "{host:?}");
        }
    }

    #[test]
    fn the_default_is_microsoft_and_webex() {
        let allowed = AllowedHosts::default();
        for host in [
            "login.microsoftonline.com",
            "graph.microsoft.com",
            "graph.microsoft.us",
            "webexapis.com",
        ] {
            assert!(allowed.allows(host), "{host}");
        }
        for host in [
            "127.0.0.1",
            "localhost",
            "graph.microsoft.com.example",
            "example.com",
        ] {
            assert!(!allowed.allows(host), "{host}");
        }
    }

    #[test]
    fn patterns_that_are_not_hosts_are_refused() {
        for bad in [
            "",
            "  ",
            "*",
            "*.",
            "https://graph.microsoft.com",
            "graph.microsoft.com/v1.0",
            "127.0.0.1:8081",
            "graph.*.com",
            "a*.com",
            ".webex.com",
            "webex.com.",
            "*.[::1]",
        ] {
            let error = AllowedHosts::parse(&[bad]).unwrap_err();
            assert!(error.contains("is not a host name"), "{bad:?}: {error}");
        }
        // Spaces around a pattern (a comma-separated list) do not matter.
        let allowed = AllowedHosts::parse(&[" Graph.Microsoft.com "]).unwrap();
        assert!(allowed.allows("graph.microsoft.com"));
        assert_eq!(allowed.to_string(), "graph.microsoft.com");
    }

    #[test]
    fn a_refusal_names_the_host() {
        let allowed = AllowedHosts::parse(&["graph.microsoft.com"]).unwrap();
        assert!(allowed.check(Some("graph.microsoft.com")).is_ok());
        let refused = allowed.check(Some("attacker.example")).unwrap_err();
        assert!(
            matches!(&refused, ProtoError::HostNotAllowed { host } if host == "attacker.example")
        );
        assert!(
            refused.to_string().contains("\"attacker.example\""),
            "{refused}"
        );
        assert!(!refused.is_retryable());
        assert!(
            matches!(allowed.check(None), Err(ProtoError::HostNotAllowed { host }) if host.is_empty())
        );
    }

    #[test]
    fn the_list_reads_back_as_configured() {
        let allowed = AllowedHosts::parse(&["*.webex.com", "127.0.0.1"]).unwrap();
        assert_eq!(allowed.to_string(), "*.webex.com,127.0.0.1");
        assert_eq!(
            AllowedHosts::parse(&allowed.to_string().split(',').collect::<Vec<_>>()).unwrap(),
            allowed
        );
    }
}
