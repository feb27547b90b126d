//! The admin commands while a server runs (SPEC.md §4.14): sled allows one
//! process per database, so when a server holds the data directory the CLI
//! uses that server's HTTP API (§4.23) instead, as the reserved admin
//! `@cli` with a 60-second token signed with the data directory's secret.
//!
//! Which server: `--server URL` when given, else the address in
//! `DATA_DIR/server.json` (written by `rollcall serve` at start, removed at
//! exit) if something accepts connections there; otherwise the commands
//! open the database directly.

use std::io::{BufRead, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use super::{Command, CourseCmd, Res, UserCmd};
use rollcall::app::auth::TokenKeys;
use rollcall::app::cli_token::issue_cli_token;
use rollcall::app::first_run::{ServerFile, SERVER_FILE};
use rollcall::store::{Role, User};

const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// The running server to use, if any.
pub fn server(data_dir: &Path, flag: Option<&str>) -> Res<Option<String>> {
    if let Some(url) = flag.filter(|u| !u.is_empty()) {
        return Ok(Some(url.trim_end_matches('/').to_string()));
    }
    let Ok(raw) = std::fs::read(data_dir.join(SERVER_FILE)) else {
        return Ok(None);
    };
    let Ok(info) = serde_json::from_slice::<ServerFile>(&raw) else {
        return Ok(None);
    };
    // A server killed without its exit path leaves the file behind: the
    // process must still exist (Linux: /proc) and accept connections.
    #[cfg(target_os = "linux")]
    if !Path::new(&format!("/proc/{}", info.pid)).exists() {
        return Ok(None);
    }
    let alive = host_port(&info.url)
        .ok()
        .and_then(|hp| hp.to_socket_addrs().ok())
        .and_then(|mut a| a.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok());
    Ok(alive.then_some(info.url))
}

fn host_port(url: &str) -> Res<String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("--server must be an http:// URL")?;
    let hp = rest.split('/').next().unwrap_or(rest);
    Ok(if hp.contains(':') {
        hp.to_string()
    } else {
        format!("{hp}:80")
    })
}

/// One API client: the base URL and the CLI token.
struct Client {
    url: String,
    token: String,
}

impl Client {
    /// Sends one request; the JSON (or text) answer, or the API's error.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Res<(u16, String)> {
        let hp = host_port(&self.url)?;
        let addr = hp
            .to_socket_addrs()?
            .next()
            .ok_or("cannot resolve the server address")?;
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        let payload = body.map(|b| b.to_string()).unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {hp}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.token,
            payload.len()
        );
        s.write_all(head.as_bytes())?;
        s.write_all(payload.as_bytes())?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or("malformed answer from the server")?;
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or("malformed status line from the server")?;
        if !(200..300).contains(&status) {
            let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            let msg = v["error"]["message"].as_str().unwrap_or(body);
            let code = v["error"]["code"].as_str().unwrap_or("error");
            return Err(format!("{msg} ({code}, HTTP {status})").into());
        }
        Ok((status, body.to_string()))
    }

    fn json(&self, method: &str, path: &str, body: Option<&Value>) -> Res<Value> {
        let (_, text) = self.call(method, path, body)?;
        Ok(serde_json::from_str(&text)?)
    }

    /// Every item of a paged list.
    fn all(&self, path: &str) -> Res<Vec<Value>> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = match &cursor {
                Some(c) => format!("{path}?limit=500&cursor={}", encode(c)),
                None => format!("{path}?limit=500"),
            };
            let v = self.json("GET", &page, None)?;
            out.extend(v["items"].as_array().cloned().unwrap_or_default());
            match v["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return Ok(out),
            }
        }
    }
}

