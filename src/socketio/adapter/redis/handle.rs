//! What a namespace does with a message from another node: decode it
//! (classic or sharded), drop its own and other namespaces' messages, apply
//! it to this node's sockets through the [`LocalAdapter`] and answer what
//! asks for an answer.
//!
//! [`LocalAdapter`]: crate::socketio::adapter::LocalAdapter

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::adapter::Inner;
use super::handshake::describe;
use super::node::RouteKind;
use super::sharded;
use super::wire::{self, Body, Envelope, Legacy, Reply, WireError};
use crate::socketio::adapter::{BroadcastOptions, EventPacket, ServerAck, DEFAULT_ACK_TIMEOUT};

impl Inner {
    /// Handles one message received on a channel of kind `kind`.
    pub(super) fn on_message(self: &Arc<Self>, kind: &RouteKind, msg: Bytes) {
        let decoded = match kind {
            RouteKind::Broadcast => wire::classic_decode_broadcast(&msg),
            RouteKind::Request => wire::classic_decode_request(&msg),
            RouteKind::Response => wire::classic_decode_reply(&msg),
            RouteKind::Sharded => sharded::decode(&msg),
        };
        match decoded {
            Ok(env) => self.apply(env),
            Err(e) => self.malformed(&e),
        }
    }

    fn malformed(&self, e: &WireError) {
        self.node.counters.malformed.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(nsp = %self.nsp, error = %e, "redis message dropped");
    }

    fn apply(self: &Arc<Self>, env: Envelope) {
        if env.uid.as_deref() == Some(self.node.uid.as_str()) {
            return;
        }
        if env.nsp.as_deref().is_some_and(|n| n != self.nsp) {
            return;
        }
        let from = env.uid;
        let local = &self.local;
        match env.body {
            Body::Broadcast {
                packet,
                opts,
                request_id: None,
            } => {
                let p = EventPacket {
                    event: &packet.event,
                    payload: &packet.payload,
                };
                local.broadcast(&p, &opts);
            }
            Body::Broadcast {
                packet,
                opts,
                request_id: Some(id),
            } => {
                let p = EventPacket {
                    event: &packet.event,
                    payload: &packet.payload,
                };
                let acks = local.send_with_ack(&p, &opts);
                let Some(to) = from else { return };
                self.reply(Some(&to), &id, Reply::ClientCount(acks.expected() as u64));
                let timeout = opts.flags.timeout.unwrap_or(DEFAULT_ACK_TIMEOUT);
                let inner = self.clone();
                tokio::spawn(async move {
                    acks.each(timeout, |p| inner.reply(Some(&to), &id, Reply::Ack(p)))
                        .await;
                });
            }
            Body::Join { opts, rooms } => local.add_sockets(&opts, &rooms),
            Body::Leave { opts, rooms } => local.del_sockets(&opts, &rooms),
            Body::Disconnect { opts, close } => local.disconnect_sockets(&opts, close),
            Body::Fetch { request_id, opts } => {
                let sockets = local.select(&opts).iter().map(describe).collect::<Vec<_>>();
                self.reply(from.as_deref(), &request_id, Reply::Sockets(sockets));
            }
            Body::ServerSideEmit { packet, request_id } => {
                let ack = request_id.map(|id| {
                    let inner = self.clone();
                    ServerAck::new(move |p| inner.reply(from.as_deref(), &id, Reply::ServerAck(p)))
                });
                local.apply_server_side_emit(&packet.event, packet.payload, ack);
            }
            Body::AllRooms { request_id } => {
                let rooms = local.rooms().room_names();
                self.reply(from.as_deref(), &request_id, Reply::Rooms(rooms));
            }
            Body::Sockets { request_id, rooms } => {
                let ids = local
                    .select(&BroadcastOptions::to_rooms(rooms))
                    .iter()
                    .map(|s| s.id().to_string())
                    .collect();
                self.reply(from.as_deref(), &request_id, Reply::Ids(ids));
            }
            Body::Legacy {
                kind,
                sid,
                room,
                close,
                request_id,
            } => {
                let Some(s) = local.socket(&sid) else { return };
                match (kind, room) {
                    (Legacy::Join, Some(r)) => s.join(&r),
                    (Legacy::Leave, Some(r)) => s.leave(&r),
                    (Legacy::Disconnect, _) if close => s.conn().close(),
                    (Legacy::Disconnect, _) => s.disconnect(),
                    _ => return,
                }
                if let Some(id) = request_id {
                    self.reply(from.as_deref(), &id, Reply::Done);
                }
            }
            Body::Reply { request_id, reply } => self.on_reply(&request_id, reply),
            Body::Ignored => {}
        }
    }
}
