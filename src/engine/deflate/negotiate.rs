//! The `Sec-WebSocket-Extensions` negotiation of permessage-deflate
//! (RFC 7692 section 7.1), server side.
//!
//! The client lists offers in order of preference; the server accepts the
//! first one it can honour, or none. What the server can honour:
//!
//! - `server_no_context_takeover`: always (and always answered, offered or
//!   not: shared frames are compressed one message at a time);
//! - `server_max_window_bits=15` (answered as such); a smaller window is
//!   declined (the pure-Rust deflater always uses a 32 KB window), so that
//!   offer is skipped;
//! - `client_no_context_takeover`: echoed (the inflater is then reset
//!   between messages), or requested by configuration;
//! - `client_max_window_bits` with or without a value: the inflater always
//!   has the full 32 KB window, so any client window works; not answered
//!   (the client then keeps its default, 15).
//!
//! An offer with an unknown parameter, a repeated parameter, or a value that
//! is not an integer from 8 to 15 is declined, as the RFC requires.

use super::Deflate;

/// What was agreed with one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreed {
    /// The client compresses each message on its own: the inflater is reset
    /// (dropped) after each message.
    pub client_no_context_takeover: bool,
    /// The client offered `server_max_window_bits` (15): it is echoed.
    server_max_window_bits: bool,
}

impl Agreed {
    /// The `Sec-WebSocket-Extensions` value answering the accepted offer.
    pub fn response(&self) -> String {
        let mut s = String::from("permessage-deflate; server_no_context_takeover");
        if self.client_no_context_takeover {
            s.push_str("; client_no_context_takeover");
        }
        if self.server_max_window_bits {
            s.push_str("; server_max_window_bits=15");
        }
        s
    }
}

/// Picks the first permessage-deflate offer among the
/// `Sec-WebSocket-Extensions` header values that the server can honour.
pub fn negotiate<'a>(cfg: &Deflate, headers: impl IntoIterator<Item = &'a [u8]>) -> Option<Agreed> {
    headers
        .into_iter()
        .filter_map(|h| std::str::from_utf8(h).ok())
        .flat_map(|h| split_outside_quotes(h, ','))
        .find_map(|offer| accept_offer(cfg, offer))
}

/// Splits at `sep` except inside double quotes.
fn split_outside_quotes(s: &str, sep: char) -> impl Iterator<Item = &str> {
    let mut quoted = false;
    s.split(move |c: char| {
        if c == '"' {
            quoted = !quoted;
        }
        c == sep && !quoted
    })
}

/// A window-bits value: `8` to `15`, possibly quoted, no leading zeros.
fn window_bits(v: &str) -> Option<u8> {
    let v = v
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v);
    if v.starts_with('0') || v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok().filter(|n| (8..=15).contains(n))
}

/// The answer to one offer (`permessage-deflate; param; param=value`), if
/// the server accepts it.
fn accept_offer(cfg: &Deflate, offer: &str) -> Option<Agreed> {
    let mut parts = split_outside_quotes(offer, ';').map(str::trim);
    if !parts.next()?.eq_ignore_ascii_case("permessage-deflate") {
        return None;
    }
    let mut seen = [false; 4];
    let mut agreed = Agreed {
        client_no_context_takeover: cfg.client_no_context_takeover,
        server_max_window_bits: false,
    };
    for p in parts {
        let (name, value) = match p.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (p, None),
        };
        let slot = match name {
            "server_no_context_takeover" if value.is_none() => 0,
            "client_no_context_takeover" if value.is_none() => {
                agreed.client_no_context_takeover = true;
                1
            }
            "server_max_window_bits" => {
                if window_bits(value?)? != 15 {
                    return None;
                }
                agreed.server_max_window_bits = true;
                2
            }
            "client_max_window_bits" => {
                if let Some(v) = value {
                    window_bits(v)?;
                }
                3
            }
            _ => return None,
        };
        if std::mem::replace(&mut seen[slot], true) {
            return None;
        }
    }
    Some(agreed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(cfg: &Deflate, headers: &[&str]) -> Option<String> {
        negotiate(cfg, headers.iter().map(|h| h.as_bytes())).map(|a| a.response())
    }

    #[test]
    fn answers_what_real_clients_offer() {
        let cfg = Deflate::default();
        // Node's `ws` and Chromium.
        assert_eq!(
            answer(&cfg, &["permessage-deflate; client_max_window_bits"]).as_deref(),
            Some("permessage-deflate; server_no_context_takeover")
        );
        // Firefox-style offer with both context-takeover parameters.
        assert_eq!(
            answer(
                &cfg,
                &["permessage-deflate; client_no_context_takeover; server_no_context_takeover"]
            )
            .as_deref(),
            Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
        );
        assert_eq!(
            answer(&cfg, &["permessage-deflate; server_max_window_bits=\"15\""]).as_deref(),
            Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=15")
        );
    }

    #[test]
    fn configuration_can_require_client_no_context_takeover() {
        let cfg = Deflate {
            client_no_context_takeover: true,
            ..Deflate::default()
        };
        let a = negotiate(&cfg, [&b"permessage-deflate"[..]]).unwrap();
        assert!(a.client_no_context_takeover);
        assert_eq!(
            a.response(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
    }

    #[test]
    fn declines_what_it_cannot_honour_and_takes_the_next_offer() {
        let cfg = Deflate::default();
        for bad in [
            "permessage-deflate; server_max_window_bits=10",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=015",
            "permessage-deflate; client_max_window_bits=x",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; mystery",
            "x-webkit-deflate-frame",
            "",
        ] {
            assert_eq!(answer(&cfg, &[bad]), None, "{bad}");
        }
        // The first offer asks for a small server window: declined; the
        // fallback offer (next in the list, or in a second header) is taken.
        let fallback = Some("permessage-deflate; server_no_context_takeover".to_string());
        assert_eq!(
            answer(
                &cfg,
                &["permessage-deflate; server_max_window_bits=10, permessage-deflate"]
            ),
            fallback
        );
        assert_eq!(
            answer(
                &cfg,
                &[
                    "foo, permessage-deflate; server_max_window_bits=9",
                    "permessage-deflate"
                ]
            ),
            fallback
        );
    }
}
