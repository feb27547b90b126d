//! permessage-deflate (RFC 7692): what the server agrees to in the WebSocket
//! handshake, and how a shared [`super::Frame`] gets its compressed form.
//!
//! # Why compression is done once per frame
//!
//! A broadcast is one [`super::Frame`] queued on thousands of connections.
//! Compressing each recipient's copy with its own context (what Node's `ws`
//! does) costs one compression per recipient; here a frame is compressed at
//! most once, on first need, by whichever sender needs it, and every
//! connection that negotiated the extension writes the same compressed bytes.
//! That is only sound without context takeover on the server side: each
//! message is compressed on its own (a fresh LZ77 window), which any client
//! decodes, so the server always answers with `server_no_context_takeover`.
//!
//! # Where the compressed form lives
//!
//! In the frame's shared part, next to its bytes: a slot filled on first
//! need (`OnceLock`), so every clone of the frame, on every connection,
//! sees the one result. Connections that did not agree the extension never
//! look at it; with the extension off everywhere (the default) the fan-out
//! path pays one compare per recipient (the connection's threshold, at
//! `usize::MAX`) and nothing else.
//!
//! # Incoming
//!
//! Client messages with RSV1 set are inflated by the connection's
//! [`Inflater`] with the client's context (kept across messages unless
//! `client_no_context_takeover` was agreed), and the inflated size is checked
//! against `maxPayload` while inflating: a zip bomb costs at most
//! `maxPayload` bytes before the connection is closed with 1009.

pub(crate) mod codec;
mod negotiate;

pub use codec::{compress_message, InflateError, Inflater};
pub use negotiate::{negotiate, Agreed};

/// permessage-deflate settings (off unless set with
/// [`super::EngineConfigBuilder::per_message_deflate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deflate {
    /// Packets shorter than this many bytes (the Engine.IO packet, as
    /// counted against `maxPayload`) are sent uncompressed (default 1024,
    /// like Node's `ws`).
    pub threshold: usize,
    /// Ask every client to compress each message on its own
    /// (`client_no_context_takeover` in the answer even when not offered):
    /// the server then keeps no inflater between a client's messages
    /// (about 40 KB less per connection that sends compressed messages), at
    /// some cost in the client's compression ratio. Default false: the
    /// parameter is agreed only when the client offers it.
    pub client_no_context_takeover: bool,
}

impl Default for Deflate {
    fn default() -> Self {
        Deflate {
            threshold: 1024,
            client_no_context_takeover: false,
        }
    }
}
