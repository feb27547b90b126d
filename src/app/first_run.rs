//! First run and the running server's address (SPEC.md §4.23.6, §4.14):
//!
//! - the **setup link**: on a data directory without users the server
//!   writes a single-use token with its expiry to `DATA_DIR/setup.json`
//!   (mode 0600, synced) and prints `http://<addr>/setup?token=…`;
//!   `POST /api/setup` creates the first admin and removes the file. The
//!   file, not memory, holds the token so that using it is durable and a
//!   restart does not revive a used link (a restart on a still empty data
//!   directory issues a new link and the old one stops working);
//! - `--demo`: fills an empty data directory with a demo school;
//! - `DATA_DIR/server.json`: the address of the running server, written at
//!   start and removed at exit, so that the admin CLI can use the server's
//!   API instead of the locked database.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store::{
    now_ms, now_rfc3339, CheckinSettings, Course, Role, Session, SessionStatus, Store, StoreError,
    User,
};

/// Name of the setup token file in the data directory.
pub const SETUP_FILE: &str = "setup.json";
/// Name of the running server's address file in the data directory.
pub const SERVER_FILE: &str = "server.json";
/// The password every demo user shares.
pub const DEMO_PASSWORD: &str = "demo-password";
/// Students in the demo course.
pub const DEMO_STUDENTS: usize = 30;

/// What can go wrong on first run.
#[derive(Debug, thiserror::Error)]
pub enum FirstRunError {
    /// The data directory could not be written.
    #[error("data directory: {0}")]
    Io(#[from] std::io::Error),
    /// The store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// `--demo` on a data directory that has users or courses.
    #[error("--demo needs an empty data directory ({0} has users or courses)")]
    NotEmpty(String),
}

/// The setup token as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetupToken {
    /// The token (random, 32 URL-safe characters).
    pub token: String,
    /// Expiry, Unix ms.
    pub expires_ms: u64,
}

/// The running server's address file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerFile {
    /// Base URL of the HTTP API, e.g. `http://127.0.0.1:4002`.
    pub url: String,
    /// Process id of the server.
    pub pid: u32,
}

/// Writes `content` to `path` with mode 0600 and syncs it and its folder.
fn write_synced(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp)?;
    f.write_all(content)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    sync_dir(path)
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(d) => std::fs::File::open(d)?.sync_all(),
        None => Ok(()),
    }
}

