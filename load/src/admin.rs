//! Sets up a room, its roster and one join token per member through the admin API.

use serde_json::{json, Map, Value};

pub struct Admin {
    pub base: String,
    key: String,
    http: reqwest::Client,
}

type Result<T> = std::result::Result<T, String>;

impl Admin {
    pub fn new(base: &str, key: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            key: key.to_string(),
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Result<Value> {
        let resp = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("{path}: {e}"))?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(format!("{path}: HTTP {status}: {v}"));
        }
        Ok(v)
    }

    /// A room with `members` consumers (`m0`, `m1`, ...) and one presenter (`host`).
    pub async fn setup_room(&self, room: &str, members: usize) -> Result<()> {
        self.call(reqwest::Method::POST, "/v1/rooms", json!({ "id": room }))
            .await?;
        let users = std::iter::once(("host".to_string(), "presenter"))
            .chain((0..members).map(|i| (format!("m{i}"), "consumer")));
        self.add_roster(room, users.collect()).await
    }

    /// A room with `publishers` attendees (`p0`...) and `subscribers` consumers (`s0`...).
    pub async fn setup_media_room(
        &self,
        room: &str,
        publishers: usize,
        subscribers: usize,
    ) -> Result<()> {
        self.call(reqwest::Method::POST, "/v1/rooms", json!({ "id": room }))
            .await?;
        let users = (0..publishers)
            .map(|i| (format!("p{i}"), "attendee"))
            .chain((0..subscribers).map(|i| (format!("s{i}"), "consumer")));
        self.add_roster(room, users.collect()).await
    }

    /// Invites `users` (id, role), 1000 per request: the API's limit.
    async fn add_roster(&self, room: &str, users: Vec<(String, &str)>) -> Result<()> {
        for chunk in users.chunks(1000) {
            let roster: Map<String, Value> = chunk
                .iter()
                .map(|(u, r)| (u.clone(), json!({ "role": r })))
                .collect();
            self.call(
                reqwest::Method::PATCH,
                &format!("/v1/rooms/{room}/participants"),
                json!({ "participants": roster }),
            )
            .await?;
        }
        Ok(())
    }

    /// Members in the live session of `room` (0 when none runs).
    pub async fn live_members(&self, room: &str) -> Result<u64> {
        let v = self
            .call(reqwest::Method::GET, "/v1/sessions", Value::Null)
            .await?;
        Ok(v["value"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["roomId"] == room)
            .map(|s| s["memberCount"].as_u64().unwrap_or(0))
            .sum())
    }

    pub async fn token(&self, room: &str, user: &str) -> Result<String> {
        let v = self
            .call(
                reqwest::Method::POST,
                &format!("/v1/rooms/{room}/tokens"),
                json!({ "userId": user }),
            )
            .await?;
        v["token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "no token in the answer".to_string())
    }
}
