//! Embeds the browser bundle of npm `socket.io-client` (SPEC.md §4.23.8),
//! served at `<socket path>/socket.io.min.js` like the reference server's
//! `serveClient`. The version is pinned by `tests/node/package-lock.json`
//! (its `node_modules/socket.io-client` entry: version and sha512
//! integrity of the tarball); the bundle is never copied into the repository.
//!
//! Sources, first that works (or only the one `ROLLCALL_CLIENT_BUNDLE`
//! names: `node_modules`, `npm-cache`, `download`; `off` for none):
//! 1. `tests/node/node_modules/socket.io-client/dist/` when its
//!    `package.json` has the pinned version (what `npm ci` installed from
//!    the same lockfile);
//! 2. the npm cache (`~/.npm/_cacache`, content-addressed by the
//!    integrity), the tarball checked against the sha512;
//! 3. the tarball from registry.npmjs.org with `curl`, checked against the
//!    sha512 (skipped when `CARGO_NET_OFFLINE=true`).
//!
//! With none, the build still succeeds with a warning, and the route
//! answers 503 saying why; the script then watches `tests/node`, so that a
//! later `npm ci` brings the bundle in on the next build.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use sha2::Digest as _;

const LOCK: &str = "tests/node/package-lock.json";
const NODE_MODULES: &str = "tests/node/node_modules/socket.io-client";
const FILES: [&str; 2] = ["socket.io.min.js", "socket.io.min.js.map"];

/// The pinned version and sha512 integrity (raw digest) from the lockfile.
fn pinned(lock: &str) -> Option<(String, Vec<u8>)> {
    let at = lock.find("\"node_modules/socket.io-client\": {")?;
    let entry = &lock[at..];
    let entry = &entry[..entry.find('}')?];
    let value = |key: &str| {
        let k = format!("\"{key}\": \"");
        let start = entry.find(&k)? + k.len();
        let len = entry[start..].find('"')?;
        Some(entry[start..start + len].to_string())
    };
    let version = value("version")?;
    let integrity = value("integrity")?;
    let digest = base64::engine::general_purpose::STANDARD
        .decode(integrity.strip_prefix("sha512-")?)
        .ok()?;
    Some((version, digest))
}

/// The two files from an installed package of the pinned version.
fn from_node_modules(version: &str) -> Result<Vec<Vec<u8>>, String> {
    let pkg = std::fs::read_to_string(format!("{NODE_MODULES}/package.json"))
        .map_err(|e| format!("{NODE_MODULES}: {e}"))?;
    if !pkg.contains(&format!("\"version\": \"{version}\"")) {
        return Err(format!("{NODE_MODULES} is not version {version}"));
    }
    FILES
        .iter()
        .map(|f| std::fs::read(format!("{NODE_MODULES}/dist/{f}")).map_err(|e| format!("{f}: {e}")))
        .collect()
}

/// The tarball from the npm cache, found by its digest.
fn from_npm_cache(digest: &[u8]) -> Result<Vec<u8>, String> {
    let home = std::env::var("npm_config_cache")
        .map(PathBuf::from)
        .or_else(|_| std::env::var("HOME").map(|h| Path::new(&h).join(".npm")))
        .map_err(|_| "no HOME for the npm cache".to_string())?;
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let p = home
        .join("_cacache/content-v2/sha512")
        .join(&hex[..2])
        .join(&hex[2..4])
        .join(&hex[4..]);
    std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))
}

