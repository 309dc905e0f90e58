//! Watching every request: its time goes into the metrics histogram by route template
//! (never the raw path, which holds ids), and every admin write leaves an audit line
//! (`convene::audit`: method, route, room, user, status; the request id comes from the
//! request's span). Nothing here reads the query string, where join tokens travel.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use crate::state::AppState;

/// `{id}` and `{user_id}` as the route names them, read from the path itself.
fn path_param(route: &str, path: &str, name: &str) -> Option<String> {
    let i = route.split('/').position(|seg| seg == name)?;
    path.split('/').nth(i).map(str::to_owned)
}

pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "(pages)".to_string(), |m| m.as_str().to_string());
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    let status = resp.status();
    let class = format!("{}xx", status.as_u16() / 100);
    state
        .metrics
        .http
        .with_label_values(&[route.as_str(), method.as_str(), class.as_str()])
        .observe(started.elapsed().as_secs_f64());
    let write = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    if write && status.is_success() {
        // A room or roster write put its event in the outbox: deliver it now.
        state.webhooks.wake();
    }
    if write && route.starts_with("/v1/") && route != "/v1/rtc" {
        let room = path_param(&route, &path, "{id}");
        let user = path_param(&route, &path, "{user_id}");
        tracing::info!(
            target: "convene::audit",
            method = %method,
            route = %route,
            room = room.as_deref().unwrap_or("-"),
            user = user.as_deref().unwrap_or("-"),
            status = status.as_u16(),
            "admin write"
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_params_come_from_the_route_template() {
        let route = "/v1/rooms/{id}/members/{user_id}";
        let path = "/v1/rooms/r1/members/alice";
        assert_eq!(path_param(route, path, "{id}").as_deref(), Some("r1"));
        assert_eq!(
            path_param(route, path, "{user_id}").as_deref(),
            Some("alice")
        );
        assert_eq!(path_param("/v1/rooms", "/v1/rooms", "{id}"), None);
    }
}
