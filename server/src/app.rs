//! The whole HTTP service: the admin API (`http`), the signaling upgrade (`signal`), the
//! pages (`www`), and the layers every request passes through: a request id (and a log
//! span) and one error envelope, metrics and the audit line (`api::observe`), a body
//! limit and a request timeout, panics answered as 500,
//! `nosniff` and `Referrer-Policy: no-referrer` (join links carry tokens), and CORS on
//! the one route the SDK calls (`/v1/rtc`). Admin routes send no CORS headers, so a page
//! on another origin cannot read them.

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::routing::get;
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use crate::config::Origins;
use crate::state::AppState;

/// CORS for the SDK's routes: simple GETs from the allowed origins, which may read the
/// refusal envelope and `Retry-After`.
fn sdk_cors(origins: &Origins) -> CorsLayer {
    let allow = match origins {
        Origins::Any => AllowOrigin::any(),
        Origins::Only(list) => {
            AllowOrigin::list(list.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
        }
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE])
        .expose_headers([header::RETRY_AFTER])
}

/// The separate metrics listener (`CONVENE_METRICS_LISTEN`): `/metrics` with no key.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(
                |axum::extract::State(s): axum::extract::State<AppState>| async move {
                    crate::http::ops_api::metrics_text(&s).await
                },
            ),
        )
        .with_state(state)
}

pub fn router(state: AppState) -> Router {
    let cors = sdk_cors(&state.allowed_origins);
    let rtc = get(crate::signal::rtc).layer(cors.clone());
    // The public live list and guest tokens: for pages on the allowed origins too.
    let live = crate::http::live_api::list_live;
    let guest = crate::http::live_api::guest_token;
    let mut app = crate::http::routes()
        .route("/v1/rtc", rtc)
        .route("/v1/live", get(live).layer(cors.clone()))
        .route(
            "/v1/live/{id}/guest-tokens",
            axum::routing::post(guest).layer(cors),
        );
    if let Some(dir) = state.www_dir.clone() {
        app = app.fallback_service(crate::www::service(&dir, &state.allowed_origins));
    }
    // A panic in a handler is a bug, but it still answers with the envelope (500,
    // Internal) instead of dropping the connection. The timeout's bare 408 becomes
    // the envelope in `request_context`, which is outside it.
    app.layer(DefaultBodyLimit::max(crate::api::MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::api::observe::observe,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            state.http_request_timeout,
        ))
        .layer(axum::middleware::from_fn(
            crate::api::request_context::request_context,
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .with_state(state)
}
