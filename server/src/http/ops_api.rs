//! What operators point their tools at: `/metrics` (Prometheus text format, behind the
//! admin key; `CONVENE_METRICS_LISTEN` also serves it without a key on an address of its
//! own) and `/readyz` (ready only when the store answers and the media port is served).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::extract::Admin;
use crate::metrics::Snapshot;
use crate::state::AppState;

/// The numbers the metrics registry reads from the parts that own them.
async fn snapshot(state: &AppState) -> Snapshot {
    let sessions = state.live.sessions();
    Snapshot {
        rooms: state.store.count_rooms().await.unwrap_or(0),
        sessions: sessions.len() as u64,
        members: sessions.iter().map(|s| s.member_count as u64).sum(),
        media: crate::sfu::stats::all(),
        cluster_dropped: state.cluster.dropped_messages(),
    }
}

/// The metrics text, for both the admin route and the separate listener.
pub async fn metrics_text(state: &AppState) -> Response {
    let text = state.metrics.render(&snapshot(state).await);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Prometheus text format: rooms, live sessions and members, joins by result, signaling frames, HTTP latency by route, the relay's packets, bytes, NACKs, keyframe requests and drops, process metrics", content_type = "text/plain"),
        (status = 401, body = convene_protocol::ErrorEnvelope),
    ),
    security(("adminKey" = [])))]
pub async fn metrics(State(state): State<AppState>, _: Admin) -> Response {
    metrics_text(&state).await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    pub ready: bool,
    /// `ok`, or why not.
    pub store: String,
    /// `ok`, `off` (no media relay), or why not.
    pub media: String,
}

#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, body = Readiness, description = "Ready: the store answers and the media port is served"),
        (status = 503, body = Readiness, description = "Not ready, and why"),
    ))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let store = match state.store.count_rooms().await {
        Ok(_) => "ok".to_string(),
        Err(e) => format!("the store does not answer: {e}"),
    };
    let media = match &state.media {
        None => "off".to_string(),
        Some(m) if m.running() => "ok".to_string(),
        Some(_) => "the media workers have stopped".to_string(),
    };
    let ready = store == "ok" && media != "the media workers have stopped";
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Readiness {
            ready,
            store,
            media,
        }),
    )
}
