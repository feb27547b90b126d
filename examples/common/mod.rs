//! What the example servers share: where they listen.

use tokio::net::TcpListener;

/// Binds the listener an example server runs on: address `HOST` (default
/// `127.0.0.1`) and port `PORT` (default `default_port`; 0 picks a free
/// port; an unparsable value falls back to the default), then prints
/// `listening on <addr>` to stdout, which scripts wait for.
pub async fn bind_from_env(default_port: u16) -> std::io::Result<TcpListener> {
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(default_port);
    let listener = rollcall::http::bind(&host, port).await?;
    println!("listening on {}", listener.local_addr()?);
    Ok(listener)
}
