//! Settings of the admin UI protocol: who may connect, how much it reports,
//! where its namespace is and which origins its browser client comes from.
//! Parsed once at startup, so that a bad hash or mode stops the server
//! instead of locking the operator out later.

use std::str::FromStr;
use std::time::Duration;

use crate::socketio::{AllowedOrigins, Cors};

/// Who may connect to the admin namespace.
#[derive(Clone, PartialEq, Eq)]
pub enum Access {
    /// No admin namespace (the default).
    Off,
    /// Anyone may connect, without a password.
    Open,
    /// HTTP-style basic auth: this username and a password matching this
    /// bcrypt hash.
    Basic {
        /// The username.
        username: String,
        /// The bcrypt hash of the password (`$2a$`, `$2b$`, `$2x$`, `$2y$`).
        hash: String,
    },
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Access::Off => f.write_str("Off"),
            Access::Open => f.write_str("Open"),
            // The hash is a secret of sorts: never printed.
            Access::Basic { username, .. } => write!(f, "Basic({username})"),
        }
    }
}

/// How much the admin namespace reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `config` and `server_stats` only (the default).
    Production,
    /// Also every socket (`all_sockets`) and each socket, room and event
    /// change as it happens.
    Development,
}

/// Why the admin UI settings were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminUiConfigError {
    /// `ADMIN_UI` is not `off`, `open` or `USER:BCRYPT_HASH`.
    #[error("ADMIN_UI must be off, open or USER:BCRYPT_HASH")]
    Access,
    /// The part after the colon is not a bcrypt hash.
    #[error("ADMIN_UI: the password must be a bcrypt hash ($2b$...)")]
    Hash,
    /// `ADMIN_UI_MODE` is not `development` or `production`.
    #[error("ADMIN_UI_MODE must be development or production")]
    Mode,
    /// The namespace does not start with `/`.
    #[error("ADMIN_UI_NAMESPACE must start with / and not be /")]
    Namespace,
}

impl FromStr for Access {
    type Err = AdminUiConfigError;

    fn from_str(s: &str) -> Result<Access, AdminUiConfigError> {
        match s.trim() {
            "" | "off" => Ok(Access::Off),
            "open" => Ok(Access::Open),
            v => {
                let (user, hash) = v.split_once(':').ok_or(AdminUiConfigError::Access)?;
                if user.is_empty() {
                    return Err(AdminUiConfigError::Access);
                }
                bcrypt::HashParts::from_str(hash).map_err(|_| AdminUiConfigError::Hash)?;
                Ok(Access::Basic {
                    username: user.to_string(),
                    hash: hash.to_string(),
                })
            }
        }
    }
}

impl FromStr for Mode {
    type Err = AdminUiConfigError;

    fn from_str(s: &str) -> Result<Mode, AdminUiConfigError> {
        match s.trim() {
            "" | "production" => Ok(Mode::Production),
            "development" => Ok(Mode::Development),
            _ => Err(AdminUiConfigError::Mode),
        }
    }
}

/// The admin UI settings.
#[derive(Debug, Clone)]
pub struct AdminUiConfig {
    /// Who may connect (default [`Access::Off`]).
    pub access: Access,
    /// What is reported (default [`Mode::Production`]).
    pub mode: Mode,
    /// The namespace (default `/admin`).
    pub namespace: String,
    /// Origins the UI is served from, allowed by CORS in addition to the
    /// server's own (default `https://admin.socket.io`, the hosted UI).
    pub origins: Vec<String>,
    /// The `serverId` in `server_stats` (default: the host name).
    pub server_id: Option<String>,
    /// How long a `session` id handed out after a password login stays
    /// valid (default 24 h).
    pub session_ttl: Duration,
    /// Most password checks (bcrypt) running at once; more wait (default 4).
    pub max_concurrent_logins: usize,
    /// Most development-mode events waiting to be sent to the admin
    /// namespace; more are dropped and counted in a warning (default 65,536).
    pub event_queue: usize,
}

impl Default for AdminUiConfig {
    fn default() -> Self {
        AdminUiConfig {
            access: Access::Off,
            mode: Mode::Production,
            namespace: "/admin".into(),
            origins: vec!["https://admin.socket.io".into()],
            server_id: None,
            session_ttl: Duration::from_secs(86_400),
            max_concurrent_logins: 4,
            event_queue: 65_536,
        }
    }
}

impl AdminUiConfig {
    /// Whether the admin namespace is served.
    pub fn enabled(&self) -> bool {
        self.access != Access::Off
    }

