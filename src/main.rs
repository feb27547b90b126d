//! The `rollcall` binary: the attendance server (`rollcall serve`, the
//! default) and admin commands on its data directory.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod abuse_args;
mod cli_remote;
mod platform_args;
mod setup_args;

use clap::{Args, Parser, Subcommand};
use rollcall::app::auth::hash_password;
use rollcall::app::{api, App, AppConfig, PlatformBConfig};
use rollcall::store::{Course, Role, Store, User};

#[derive(Parser, Debug)]
#[command(
    name = "rollcall",
    version,
    about = "Real-time attendance server (Socket.IO v5)"
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Args, Debug, Clone)]
struct Common {
    /// Data directory (sled database, generated secret).
    #[arg(long, env = "DATA_DIR", default_value = "./data", global = true)]
    data_dir: PathBuf,
    /// HS256 secret for access tokens (JWT_SECRET is accepted too). Generated
    /// and kept in the data directory when unset.
    #[arg(
        long,
        env = "ACCESS_TOKEN_SECRET",
        global = true,
        hide_env_values = true
    )]
    secret: Option<String>,
    /// sled cache size in MiB.
    #[arg(long, env = "SLED_CACHE_MB", default_value_t = 64, global = true)]
    cache_mb: u64,
    /// Admin commands: the running server's URL (default: the address in
    /// DATA_DIR/server.json when a server answers there).
    #[arg(long, env = "ROLLCALL_SERVER", global = true)]
    server: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server (the default).
    Serve(Box<ServeArgs>),
    /// Manage users.
    #[command(subcommand)]
    User(UserCmd),
    /// Manage courses.
    #[command(subcommand)]
    Course(CourseCmd),
    /// Enroll students in a course.
    Enroll {
        /// Course id.
        #[arg(long)]
        course: String,
        /// Student user ids.
        #[arg(required = true)]
        students: Vec<String>,
    },
    /// Print an access token for a user (for development).
    Token {
        /// User id.
        user: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 86_400)]
        ttl: u64,
    },
    /// Print a session's attendance as CSV.
    Export {
        /// Session id.
        session: String,
    },
}

#[derive(Args, Debug, Default)]
struct ServeArgs {
    /// Port (CHAT_PORT is accepted too; default 4002).
    #[arg(long, env = "PORT")]
    port: Option<u16>,
    /// Address to bind.
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    host: String,
    /// Allowed CORS origins, comma-separated (`*` for any).
    #[arg(long, env = "CLIENT_URL", default_value = "http://localhost:3000")]
    client_url: String,
    /// Whether POST /api/auth/register creates students.
    #[arg(long, env = "ALLOW_REGISTRATION", default_value_t = true, action = clap::ArgAction::Set)]
    allow_registration: bool,
    /// End sessions with no change for this many seconds.
    #[arg(long, env = "SESSION_IDLE_SECS", default_value_t = 3 * 3600)]
    session_idle_secs: u64,
    /// How often to look for idle sessions, in seconds.
    #[arg(long, env = "IDLE_CHECK_SECS", default_value_t = 60)]
    idle_check_secs: u64,
    /// Requests per second per socket (sustained).
    #[arg(long, env = "RATE_LIMIT", default_value_t = 50.0)]
    rate_limit: f64,
    /// Requests per socket in a burst.
    #[arg(long, env = "RATE_BURST", default_value_t = 200.0)]
    rate_burst: f64,
    /// Lifetime of check-in codes in seconds.
    #[arg(long, env = "CHECKIN_CODE_SECS", default_value_t = 30)]
    code_secs: u64,
    /// Lifetime of issued tokens in seconds.
    #[arg(long, env = "TOKEN_TTL_SECS", default_value_t = 86_400)]
    token_ttl_secs: u64,
    /// Sessions, tokens, authenticate-after-connect, messaging.
    #[command(flatten)]
    platform_b: PlatformBConfig,
    #[command(flatten)]
    admin_ui: rollcall::admin_ui::AdminUiArgs,
    #[command(flatten)]
    platform: platform_args::PlatformArgs,
    #[command(flatten)]
    setup: setup_args::SetupArgs,
    /// Login, registration, hashing and socket limits (SPEC.md §4.24).
    #[command(flatten)]
    abuse: rollcall::app::abuse::AbuseConfig,
    /// Connection, handshake, body and packet limits (SPEC.md §1.1, §2.16, §3.14).
    #[command(flatten)]
    engine_abuse: abuse_args::AbuseArgs,
    #[command(flatten)]
    ops: OpsArgs,
}

