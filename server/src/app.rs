//! The whole HTTP service: the admin API (`http`), the signaling upgrade (`signal`), the
//! pages (`www`), and the layers every request passes through.

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;

use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let mut app = crate::http::routes().route("/v1/rtc", get(crate::signal::rtc));
    if let Some(dir) = state.www_dir.clone() {
        app = app.fallback_service(crate::www::service(&dir));
    }
    // A panic in a handler is a bug, but it still answers with the envelope (500,
    // Internal) instead of dropping the connection.
    app.layer(DefaultBodyLimit::max(crate::api::MAX_BODY_BYTES))
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .layer(axum::middleware::from_fn(
            crate::api::request_context::request_context,
        ))
        .with_state(state)
}
