//! Settings of the platform features (SPEC.md §4.16–§4.20): topics and
//! their role rules, notification limits, the low-attendance threshold,
//! shutdown timing. Parsed from plain strings so the binary's flags and
//! tests build them the same way.

use std::time::Duration;

use crate::store::Role;

/// One topic clients may subscribe to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRule {
    /// The topic's name (`payments`): the room is `topic:<name>`.
    pub name: String,
    /// Roles that may subscribe; empty means every authenticated user.
    pub roles: Vec<Role>,
    /// The event a publication goes out as (`payments` → `payment_update`,
    /// seed 003; any other `t` → `t_update`).
    pub event: String,
}

impl TopicRule {
    /// Whether `role` may subscribe.
    pub fn allows(&self, role: Role) -> bool {
        self.roles.is_empty() || self.roles.contains(&role)
    }
}

/// The default `TOPICS`.
pub const DEFAULT_TOPICS: &str =
    "announcements,payments:admin,attendance:admin|teacher,system:admin";

/// Parses `TOPICS`: comma-separated `name[:role|role...]` (e.g.
/// `payments:admin,announcements`); names are 1–64 characters of letters,
/// digits and `-_.`.
pub fn parse_topics(spec: &str) -> Result<Vec<TopicRule>, String> {
    let mut out: Vec<TopicRule> = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, roles) = part.split_once(':').unwrap_or((part, ""));
        let name = name.trim();
        if !valid_topic(name) {
            return Err(format!(
                "topic {name:?}: 1-64 letters, digits or -_. expected"
            ));
        }
        if out.iter().any(|t| t.name == name) {
            return Err(format!("topic {name:?} listed twice"));
        }
        let roles = roles
            .split('|')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(|r| r.parse::<Role>())
            .collect::<Result<Vec<_>, _>>()?;
        let event = match name {
            "payments" => "payment_update".to_string(),
            n => format!("{n}_update"),
        };
        out.push(TopicRule {
            name: name.to_string(),
            roles,
            event,
        });
    }
    Ok(out)
}

/// Whether `name` is a well-formed topic name.
pub(crate) fn valid_topic(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Settings of the platform features.
#[derive(Debug, Clone)]
pub struct PlatformConfig {
    /// The topics (allow-list with role rules).
    pub topics: Vec<TopicRule>,
    /// Largest notification (title + message + data + action URL, bytes).
    pub notification_max_bytes: usize,
    /// Most unread notifications replayed on connect (oldest first).
    pub replay_max: usize,
    /// Low-attendance warning under this percentage (0 turns it off).
    pub low_attendance_pct: f64,
    /// Suggested reconnect delay sent with `server_shutdown`.
    pub shutdown_reconnect_delay: Duration,
    /// How long shutdown waits for outbound queues to drain.
    pub shutdown_drain: Duration,
}

impl Default for PlatformConfig {
    fn default() -> Self {
        PlatformConfig {
            topics: parse_topics(DEFAULT_TOPICS).unwrap_or_default(),
            notification_max_bytes: 8 * 1024,
            replay_max: 100,
            low_attendance_pct: 75.0,
            shutdown_reconnect_delay: Duration::from_millis(2000),
            shutdown_drain: Duration::from_millis(5000),
        }
    }
}

impl PlatformConfig {
    /// The topic `name`, if allowed at all.
    pub fn topic(&self, name: &str) -> Option<&TopicRule> {
        self.topics.iter().find(|t| t.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_parse_with_roles_and_events() {
        let t = parse_topics(DEFAULT_TOPICS).expect("default");
        assert_eq!(t.len(), 4);
        assert_eq!(t[0].name, "announcements");
        assert!(t[0].allows(Role::Student));
        assert_eq!(t[1].event, "payment_update");
        assert!(!t[1].allows(Role::Teacher));
        assert_eq!(t[2].roles, [Role::Admin, Role::Teacher]);
        assert_eq!(t[2].event, "attendance_update");
        assert!(parse_topics("a,a").is_err());
        assert!(parse_topics("bad name").is_err());
        assert!(parse_topics("x:wizard").is_err());
        assert!(parse_topics("").expect("empty").is_empty());
    }
}