/// Percent-encodes a query value or path segment.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// A path segment (ids are used as they are in the API's paths).
fn seg(id: &str) -> Res<&str> {
    if id.is_empty() || id.contains(['/', '?', '#', '%', ' ']) {
        return Err(format!("{id:?} cannot be used in a URL: stop the server to use it").into());
    }
    Ok(id)
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// Runs an admin command through the server at `url`.
pub fn run(url: String, secret: &[u8], command: Command) -> Res<()> {
    let keys = TokenKeys::new(secret, 60);
    let c = Client {
        url,
        token: issue_cli_token(&keys, 60),
    };
    match command {
        Command::User(cmd) => user(&c, cmd),
        Command::Course(CourseCmd::Add { id, name, teachers }) => {
            let v = c.json(
                "POST",
                "/api/courses",
                Some(&json!({"id": id, "name": name, "teachers": teachers})),
            )?;
            println!("{}", s(&v["course"]["id"]));
            Ok(())
        }
        Command::Course(CourseCmd::List) => {
            for co in c.all("/api/courses")? {
                let teachers: Vec<&str> = co["teachers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(s)
                    .collect();
                println!(
                    "{}\t{}\tteachers={}\tstudents={}",
                    s(&co["id"]),
                    s(&co["name"]),
                    teachers.join(","),
                    co["students"]
                );
            }
            Ok(())
        }
        Command::Enroll { course, students } => {
            let path = format!("/api/courses/{}/enrolments", seg(&course)?);
            c.json("POST", &path, Some(&json!({"student_ids": students})))?;
            let v = c.json("GET", &format!("/api/courses/{}", seg(&course)?), None)?;
            println!("{course} now has {} students", v["course"]["students"]);
            Ok(())
        }
        Command::Token { user, ttl } => {
            let v = c.json("GET", &format!("/api/admin/users/{}", seg(&user)?), None)?;
            let u = &v["user"];
            let account = User {
                id: s(&u["id"]).to_string(),
                email: s(&u["email"]).to_string(),
                name: s(&u["name"]).to_string(),
                role: s(&u["role"]).parse::<Role>()?,
                password_hash: None,
                active: u["active"].as_bool().unwrap_or(false),
                token_version: v["token_version"].as_u64().unwrap_or(0),
                created_at: String::new(),
            };
            println!(
                "{}",
                TokenKeys::new(secret, ttl).issue_with_ttl(&account, ttl)
            );
            Ok(())
        }
        Command::Export { session } => {
            let path = format!("/api/sessions/{}/attendance.csv", seg(&session)?);
            print!("{}", c.call("GET", &path, None)?.1);
            Ok(())
        }
        Command::Serve(_) => Err("serve: a server already runs on this data directory".into()),
    }
}

fn add_user(c: &Client, v: Value) -> Res<String> {
    let out = c.json("POST", "/api/admin/users", Some(&v))?;
    Ok(s(&out["user"]["id"]).to_string())
}

fn user(c: &Client, cmd: UserCmd) -> Res<()> {
    match cmd {
        UserCmd::Add {
            email,
            name,
            role,
            password,
            id,
        } => {
            let id = add_user(
                c,
                json!({"email": email, "name": name, "role": role.as_str(),
                       "password": password, "id": id}),
            )?;
            println!("{id}");
        }
        UserCmd::Import => {
            let mut n = 0;
            for line in std::io::stdin().lock().lines() {
                let line = line?;
                if line.trim().is_empty() {
                    continue;
                }
                let v: Value = serde_json::from_str(&line)?;
                add_user(c, v)?;
                n += 1;
            }
            println!("imported {n} users");
        }
        UserCmd::List => {
            for u in c.all("/api/admin/users")? {
                let active = u["active"].as_bool().unwrap_or(false);
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    s(&u["id"]),
                    s(&u["email"]),
                    s(&u["name"]),
                    s(&u["role"]),
                    if active { "active" } else { "disabled" }
                );
            }
        }
        UserCmd::Disable { id } => {
            let path = format!("/api/admin/users/{}", seg(&id)?);
            c.json("PATCH", &path, Some(&json!({"active": false})))?;
            println!("disabled {id}");
        }
        UserCmd::RevokeTokens { id } => {
            let path = format!("/api/admin/users/{}/logout", seg(&id)?);
            let v = c.json("POST", &path, Some(&json!({})))?;
            println!(
                "{id} tokens revoked ({} sockets logged out)",
                v["disconnected"]
            );
        }
    }
    Ok(())
}
