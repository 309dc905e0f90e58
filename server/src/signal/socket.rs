//! One member's socket: a writer draining the session's queue, and a reader turning
//! frames into session commands.

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

use crate::ids::{ConnId, UserId};
use crate::model::Room;
use crate::rate::{Rate, TokenBucket};
use crate::rooms::outbound::{frame, Outbound, OUTBOUND_QUEUE};
use crate::rooms::session::MemberInit;
use crate::rooms::{JoinError, LiveRooms};

/// A write that takes longer than this means the peer is gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames the reader itself answers (pong, parse errors); tiny, as they are rare.
const LOCAL_QUEUE: usize = 8;
/// Commands a member may send: a burst of 50, refilled at 20 a second. Each command
/// may fan out to every member, so one client must not be able to flood a room.
const COMMAND_RATE: Rate = Rate::new(50.0, 20.0);

/// Who is about to join, and where.
pub struct Joining {
    pub live: LiveRooms,
    pub room: Room,
    pub init: MemberInit,
    pub resume: Option<String>,
}

/// A member in the session, with its socket's halves.
pub struct Connection {
    live: LiveRooms,
    room: Room,
    user: UserId,
    conn: ConnId,
    sink: SplitSink<WebSocket, Message>,
    stream: SplitStream<WebSocket>,
    rx: mpsc::Receiver<Outbound>,
}

/// Joins the session; on refusal the client gets the error and `left`, and None.
pub async fn join(socket: WebSocket, j: Joining) -> Option<Connection> {
    let conn = j.live.next_conn_id();
    let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
    let (mut sink, stream) = socket.split();
    let user = j.init.user.clone();
    match j.live.join(&j.room, j.init, conn, tx, j.resume).await {
        Ok(_) => Some(Connection {
            live: j.live,
            room: j.room,
            user,
            conn,
            sink,
            stream,
            rx,
        }),
        Err(e) => {
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
            live,
            room,
            user,
            conn,
            sink,
            mut stream,
            rx,
        } = self;
        let (local_tx, local_rx) = mpsc::channel(LOCAL_QUEUE);
        let mut writer = tokio::spawn(write_loop(sink, rx, local_rx));
        let idle = Duration::from_secs(IDLE_TIMEOUT_SECONDS.into());
        let mut allowance = TokenBucket::new(COMMAND_RATE, tokio::time::Instant::now().into_std());
        loop {
            let next = tokio::select! {
                // The session closed this connection (leave, removal, ...) and the
                // writer has flushed it.
                _ = &mut writer => break,
                next = tokio::time::timeout(idle, stream.next()) => next,
            };
            let msg = match next {
                Err(_) => {
                    tracing::debug!(%user, "signaling connection idle; dropping");
                    break;
                }
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => break,
                Ok(Some(Ok(m))) => m,
            };
            let text = match msg {
                Message::Text(t) => t,
                Message::Binary(_) => {
                    let _ = local_tx
                        .try_send(error(ErrorCode::InvalidParameter, "send JSON text frames"));
                    continue;
                }
                _ => continue, // ping/pong: proof of life is enough
            };
            if !allowance.take(tokio::time::Instant::now().into_std()) {
                let _ = local_tx.try_send(error(
                    ErrorCode::RateLimited,
                    "too many messages; slow down",
                ));
                continue;
            }
            match serde_json::from_str::<ClientMessage>(text.as_str()) {
                Ok(ClientMessage::Ping { ts }) => {
                    let _ = local_tx.try_send(frame(&ServerMessage::Pong { ts }));
                }
                Ok(m) => live.client_message(&room.id, user.clone(), conn, m).await,
                Err(e) => {
                    let _ = local_tx.try_send(error(
                        ErrorCode::InvalidParameter,
                        &format!("message not understood: {e}"),
                    ));
                }
            }
        }
        // Keeps the member for the resume grace if the session still has this connection.
        live.dropped(&room.id, user, conn).await;
        writer.abort();
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
    mut local: mpsc::Receiver<Bytes>,
) {
    let mut ping = tokio::time::interval(Duration::from_secs(PING_INTERVAL_SECONDS.into()));
    ping.tick().await;
    loop {
        let sent = tokio::select! {
            out = rx.recv() => match out {
                Some(Outbound::Text(f)) => send_text(&mut sink, f).await,
                Some(Outbound::Close) | None => break,
            },
            Some(f) = local.recv() => send_text(&mut sink, f).await,
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
    }
    let close = Message::Close(Some(CloseFrame {
        code: 1000,
        reason: Utf8Bytes::from_static("left"),
    }));
    let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.send(close)).await;
    let _ = sink.close().await;
}
