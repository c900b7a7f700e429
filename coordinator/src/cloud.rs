//! Which Microsoft cloud a tenant lives in, and the login and Graph roots that follow from it.
//!
//! A tenant is stored with explicit URLs ([`crate::NewTenant`]); the cloud is only a way to
//! pick them. Explicit URLs (a simulator, a private endpoint, a cloud not listed here such as
//! DoD or 21Vianet) replace the cloud's pair, and must then be given as a pair: a login host
//! of one cloud with the Graph host of another yields tokens Graph refuses.

use crate::CoordinatorError;

/// A Microsoft cloud with known login and Graph hosts.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Cloud {
    /// Worldwide Entra ID, including US Government GCC Moderate.
    #[default]
    Global,
    /// US Government L4 (GCC High).
    GccHigh,
}

/// The two roots a Graph client needs; the token scope is `{graph_base_url}/.default`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphEndpoints {
    pub login_url: String,
    pub graph_base_url: String,
}

impl Cloud {
    /// The cloud's login and Graph roots, without a trailing slash.
    pub fn endpoints(self) -> GraphEndpoints {
        let (login, graph) = match self {
            Cloud::Global => (
                "https://login.microsoftonline.com",
                "https://graph.microsoft.com",
            ),
            Cloud::GccHigh => (
                "https://login.microsoftonline.us",
                "https://graph.microsoft.us",
            ),
        };
        GraphEndpoints {
            login_url: login.into(),
            graph_base_url: graph.into(),
        }
    }
}

/// The endpoints to store for a tenant: both explicit URLs when given, else the cloud's.
pub fn resolve_endpoints(
    cloud: Cloud,
    login_url: Option<&str>,
    graph_base_url: Option<&str>,
) -> Result<GraphEndpoints, CoordinatorError> {
    match (login_url, graph_base_url) {
        (Some(login), Some(graph)) => Ok(GraphEndpoints {
            login_url: login.to_string(),
            graph_base_url: graph.to_string(),
        }),
        (None, None) => Ok(cloud.endpoints()),
        (Some(_), None) | (None, Some(_)) => Err(CoordinatorError::Invalid(
            "--graph-login-url and --graph-base-url must be given together (a custom endpoint) \
             or not at all (the endpoints of --cloud)"
                .into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_cases() {
        /// Name, cloud, explicit login and Graph URLs, and the expected pair (None: rejected).
        type Case = (
            &'static str,
            Cloud,
            Option<&'static str>,
            Option<&'static str>,
            Option<(&'static str, &'static str)>,
        );
        let cases: [Case; 7] = [
            (
                "global by default",
                Cloud::default(),
                None,
                None,
                Some((
                    "https://login.microsoftonline.com",
                    "https://graph.microsoft.com",
                )),
            ),
            (
                "gcc high",
                Cloud::GccHigh,
                None,
                None,
                Some((
                    "https://login.microsoftonline.us",
                    "https://graph.microsoft.us",
                )),
            ),
            (
                "explicit pair overrides global",
                Cloud::Global,
                Some("http://127.0.0.1:8081"),
                Some("http://127.0.0.1:8082"),
                Some(("http://127.0.0.1:8081", "http://127.0.0.1:8082")),
            ),
            (
                "explicit pair overrides gcc high",
                Cloud::GccHigh,
                Some("https://login.example"),
                Some("https://graph.example"),
                Some(("https://login.example", "https://graph.example")),
            ),
            (
                "login url alone",
                Cloud::Global,
                Some("https://login.example"),
                None,
                None,
            ),
            (
                "graph url alone",
                Cloud::Global,
                None,
                Some("https://graph.example"),
                None,
            ),
            (
                "graph url alone with gcc high",
                Cloud::GccHigh,
                None,
                Some("https://graph.example"),
                None,
            ),
        ];
        for (name, cloud, login, graph, expected) in cases {
            let got = resolve_endpoints(cloud, login, graph);
            match (expected, got) {
                (Some((login, graph)), Ok(e)) => {
                    assert_eq!(
                        (e.login_url.as_str(), e.graph_base_url.as_str()),
                        (login, graph),
                        "{name}"
                    );
                }
                (None, Err(CoordinatorError::Invalid(m))) => {
                    assert!(m.contains("must be given together"), "{name}: {m}");
                }
                (expected, got) => panic!("{name}: expected {expected:?}, got {got:?}"),
            }
        }
    }
}