/// The tarball from the registry.
fn download(version: &str) -> Result<Vec<u8>, String> {
    if std::env::var("CARGO_NET_OFFLINE").is_ok_and(|v| v == "true") {
        return Err("offline (CARGO_NET_OFFLINE)".into());
    }
    let url =
        format!("https://registry.npmjs.org/socket.io-client/-/socket.io-client-{version}.tgz");
    let out = Command::new("curl")
        .args(["-fsSL", "--max-time", "60", &url])
        .output()
        .map_err(|e| format!("curl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "curl {url}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out.stdout)
}

/// Checks a tarball against the pinned sha512 and takes the two files out.
fn unpack(tgz: &[u8], digest: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if sha2::Sha512::digest(tgz)[..] != *digest {
        return Err("tarball does not match the lockfile's sha512 integrity".into());
    }
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(tgz)
        .read_to_end(&mut tar)
        .map_err(|e| format!("gunzip: {e}"))?;
    let mut found: Vec<Option<Vec<u8>>> = vec![None; FILES.len()];
    let mut at = 0;
    while at + 512 <= tar.len() && tar[at] != 0 {
        let h = &tar[at..at + 512];
        let text = |r: std::ops::Range<usize>| {
            let f = &h[r];
            String::from_utf8_lossy(&f[..f.iter().position(|&b| b == 0).unwrap_or(f.len())])
                .to_string()
        };
        let size = usize::from_str_radix(text(124..136).trim(), 8).map_err(|_| "bad tar header")?;
        let (prefix, name) = (text(345..500), text(0..100));
        let path = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let body = tar.get(at + 512..at + 512 + size).ok_or("truncated tar")?;
        for (i, f) in FILES.iter().enumerate() {
            if path == format!("package/dist/{f}") {
                found[i] = Some(body.to_vec());
            }
        }
        at += 512 + size.div_ceil(512) * 512;
    }
    found
        .into_iter()
        .zip(FILES)
        .map(|(f, n)| f.ok_or(format!("{n} not in the tarball")))
        .collect()
}

fn bundle(choice: &str) -> Result<(String, Vec<Vec<u8>>, &'static str), String> {
    let lock = std::fs::read_to_string(LOCK).map_err(|e| format!("{LOCK}: {e}"))?;
    let (version, digest) = pinned(&lock).ok_or(format!("{LOCK} pins no socket.io-client"))?;
    let mut why = Vec::new();
    if matches!(choice, "auto" | "node_modules") {
        match from_node_modules(&version) {
            Ok(files) => return Ok((version, files, "node_modules")),
            Err(e) => why.push(e),
        }
    }
    if matches!(choice, "auto" | "npm-cache") {
        match from_npm_cache(&digest).and_then(|t| unpack(&t, &digest)) {
            Ok(files) => return Ok((version, files, "npm cache")),
            Err(e) => why.push(e),
        }
    }
    if matches!(choice, "auto" | "download") {
        match download(&version).and_then(|t| unpack(&t, &digest)) {
            Ok(files) => return Ok((version, files, "registry.npmjs.org")),
            Err(e) => why.push(e),
        }
    }
    if why.is_empty() {
        why.push(format!("ROLLCALL_CLIENT_BUNDLE={choice}"));
    }
    Err(why.join("; "))
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={LOCK}");
    if Path::new(NODE_MODULES).join("package.json").exists() {
        println!("cargo:rerun-if-changed={NODE_MODULES}/package.json");
    }
    println!("cargo:rerun-if-env-changed=ROLLCALL_CLIENT_BUNDLE");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let choice = std::env::var("ROLLCALL_CLIENT_BUNDLE").unwrap_or_else(|_| "auto".into());
    let (version, files, missing) = match bundle(&choice) {
        Ok((v, f, source)) => {
            // Shown with `cargo build -vv`.
            println!("socket.io-client {v} from {source}");
            (Some(v), f, String::new())
        }
        Err(why) => {
            // Run again once `npm ci` (or anything else) changes tests/node,
            // so a build made before the packages were installed catches up.
            println!("cargo:rerun-if-changed=tests/node");
            println!("cargo:warning=socket.io-client bundle not embedded (/socket.io/socket.io.min.js will answer 503): {why}");
            (None, vec![Vec::new(), Vec::new()], why)
        }
    };
    for (f, body) in FILES.iter().zip(&files) {
        std::fs::write(out.join(f), body).expect("write OUT_DIR");
    }
    let code = format!(
        "/// The embedded socket.io-client version (`None`: not embedded).\n\
         pub const VERSION: Option<&str> = {version:?};\n\
         /// Why it is missing (empty when embedded).\n\
         pub const MISSING: &str = {missing:?};\n\
         /// `dist/socket.io.min.js`.\n\
         pub static MIN_JS: &[u8] = include_bytes!(concat!(env!(\"OUT_DIR\"), \"/socket.io.min.js\"));\n\
         /// `dist/socket.io.min.js.map`.\n\
         pub static MIN_JS_MAP: &[u8] = include_bytes!(concat!(env!(\"OUT_DIR\"), \"/socket.io.min.js.map\"));\n"
    );
    std::fs::write(out.join("client_bundle.rs"), code).expect("write OUT_DIR");
}