    /// Settings from the textual switches (`ADMIN_UI`, `ADMIN_UI_MODE`,
    /// `ADMIN_UI_NAMESPACE`, `ADMIN_UI_ORIGIN` comma-separated); empty
    /// strings keep the defaults.
    pub fn parse(
        access: &str,
        mode: &str,
        namespace: &str,
        origins: &str,
    ) -> Result<AdminUiConfig, AdminUiConfigError> {
        let mut c = AdminUiConfig {
            access: access.parse()?,
            mode: mode.parse()?,
            ..AdminUiConfig::default()
        };
        let ns = namespace.trim();
        if !ns.is_empty() {
            if !ns.starts_with('/') || ns == "/" {
                return Err(AdminUiConfigError::Namespace);
            }
            c.namespace = ns.to_string();
        }
        let list: Vec<String> = origins
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_string())
            .filter(|o| !o.is_empty())
            .collect();
        if !list.is_empty() {
            c.origins = list;
        }
        Ok(c)
    }

    /// `base` with the UI's origins added and credentials on (the UI's
    /// client sends them); unchanged when the admin UI is off.
    pub fn cors(&self, base: Cors) -> Cors {
        if !self.enabled() {
            return base;
        }
        let origins = match base.origins {
            AllowedOrigins::List(mut list) => {
                for o in &self.origins {
                    if !list.contains(o) {
                        list.push(o.clone());
                    }
                }
                AllowedOrigins::List(list)
            }
            AllowedOrigins::Any => AllowedOrigins::Any,
        };
        Cors {
            origins,
            credentials: true,
        }
    }
}

/// The admin UI switches of a command line (flags or environment).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AdminUiArgs {
    /// Admin UI namespace: off, open (no password) or USER:BCRYPT_HASH.
    #[arg(
        long = "admin-ui",
        env = "ADMIN_UI",
        default_value = "off",
        hide_env_values = true
    )]
    pub access: String,
    /// Admin UI mode: production (stats only) or development (every socket and event).
    #[arg(
        long = "admin-ui-mode",
        env = "ADMIN_UI_MODE",
        default_value = "production"
    )]
    pub mode: String,
    /// Admin UI namespace name.
    #[arg(
        long = "admin-ui-namespace",
        env = "ADMIN_UI_NAMESPACE",
        default_value = "/admin"
    )]
    pub namespace: String,
    /// Origins the admin UI is served from (CORS), comma-separated.
    #[arg(
        long = "admin-ui-origin",
        env = "ADMIN_UI_ORIGIN",
        default_value = "https://admin.socket.io"
    )]
    pub origins: String,
    /// The serverId reported in server_stats (default: the host name).
    #[arg(long = "admin-ui-server-id", env = "ADMIN_UI_SERVER_ID")]
    pub server_id: Option<String>,
}

impl AdminUiArgs {
    /// The validated settings.
    pub fn config(&self) -> Result<AdminUiConfig, AdminUiConfigError> {
        let mut c = AdminUiConfig::parse(&self.access, &self.mode, &self.namespace, &self.origins)?;
        c.server_id = self.server_id.clone().filter(|s| !s.is_empty());
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_switches() {
        let hash = bcrypt::hash("pw", 4).unwrap();
        let hash = hash.as_str();
        let c = AdminUiConfig::parse("", "", "", "").unwrap();
        assert!(!c.enabled());
        assert_eq!(c.mode, Mode::Production);
        assert_eq!(c.namespace, "/admin");
        assert_eq!(
            AdminUiConfig::parse("open", "development", "/ops", "")
                .unwrap()
                .namespace,
            "/ops"
        );
        let c =
            AdminUiConfig::parse(&format!("admin:{hash}"), "", "", "http://a, http://b/").unwrap();
        assert_eq!(
            c.access,
            Access::Basic {
                username: "admin".into(),
                hash: hash.into()
            }
        );
        assert_eq!(
            c.origins,
            vec!["http://a".to_string(), "http://b".to_string()]
        );
        assert!(
            !format!("{c:?}").contains(hash),
            "the hash is never printed"
        );
    }

    #[test]
    fn refuses_bad_switches() {
        use AdminUiConfigError as E;
        let cases = [
            (["on", "", ""], E::Access),
            ([":x", "", ""], E::Access),
            (["admin:secret", "", ""], E::Hash),
            (["open", "dev", ""], E::Mode),
            (["open", "", "admin"], E::Namespace),
            (["open", "", "/"], E::Namespace),
        ];
        for ([access, mode, ns], want) in cases {
            let got = AdminUiConfig::parse(access, mode, ns, "").unwrap_err();
            assert_eq!(got, want, "{access} {mode} {ns}");
        }
    }

    #[test]
    fn adds_the_ui_origins_to_cors() {
        let base = Cors {
            origins: AllowedOrigins::List(vec!["http://app".into()]),
            credentials: false,
        };
        let off = AdminUiConfig::default().cors(base.clone());
        assert_eq!(off.origins, AllowedOrigins::List(vec!["http://app".into()]));
        let on = AdminUiConfig::parse("open", "", "", "http://ui")
            .unwrap()
            .cors(base);
        assert_eq!(
            on.origins,
            AllowedOrigins::List(vec!["http://app".into(), "http://ui".into()])
        );
        assert!(on.credentials);
    }
}
