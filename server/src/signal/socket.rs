//! One member's socket: a writer draining the session's queue, and a reader turning
//! frames into session commands.
//!
//! Every frame costs allowance by its size (WebSocket pings too), so a large SDP costs
//! more than a chat line. A member refused for sending too much that keeps sending is
//! disconnected with `left {reason: "rateLimited"}`. A frame too large or not UTF-8
//! gets a close frame saying so (1009, 1007) instead of a dropped connection.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use convene_protocol::signal::{
    ClientMessage, LeaveReason, ServerMessage, IDLE_TIMEOUT_SECONDS, PING_INTERVAL_SECONDS,
};
use convene_protocol::{ErrorBody, ErrorCode};
use futures_util::stream::{SplitSink, SplitStream, StreamExt};
use futures_util::SinkExt;
use tokio::sync::mpsc;

use std::sync::Arc;

use crate::cluster::{Cluster, Membership};
use crate::ids::UserId;
use crate::metrics::Metrics;
use crate::model::Room;
use crate::rate::{Rate, TokenBucket};
use crate::rooms::member_event::MemberEvent;
use crate::rooms::outbound::{frame, Outbound, OUTBOUND_QUEUE};
use crate::rooms::session::MemberInit;
use crate::rooms::JoinError;

/// A write that takes longer than this means the peer is gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a socket the server closed waits for the client's close frame.
const CLOSE_DRAIN: Duration = Duration::from_secs(2);
/// Allowance a member may spend: a burst of 50, refilled at 20 a second. Each command
/// may fan out to every member, so one client must not be able to flood a room.
const COMMAND_RATE: Rate = Rate::new(50.0, 20.0);
/// Bytes one unit of allowance pays for beyond the first: a frame costs
/// `1 + len / COST_BYTES`, so a 60 KiB offer costs 16 chat lines.
const COST_BYTES: usize = 4096;
/// Refusals tolerated before disconnecting: 100, plus one a second. A client that
/// bursts now and then never gets near it; a flood empties it in milliseconds.
const PATIENCE: Rate = Rate::new(100.0, 1.0);

/// The reader's way into the member's own queue, for what it answers itself (pongs,
/// errors, a close for a bad frame). Weak, so that the writer still ends when the
/// session lets go of the queue; and no queue of its own (one is a kilobyte per member).
struct Own(mpsc::WeakSender<Outbound>);

impl Own {
    /// Queued if there is room (a pong may be dropped for a member that lags anyway).
    fn offer(&self, f: Bytes) {
        if let Some(tx) = self.0.upgrade() {
            let _ = tx.try_send(Outbound::Text(f));
        }
    }

    /// Queued when there is room, waiting at most `WRITE_TIMEOUT`; whether it was.
    async fn send(&self, item: Outbound) -> bool {
        let Some(tx) = self.0.upgrade() else {
            return false;
        };
        matches!(
            tokio::time::timeout(WRITE_TIMEOUT, tx.send(item)).await,
            Ok(Ok(()))
        )
    }
}

/// Who is about to join, and where.
pub struct Joining {
    pub cluster: Cluster,
    pub room: Room,
    pub init: MemberInit,
    pub resume: Option<String>,
    pub metrics: Arc<Metrics>,
}

/// A member in the session, with its socket's halves.
pub struct Connection {
    member: Membership,
    user: UserId,
    own: Own,
    sink: SplitSink<WebSocket, Message>,
    stream: SplitStream<WebSocket>,
    rx: mpsc::Receiver<Outbound>,
    metrics: Arc<Metrics>,
}

/// Joins the session; on refusal the client gets the error and `left`, and None.
pub async fn join(socket: WebSocket, j: Joining) -> Option<Connection> {
    let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
    let own = Own(tx.downgrade());
    let (mut sink, stream) = socket.split();
    let user = j.init.user.clone();
    match j.cluster.join_room(&j.room, j.init, tx, j.resume).await {
        Ok(member) => {
            j.metrics.joins.with_label_values(&["joined"]).inc();
            Some(Connection {
                member,
                user,
                own,
                sink,
                stream,
                rx,
                metrics: j.metrics,
            })
        }
        Err(e) => {
            let refused = match e {
                JoinError::RoomFull => ErrorCode::RoomFull,
                JoinError::Closing | JoinError::Busy | JoinError::Unanswered => ErrorCode::Internal,
            };
            j.metrics.joins.with_label_values(&[refused.as_str()]).inc();
            let (code, reason, msg) = match e {
                JoinError::RoomFull => (
                    ErrorCode::RoomFull,
                    LeaveReason::RoomFull,
                    "this room is full",
                ),
                JoinError::Closing => (
                    ErrorCode::Internal,
                    LeaveReason::ServerShutdown,
                    "the server is shutting down; please retry shortly",
                ),
                JoinError::Unanswered => (
                    ErrorCode::Internal,
                    LeaveReason::Timeout,
                    "the server running this room's call did not answer in time; please retry",
                ),
                JoinError::Busy => (
                    ErrorCode::Internal,
                    LeaveReason::Timeout,
                    "the room's session was restarting; please retry",
                ),
            };
            let err = frame(&ServerMessage::Error {
                error: ErrorBody::new(code, msg),
            });
            let left = frame(&ServerMessage::Left { reason });
            for f in [err, left] {
                let _ = send_text(&mut sink, f).await;
            }
            let _ = sink.close().await;
            None
        }
    }
}

