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
//! # Why there is a process-wide threshold
//!
//! A frame must carry its (empty) slot for the compressed form from the
//! moment it is built, before it is cloned to its recipients, and frames are
//! built by the upper layer, which knows nothing of engine settings. So the
//! slot is given only to frames at least as long as the smallest threshold of
//! any engine in the process that has the extension on
//! (`frame_slot`); with the extension off everywhere (the default) no
//! frame gets one, and the fan-out path pays one compare per recipient and
//! nothing else. A frame without a slot is always sent uncompressed, which
//! is valid on any connection.
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

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

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

/// The smallest threshold of the engines with permessage-deflate on in this
/// process (`usize::MAX` while none is).
static SLOT_MIN_LEN: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Called when an engine with permessage-deflate is created: frames from now
/// on of at least `threshold` bytes get a slot for their compressed form.
pub(crate) fn enable(cfg: &Deflate) {
    SLOT_MIN_LEN.fetch_min(cfg.threshold, Ordering::Relaxed);
}

/// The slot for the compressed form of a frame whose Engine.IO packet is
/// `len` bytes long, if any engine could want it (see the module docs).
#[inline]
pub(crate) fn frame_slot(len: usize) -> Option<Arc<OnceLock<Bytes>>> {
    if len >= SLOT_MIN_LEN.load(Ordering::Relaxed) {
        Some(Arc::default())
    } else {
        None
    }
}
