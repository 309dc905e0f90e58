//! Starts the real server on 127.0.0.1:0 with a temporary data dir, and a small JSON
//! client for it. Every wait has a timeout.
#![allow(dead_code)]

pub mod light;
pub mod postgres;
pub mod redis;
pub mod rtc;
pub mod rtp;
pub mod ws;

use std::path::{Path, PathBuf};
use std::time::Duration;

use convene::config::Config;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestServer {
    pub base: String,
    pub addr: std::net::SocketAddr,
    pub key: String,
    pub data_dir: PathBuf,
    database_url: Option<convene::secret::Secret>,
    _tmp: Option<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), convene::RunError>>>,
    http: reqwest::Client,
}

/// The test configuration of one node of several (see `TestServer::start_node`).
pub fn node_config(dir: &Path, db: &str, redis: &str, key: &str, node: &str) -> Config {
    let mut config = test_config(dir);
    config.database_url = Some(convene::secret::Secret::new(db));
    config.redis_url = Some(convene::secret::Secret::new(redis));
    config.admin_key = Some(convene::secret::Secret::new(key));
    config.node_id = Some(convene::ids::NodeId::parse(node).expect("a node id"));
    config
}

pub fn test_config(dir: &Path) -> Config {
    let mut c = Config::new(dir);
    c.resume_grace = Duration::from_millis(800);
    c
}

impl TestServer {
    pub async fn start() -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().to_path_buf();
        let mut s = Self::start_with(test_config(&dir)).await;
        s._tmp = Some(tmp);
        s
    }

    /// Like `start`, with the rooms in a new database on the test PostgreSQL.
    pub async fn start_on_postgres() -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut config = test_config(tmp.path());
        config.database_url = Some(convene::secret::Secret::new(postgres::database_url().await));
        let mut s = Self::start_with(config).await;
        s._tmp = Some(tmp);
        s
    }

    /// One node of several: on the PostgreSQL database `db` and the Redis at `redis`,
    /// with the admin key `key`, named `node`.
    pub async fn start_node(db: &str, redis: &str, key: &str, node: &str) -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let config = node_config(tmp.path(), db, redis, key, node);
        let mut s = Self::start_with(config).await;
        s._tmp = Some(tmp);
        s
    }

    pub async fn start_with(config: Config) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let data_dir = config.data_dir.clone();
        let database_url = config.database_url.clone();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(convene::run(listener, config.clone(), async {
            let _ = rx.await;
        }));
        let key = match &config.admin_key {
            Some(k) => k.expose().to_string(),
            None => wait_for_file(&config.admin_key_path()).await,
        };
        let s = Self {
            base: format!("http://{addr}"),
            addr,
            key,
            data_dir,
            database_url,
            _tmp: None,
            stop: Some(tx),
            task: Some(task),
            http: reqwest::Client::new(),
        };
        // Ready when it answers (a node may first wait up to 12 s for an old
        // registration of its id to lapse).
        tokio::time::timeout(WAIT * 2, async {
            loop {
                if s.http.get(s.url("/healthz")).send().await.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("server did not start");
        s
    }

    /// Stops the server gracefully and waits for it; returns the temp dir so a restart
    /// can reuse it.
    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task)
                .await
                .expect("server did not stop in time")
                .expect("server task panicked")
                .expect("server failed");
        }
        self._tmp.take()
    }

    /// The PostgreSQL database it keeps its rooms in; `None` on SQLite.
    pub fn database_url(&self) -> Option<convene::secret::Secret> {
        self.database_url.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.key)
    }

    pub async fn send(&self, rb: reqwest::RequestBuilder) -> (u16, Value) {
        let resp = tokio::time::timeout(WAIT, rb.send())
            .await
            .expect("request timed out")
            .expect("request failed");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, v)
    }

    /// One sample from `/metrics`, named as written (`name{label="v"}`), if present.
    pub async fn metric(&self, sample: &str) -> Option<u64> {
        let r = self
            .req(reqwest::Method::GET, "/metrics")
            .send()
            .await
            .ok()?;
        let text = r.text().await.ok()?;
        let prefix = format!("{sample} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.parse().ok())
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.req(reqwest::Method::GET, path)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(self.req(reqwest::Method::DELETE, path)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(self.req(reqwest::Method::POST, path).json(&body))
            .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(self.req(reqwest::Method::PATCH, path).json(&body))
            .await
    }

    /// Creates a room with `participants` (user -> role) and returns its id.
    pub async fn room(&self, id: &str, participants: &[(&str, &str)]) -> String {
        let roster: serde_json::Map<String, Value> = participants
            .iter()
            .map(|(u, r)| (u.to_string(), serde_json::json!({ "role": r })))
            .collect();
        let (status, body) = self
            .post(
                "/v1/rooms",
                serde_json::json!({ "id": id, "participants": roster }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// Mints a join token for `user` in `room`.
    pub async fn token(&self, room: &str, user: &str) -> String {
        let (status, body) = self
            .post(
                &format!("/v1/rooms/{room}/tokens"),
                serde_json::json!({ "userId": user }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().unwrap().to_string()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

async fn wait_for_file(path: &Path) -> String {
    tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(s) = std::fs::read_to_string(path) {
                if s.ends_with('\n') {
                    return s.trim().to_string();
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("admin key file was not written")
}

/// Asserts the error envelope: status, code, number and (when given) target.
pub fn assert_error(status: u16, body: &Value, want_status: u16, code: &str, target: Option<&str>) {
    assert_eq!(status, want_status, "{body}");
    let e = &body["error"];
    assert_eq!(e["code"], code, "{body}");
    assert!(e["number"].as_u64().unwrap() > 100_000, "{body}");
    assert!(!e["message"].as_str().unwrap().is_empty(), "{body}");
    assert!(
        e["requestId"].as_str().is_some_and(|r| !r.is_empty()),
        "{body}"
    );
    if let Some(t) = target {
        assert_eq!(e["target"], t, "{body}");
    }
}

/// A loopback port free right now (for a server started as a separate process).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
