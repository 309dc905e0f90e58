//! One member's socket: a writer draining the session's queue, and a reader turning
//! frames into session commands.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use convene_protocol::signal::{
    ClientMessage, LeaveReason, ServerMessage, IDLE_TIMEOUT_SECONDS, PING_INTERVAL_SECONDS,
};
use convene_protocol::{ErrorBody, ErrorCode};
use futures_util::stream::{SplitSink, StreamExt};
use futures_util::SinkExt;
use tokio::sync::mpsc;

use super::admission::Admitted;
use crate::http::AppState;
use crate::rooms::live::{JoinError, LiveRooms};
use crate::rooms::outbound::{frame, Conn, Outbound, OUTBOUND_QUEUE};

/// A write that takes longer than this means the peer is gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames the reader itself answers (pong, parse errors); tiny, as they are rare.
const LOCAL_QUEUE: usize = 8;
/// Commands a member may send: a burst, refilled at a steady rate. Each command may
/// fan out to every member, so one client must not be able to flood a room.
const COMMAND_BURST: f64 = 50.0;
const COMMANDS_PER_SECOND: f64 = 20.0;

pub async fn serve(socket: WebSocket, state: AppState, admitted: Admitted, resume: Option<String>) {
    let live: LiveRooms = state.live.clone();
    let room = admitted.room.clone();
    let user = admitted.init.user.clone();
    let conn_id = live.next_conn_id();
    let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
    let (mut sink, mut stream) = socket.split();
    let joined = live
        .join(
            &room,
            admitted.init.clone(),
            Conn { id: conn_id, tx },
            resume,
        )
        .await;
    match joined {
        Ok(_) => super::admission::recheck(&state, &admitted).await,
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
            return;
        }
    }
    let (local_tx, local_rx) = mpsc::channel(LOCAL_QUEUE);
    let mut writer = tokio::spawn(write_loop(sink, rx, local_rx));
    let idle = Duration::from_secs(IDLE_TIMEOUT_SECONDS.into());
    let (mut allowance, mut counted_at) = (COMMAND_BURST, tokio::time::Instant::now());
    loop {
        let next = tokio::select! {
            // The session closed this connection (leave, removal, ...) and the writer
            // has flushed it.
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
                let _ =
                    local_tx.try_send(error(ErrorCode::InvalidParameter, "send JSON text frames"));
                continue;
            }
            _ => continue, // ping/pong: proof of life is enough
        };
        let now = tokio::time::Instant::now();
        allowance = (allowance
            + now.duration_since(counted_at).as_secs_f64() * COMMANDS_PER_SECOND)
            .min(COMMAND_BURST);
        counted_at = now;
        if allowance < 1.0 {
            let _ = local_tx.try_send(error(
                ErrorCode::RateLimited,
                "too many messages; slow down",
            ));
            continue;
        }
        allowance -= 1.0;
        match serde_json::from_str::<ClientMessage>(text.as_str()) {
            Ok(ClientMessage::Ping { ts }) => {
                let _ = local_tx.try_send(frame(&ServerMessage::Pong { ts }));
            }
            Ok(m) => {
                live.client_message(&room.id, user.clone(), conn_id, m)
                    .await
            }
            Err(e) => {
                let _ = local_tx.try_send(error(
                    ErrorCode::InvalidParameter,
                    &format!("message not understood: {e}"),
                ));
            }
        }
    }
    // Keeps the member for the resume grace if the session still has this connection.
    live.dropped(&room.id, user, conn_id).await;
    writer.abort();
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