impl Connection {
    pub async fn serve(self) {
        let Connection {
            member,
            user,
            own,
            sink,
            mut stream,
            rx,
            metrics,
        } = self;
        let mut writer = tokio::spawn(write_loop(sink, rx, metrics.clone()));
        let idle = Duration::from_secs(IDLE_TIMEOUT_SECONDS.into());
        let start = tokio::time::Instant::now().into_std();
        let mut allowance = TokenBucket::new(COMMAND_RATE, start);
        let mut patience = TokenBucket::new(PATIENCE, start);
        // Whether this spell of refusals was announced.
        let mut told = false;
        // The server closed the socket (sent its close frame).
        let mut closing = false;
        loop {
            let next = tokio::select! {
                // The session closed this connection (leave, removal, ...) and the
                // writer has flushed it.
                _ = &mut writer => {
                    closing = true;
                    break;
                }
                next = tokio::time::timeout(idle, stream.next()) => next,
            };
            let msg = match next {
                Err(_) => {
                    tracing::debug!(%user, "signaling connection idle; dropping");
                    break;
                }
                Ok(None) | Ok(Some(Ok(Message::Close(_)))) => break,
                Ok(Some(Err(e))) => {
                    if let Some((code, why)) = close_for(e) {
                        tracing::debug!(%user, code, why, "closing a signaling connection");
                        if own.send(Outbound::CloseWith(code, why)).await {
                            let _ = tokio::time::timeout(WRITE_TIMEOUT, &mut writer).await;
                            closing = true;
                        }
                    }
                    break;
                }
                Ok(Some(Ok(m))) => m,
            };
            metrics.frames_in.inc();
            let now = tokio::time::Instant::now().into_std();
            let len = match &msg {
                Message::Text(t) => t.len(),
                Message::Binary(b) | Message::Ping(b) | Message::Pong(b) => b.len(),
                _ => 0,
            };
            if !allowance.try_take(1.0 + (len / COST_BYTES) as f64, now) {
                if !patience.take(now) {
                    // Told and told again: leave for good, not kept for resume.
                    member.event(user.clone(), MemberEvent::Flooded).await;
                    let _ = tokio::time::timeout(WRITE_TIMEOUT, &mut writer).await;
                    closing = true;
                    break;
                }
                // Told once per spell of refusals, and never dropped for a full queue
                // (pongs may be): waiting here only slows this member's own reading.
                if !told {
                    told = true;
                    let notice = error(
                        ErrorCode::RateLimited,
                        "too many messages; slow down or you will be disconnected",
                    );
                    own.send(Outbound::Text(notice)).await;
                }
                continue;
            }
            told = false;
            let text = match msg {
                Message::Text(t) => t,
                Message::Binary(_) => {
                    own.offer(error(ErrorCode::InvalidParameter, "send JSON text frames"));
                    continue;
                }
                _ => continue, // ping/pong: proof of life is enough
            };
            match serde_json::from_str::<ClientMessage>(text.as_str()) {
                Ok(ClientMessage::Ping { ts }) => {
                    own.offer(frame(&ServerMessage::Pong { ts }));
                }
                Ok(m) => {
                    let event = MemberEvent::Client { msg: Box::new(m) };
                    member.event(user.clone(), event).await
                }
                Err(e) => {
                    own.offer(error(
                        ErrorCode::InvalidParameter,
                        &format!("message not understood: {e}"),
                    ));
                }
            }
        }
        // Keeps the member for the resume grace if the session still has this connection.
        member.event(user, MemberEvent::Dropped).await;
        writer.abort();
        if closing {
            // The server sent its close frame: read (and drop) what the client still
            // sends until it answers with its own, so the socket is not closed with
            // unread data, which would reset it and could lose the last frames
            // (`left`) before the client reads them.
            let _ = tokio::time::timeout(CLOSE_DRAIN, async {
                while let Some(Ok(m)) = stream.next().await {
                    if matches!(m, Message::Close(_)) {
                        break;
                    }
                }
            })
            .await;
        }
    }
}

/// The close frame owed for a read error, when the peer can still be told: a frame
/// over the size limit (1009) or text that is not UTF-8 (1007).
fn close_for(e: axum::Error) -> Option<(u16, &'static str)> {
    match e
        .into_inner()
        .downcast::<tungstenite::Error>()
        .ok()?
        .as_ref()
    {
        tungstenite::Error::Capacity(_) => Some((1009, "frame too large")),
        tungstenite::Error::Utf8(_) => Some((1007, "text frame is not UTF-8")),
        _ => None,
    }
}

fn error(code: ErrorCode, message: &str) -> Bytes {
    frame(&ServerMessage::Error {
        error: ErrorBody::new(code, message),
    })
}

async fn send_text(sink: &mut SplitSink<WebSocket, Message>, f: Bytes) -> Result<(), ()> {
    let text = Utf8Bytes::try_from(f).map_err(|_| ())?;
    match tokio::time::timeout(WRITE_TIMEOUT, sink.send(Message::Text(text))).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Outbound>,
    metrics: Arc<Metrics>,
) {
    let mut ping = tokio::time::interval(Duration::from_secs(PING_INTERVAL_SECONDS.into()));
    ping.tick().await;
    let mut close = (1000, "left");
    loop {
        let sent = tokio::select! {
            out = rx.recv() => match out {
                Some(Outbound::Text(f)) => send_text(&mut sink, f).await,
                Some(Outbound::Close) | None => break,
                Some(Outbound::CloseWith(code, why)) => {
                    close = (code, why);
                    break;
                }
            },
            _ = ping.tick() => {
                match tokio::time::timeout(WRITE_TIMEOUT, sink.send(Message::Ping(Bytes::new()))).await {
                    Ok(Ok(())) => Ok(()),
                    _ => Err(()),
                }
            }
        };
        if sent.is_err() {
            return;
        }
        metrics.frames_out.inc();
    }
    let close = Message::Close(Some(CloseFrame {
        code: close.0,
        reason: Utf8Bytes::from_static(close.1),
    }));
    let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.send(close)).await;
    let _ = sink.close().await;
}
