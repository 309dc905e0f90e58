//! A signaling client over a real WebSocket, with timeouts on every wait.
#![allow(dead_code)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{TestServer, WAIT};

pub struct Ws {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Frames read while waiting for another type, kept for later waits.
    backlog: Vec<Value>,
}

/// A refused upgrade: the HTTP status and the error envelope.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub body: Value,
}

impl TestServer {
    pub async fn ws(&self, token: &str, resume: Option<&str>) -> Result<Ws, Refused> {
        ws_at(&self.addr.to_string(), token, resume).await
    }

    /// Mints a token for `user` and joins; returns the socket and its `joined`.
    pub async fn join(&self, room: &str, user: &str) -> (Ws, Value) {
        let token = self.token(room, user).await;
        let mut ws = self.ws(&token, None).await.expect("join refused");
        let joined = ws.next_of("joined").await;
        (ws, joined)
    }
}

/// Joins the server at `addr` (`host:port`; any server, one in another process too).
pub async fn ws_at(addr: &str, token: &str, resume: Option<&str>) -> Result<Ws, Refused> {
    let mut url = format!("ws://{addr}/v1/rtc?token={token}");
    if let Some(r) = resume {
        url.push_str(&format!("&resume={r}"));
    }
    match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("connect timed out")
    {
        Ok((stream, _)) => Ok(Ws {
            stream,
            backlog: vec![],
        }),
        Err(tungstenite::Error::Http(resp)) => Err(Refused {
            status: resp.status().as_u16(),
            body: resp
                .body()
                .as_ref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null),
        }),
        Err(e) => panic!("websocket failed: {e}"),
    }
}

impl Ws {
    pub async fn send(&mut self, v: Value) {
        self.stream
            .send(Message::Text(v.to_string().into()))
            .await
            .expect("send");
    }

    pub async fn send_raw(&mut self, m: Message) {
        self.stream.send(m).await.expect("send");
    }

    /// The next JSON frame, or None when the socket closed.
    pub async fn next_frame(&mut self, wait: Duration) -> Option<Value> {
        if !self.backlog.is_empty() {
            return Some(self.backlog.remove(0));
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let next = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()?;
            match next {
                Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(&t).unwrap()),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Waits for a frame of `kind`, keeping others for later.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        if let Some(i) = self.backlog.iter().position(|v| v["type"] == kind) {
            return self.backlog.remove(i);
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let next = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .unwrap_or_else(|_| panic!("no '{kind}' within {WAIT:?}; had {:?}", self.backlog));
            match next {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    if v["type"] == kind {
                        return v;
                    }
                    self.backlog.push(v);
                }
                Some(Ok(_)) => continue,
                other => panic!(
                    "socket ended waiting for '{kind}': {other:?}; had {:?}",
                    self.backlog
                ),
            }
        }
    }

    /// Asserts nothing of `kind` arrives within `wait`.
    pub async fn expect_none(&mut self, kind: &str, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline, self.stream.next()).await {
            if let Message::Text(t) = m {
                let v: Value = serde_json::from_str(&t).unwrap();
                assert_ne!(v["type"], kind, "unexpected {v}");
                self.backlog.push(v);
            }
        }
        assert!(
            !self.backlog.iter().any(|v| v["type"] == kind),
            "unexpected {kind}: {:?}",
            self.backlog
        );
    }

    /// Reads until the server closes the socket; returns the `left` reason seen.
    pub async fn closed_with(&mut self) -> String {
        let left = self.next_of("left").await;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => break,
                Ok(Some(Ok(_))) => continue,
                Err(_) => panic!("socket not closed after left"),
            }
        }
        left["reason"].as_str().unwrap().to_string()
    }

    pub async fn set_media(&mut self, audio: bool, video: bool) {
        self.send(json!({"type": "setMedia", "audio": audio, "video": video}))
            .await;
    }
}

/// Ids in a participant list.
pub fn ids(list: &Value) -> Vec<String> {
    let mut v: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}