/// Metrics and readiness settings.
#[derive(Args, Debug, Default)]
struct OpsArgs {
    /// Bearer token GET /metrics requires (unset: open).
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// Serve GET /metrics on this host:port only (unset: on the main port).
    #[arg(long, env = "METRICS_ADDR")]
    metrics_addr: Option<String>,
    /// How long each check of GET /api/ready may take, in milliseconds.
    #[arg(long, env = "READY_TIMEOUT_MS", default_value_t = 2000)]
    ready_timeout_ms: u64,
}

#[derive(Subcommand, Debug)]
enum UserCmd {
    /// Add a user.
    Add {
        /// Email (unique).
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// admin, teacher or student.
        #[arg(long, default_value = "student")]
        role: Role,
        /// Password (omit for a user who logs in with minted tokens only).
        #[arg(long, env = "ROLLCALL_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Id (generated when omitted).
        #[arg(long)]
        id: Option<String>,
    },
    /// Add users from JSON lines on stdin: {"id","email","name","role","password"}.
    Import,
    /// List users.
    List,
    /// Disable a user (their sockets are refused from then on).
    Disable {
        /// User id.
        id: String,
    },
    /// Invalidate every token issued to a user so far.
    RevokeTokens {
        /// User id.
        id: String,
    },
}

#[derive(Subcommand, Debug)]
enum CourseCmd {
    /// Add a course.
    Add {
        /// Id.
        #[arg(long)]
        id: String,
        /// Name.
        #[arg(long)]
        name: String,
        /// Teacher user ids.
        #[arg(long = "teacher")]
        teachers: Vec<String>,
    },
    /// List courses.
    List,
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() {
    let _ = dotenvy::dotenv();
    if std::env::var("ACCESS_TOKEN_SECRET").is_err() {
        if let Ok(v) = std::env::var("JWT_SECRET") {
            std::env::set_var("ACCESS_TOKEN_SECRET", v);
        }
    }
    if std::env::var("PORT").is_err() {
        if let Ok(v) = std::env::var("CHAT_PORT") {
            std::env::set_var("PORT", v);
        }
    }
    if let Err(e) = rollcall::app::logging::init() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn open_store(c: &Common) -> Res<Store> {
    std::fs::create_dir_all(&c.data_dir)?;
    Ok(Store::open(&c.data_dir.join("db"), c.cache_mb << 20)?)
}

/// The token secret: configured, or generated once and kept (mode 0600).
fn secret(c: &Common) -> Res<Vec<u8>> {
    if let Some(s) = c.secret.as_ref().filter(|s| !s.is_empty()) {
        return Ok(s.as_bytes().to_vec());
    }
    std::fs::create_dir_all(&c.data_dir)?;
    let path = c.data_dir.join("jwt_secret");
    if let Ok(s) = std::fs::read_to_string(&path) {
        if !s.trim().is_empty() {
            return Ok(s.trim().as_bytes().to_vec());
        }
    }
    let s = rollcall::util::random_id(48);
    write_private(&path, &s)?;
    tracing::warn!(path = %path.display(), "no ACCESS_TOKEN_SECRET set: generated one and stored it in the data directory");
    Ok(s.into_bytes())
}

fn write_private(path: &Path, content: &str) -> Res<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(content.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

fn run(cli: Cli) -> Res<()> {
    let c = cli.common;
    let command = cli
        .command
        .unwrap_or(Command::Serve(Box::new(ServeArgs::default_from_env())));
    if !matches!(command, Command::Serve(_)) {
        // A running server holds the database: go through its API.
        if let Some(url) = cli_remote::server(&c.data_dir, c.server.as_deref())? {
            return cli_remote::run(url, &secret(&c)?, command);
        }
    }
    match command {
        Command::Serve(args) => serve(&c, *args),
        Command::User(cmd) => user_cmd(&c, cmd),
        Command::Course(cmd) => course_cmd(&c, cmd),
        Command::Enroll { course, students } => {
            let store = open_store(&c)?;
            for s in &students {
                match store.user(s)? {
                    Some(u) if u.role == Role::Student => {}
                    _ => return Err(format!("{s} is not a student").into()),
                }
            }
            let (course, _) = store.update_course(&course, |co| {
                for s in &students {
                    if !co.students.contains(s) {
                        co.students.push(s.clone());
                    }
                }
            })?;
            store.flush_blocking()?;
            println!("{} now has {} students", course.id, course.students.len());
            Ok(())
        }
        Command::Token { user, ttl } => {
            let store = open_store(&c)?;
            let u = store.user(&user)?.ok_or("no such user")?;
            let keys = rollcall::app::auth::TokenKeys::new(&secret(&c)?, ttl);
            println!("{}", keys.issue_with_ttl(&u, ttl));
            Ok(())
        }
        Command::Export { session } => {
            let store = open_store(&c)?;
            store.session(&session)?.ok_or("no such session")?;
            print!("{}", api::export_csv(&store, &session)?);
            Ok(())
        }
    }
}

impl ServeArgs {
    /// The serve settings when no subcommand was given.
    fn default_from_env() -> ServeArgs {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            args: ServeArgs,
        }
        Only::try_parse_from(["rollcall"])
            .map(|o| o.args)
            .unwrap_or_default()
    }
}

fn serve(c: &Common, args: ServeArgs) -> Res<()> {
    let store = open_store(c)?;
    let secret = secret(c)?;
    let demo = if args.setup.demo {
        Some(rollcall::app::first_run::demo(
            &store,
            &c.data_dir,
            args.code_secs,
        )?)
    } else {
        None
    };
    let mut config = AppConfig {
        data_dir: c.data_dir.clone(),
        client_urls: args
            .client_url
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        token_ttl_secs: args.token_ttl_secs,
        allow_registration: args.allow_registration,
        session_idle: Duration::from_secs(args.session_idle_secs),
        idle_check_interval: Duration::from_secs(args.idle_check_secs.max(1)),
        rate_per_sec: args.rate_limit,
        rate_burst: args.rate_burst.max(1.0),
        queue_per_socket: 1024,
        code_period_secs: args.code_secs.max(5),
        platform_b: args.platform_b,
        admin_ui: args.admin_ui.config()?,
        abuse: args.abuse,
        metrics_token: args.ops.metrics_token.clone().filter(|t| !t.is_empty()),
        metrics_addr: args.ops.metrics_addr.clone().filter(|a| !a.is_empty()),
        ready_timeout: Duration::from_millis(args.ops.ready_timeout_ms.max(1)),
        ..AppConfig::default()
    };
    args.platform.apply(&mut config, &c.data_dir)?;
    (config.engine_abuse, config.event_limits) = args.engine_abuse.limits();
    let port = args.port.unwrap_or(4002);
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let redis = rollcall::socketio::adapter::redis::RedisNode::from_env().await?;
        let adapter =
            rollcall::socketio::adapter::redis::RedisNode::factory_or_local(redis.as_ref());
        let (app, io) = App::start_with_adapter(config, store.clone(), secret, adapter);
        let listener = rollcall::http::bind(&args.host, port).await?;
        println!("listening on {}", listener.local_addr()?);
        rollcall::app::metrics::start_separate(&app, &io).await?;
        let _ = std::io::stdout().flush();
        // server.json (removed on drop, at exit) and the setup link.
        let _server_file = rollcall::app::first_run::on_listening(
            &store,
            &c.data_dir,
            listener.local_addr()?,
            args.setup.setup_ttl_secs,
        )?;
        if let Some(d) = &demo {
            d.print(&_server_file.url);
        }
        let (served_app, served_io) = (app.clone(), io.clone());
        let limits = io.engine().config().abuse.connections.clone();
        let server = tokio::spawn(rollcall::http::serve_with(
            listener,
            limits,
            move |req, addr| api::route(served_app.clone(), served_io.clone(), req, addr),
        ));
        shutdown_signal().await;
        tracing::info!("shutting down");
        // Tell every socket and drain, then stop accepting and close (SPEC.md §4.20).
        app.begin_shutdown("server shutting down").await;
        server.abort();
        app.finish_shutdown(&io).await?;
        store.flush_blocking()?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn new_user(
    email: &str,
    name: &str,
    role: Role,
    password: Option<&str>,
    id: Option<String>,
) -> Res<User> {
    if !email.contains('@') {
        return Err(format!("{email:?} is not an email address").into());
    }
    Ok(User {
        id: id.unwrap_or_else(|| rollcall::util::random_id(12)),
        email: email.to_string(),
        name: name.to_string(),
        role,
        password_hash: password.map(hash_password),
        active: true,
        token_version: 0,
        created_at: rollcall::store::now_rfc3339(),
    })
}

fn user_cmd(c: &Common, cmd: UserCmd) -> Res<()> {
    let store = open_store(c)?;
    match cmd {
        UserCmd::Add {
            email,
            name,
            role,
            password,
            id,
        } => {
            let u = new_user(&email, &name, role, password.as_deref(), id)?;
            let _ = store.create_user(&u)?;
            println!("{}", u.id);
        }
        UserCmd::Import => {
            let mut n = 0;
            for line in std::io::stdin().lock().lines() {
                let line = line?;
                if line.trim().is_empty() {
                    continue;
                }
                let v: serde_json::Value = serde_json::from_str(&line)?;
                let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
                let role: Role = s("role").unwrap_or_else(|| "student".into()).parse()?;
                let u = new_user(
                    &s("email").ok_or("email is required")?,
                    &s("name").ok_or("name is required")?,
                    role,
                    s("password").as_deref(),
                    s("id"),
                )?;
                let _ = store.create_user(&u)?;
                n += 1;
            }
            println!("imported {n} users");
        }
        UserCmd::List => {
            for u in store.users()? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    u.id,
                    u.email,
                    u.name,
                    u.role.as_str(),
                    if u.active { "active" } else { "disabled" }
                );
            }
        }
        UserCmd::Disable { id } => {
            let _ = store.update_user(&id, |u| u.active = false)?;
            println!("disabled {id}");
        }
        UserCmd::RevokeTokens { id } => {
            let (u, _) = store.update_user(&id, |u| u.token_version += 1)?;
            println!("{id} token version now {}", u.token_version);
        }
    }
    store.flush_blocking()?;
    Ok(())
}

fn course_cmd(c: &Common, cmd: CourseCmd) -> Res<()> {
    let store = open_store(c)?;
    match cmd {
        CourseCmd::Add { id, name, teachers } => {
            for t in &teachers {
                match store.user(t)? {
                    Some(u) if u.role == Role::Teacher || u.role == Role::Admin => {}
                    _ => return Err(format!("{t} is not a teacher").into()),
                }
            }
            let _ = store.create_course(&Course {
                id: id.clone(),
                name,
                teachers,
                students: Vec::new(),
            })?;
            println!("{id}");
        }
        CourseCmd::List => {
            for co in store.courses()? {
                println!(
                    "{}\t{}\tteachers={}\tstudents={}",
                    co.id,
                    co.name,
                    co.teachers.join(","),
                    co.students.len()
                );
            }
        }
    }
    store.flush_blocking()?;
    Ok(())
}