/// Removes `path` durably (a missing file is fine).
pub fn remove_synced(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => sync_dir(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Issues a new setup token valid `ttl_secs` (replacing any older one).
pub fn issue_setup_token(data_dir: &Path, ttl_secs: u64) -> std::io::Result<SetupToken> {
    let t = SetupToken {
        token: crate::util::random_id(24),
        expires_ms: now_ms() + ttl_secs.saturating_mul(1000),
    };
    write_synced(
        &data_dir.join(SETUP_FILE),
        &serde_json::to_vec(&t).unwrap_or_default(),
    )?;
    Ok(t)
}

/// The stored setup token, if any.
pub fn setup_token(data_dir: &Path) -> Option<SetupToken> {
    let raw = std::fs::read(data_dir.join(SETUP_FILE)).ok()?;
    serde_json::from_slice(&raw).ok()
}

/// Whether the store has no users.
pub fn no_users(store: &Store) -> Result<bool, StoreError> {
    Ok(store.users()?.is_empty())
}

/// Removes the running server's address file when dropped.
pub struct ServerFileGuard {
    path: PathBuf,
    /// The server's base URL (as written to the file).
    pub url: String,
}

impl Drop for ServerFileGuard {
    fn drop(&mut self) {
        let _ = remove_synced(&self.path);
    }
}

/// Once listening on `addr`: writes `server.json`, and on a data directory
/// without users issues and prints the setup link (`setup_ttl_secs`).
pub fn on_listening(
    store: &Store,
    data_dir: &Path,
    addr: SocketAddr,
    setup_ttl_secs: u64,
) -> Result<ServerFileGuard, FirstRunError> {
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        addr.ip().to_string()
    };
    let url = if addr.is_ipv6() && !addr.ip().is_unspecified() {
        format!("http://[{host}]:{}", addr.port())
    } else {
        format!("http://{host}:{}", addr.port())
    };
    let file = data_dir.join(SERVER_FILE);
    let info = ServerFile {
        url: url.clone(),
        pid: std::process::id(),
    };
    write_synced(&file, &serde_json::to_vec(&info).unwrap_or_default())?;
    let guard = ServerFileGuard {
        path: file,
        url: url.clone(),
    };
    if no_users(store)? {
        let t = issue_setup_token(data_dir, setup_ttl_secs)?;
        println!(
            "setup: create the first admin at {url}/setup?token={} (single use, valid {} s)",
            t.token, setup_ttl_secs
        );
    }
    let _ = std::io::stdout().flush();
    Ok(guard)
}

/// The demo school made by [`demo`].
pub struct Demo {
    /// `(role, email, id)` of every demo user.
    pub logins: Vec<(Role, String, String)>,
    /// The running session.
    pub session_id: String,
}

/// Fills an empty store with a demo school: an admin, a teacher, a course
/// `demo-101` with 30 students, and a running session; every user has the
/// password [`DEMO_PASSWORD`].
pub fn demo(store: &Store, data_dir: &Path, code_period_secs: u64) -> Result<Demo, FirstRunError> {
    if !store.users()?.is_empty() || !store.courses()?.is_empty() {
        return Err(FirstRunError::NotEmpty(data_dir.display().to_string()));
    }
    // One hash shared by all: the same password, and 32 argon2 runs would
    // only slow the start.
    let hash = super::auth::hash_password(DEMO_PASSWORD);
    let mut logins = Vec::new();
    let mut add = |id: String, email: String, name: String, role: Role| -> Result<(), StoreError> {
        let _ = store.create_user(&User {
            id: id.clone(),
            email: email.clone(),
            name,
            role,
            password_hash: Some(hash.clone()),
            active: true,
            token_version: 0,
            created_at: now_rfc3339(),
        })?;
        logins.push((role, email, id));
        Ok(())
    };
    add(
        "demo-admin".into(),
        "admin@demo.test".into(),
        "Demo Admin".into(),
        Role::Admin,
    )?;
    add(
        "demo-teacher".into(),
        "teacher@demo.test".into(),
        "Ada Teacher".into(),
        Role::Teacher,
    )?;
    let students: Vec<String> = (1..=DEMO_STUDENTS)
        .map(|i| format!("demo-s{i:02}"))
        .collect();
    for (i, id) in students.iter().enumerate() {
        add(
            id.clone(),
            format!("student{:02}@demo.test", i + 1),
            format!("Student {:02}", i + 1),
            Role::Student,
        )?;
    }
    let _ = store.create_course(&Course {
        id: "demo-101".into(),
        name: "Demo 101".into(),
        teachers: vec!["demo-teacher".into()],
        students: students.clone(),
    })?;
    let session_id = "demo-101-session-1".to_string();
    let _ = store.start_session(
        &Session {
            id: session_id.clone(),
            course_id: "demo-101".into(),
            teacher_id: "demo-teacher".into(),
            status: SessionStatus::Active,
            started_at: now_rfc3339(),
            ended_at: None,
            last_activity_ms: now_ms(),
            checkin: CheckinSettings {
                code_required: false,
                code_secret: crate::util::random_id(16),
                code_period_secs: code_period_secs.max(5),
                geofence: None,
            },
        },
        &students,
    )?;
    store.flush_blocking()?;
    Ok(Demo { logins, session_id })
}

impl Demo {
    /// Prints how to log in as each demo user.
    pub fn print(&self, url: &str) {
        println!("demo: school ready; every demo user's password is {DEMO_PASSWORD:?}");
        println!("demo: log in with POST {url}/api/auth/login {{\"email\",\"password\"}}");
        for (role, email, id) in &self.logins {
            println!("demo: {:<7} {email} (id {id})", role.as_str());
        }
        println!(
            "demo: course demo-101, running session {} (teacher@demo.test runs it)",
            self.session_id
        );
        let _ = std::io::stdout().flush();
    }
}
