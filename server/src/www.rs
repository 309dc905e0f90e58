//! Serves the demo and admin pages from the `www/` directory. `/join`, `/live` and
//! `/admin` are pages of their own so that an invite link `/join#token=...` opens the
//! demo.
//!
//! Every page carries a Content-Security-Policy that the pages pass: scripts, styles
//! and connections from this server only (plus `'wasm-unsafe-eval'` for the SDK). The
//! admin page may not be framed at all; the others only by this server and the
//! configured allowed origins. `/examples/` keeps its inline scripts, which are there
//! to be read and copied.
//!
//! Answers are compressed (brotli or gzip, as the browser asks: the SDK's wasm is
//! ~470 kB, ~150 kB compressed) and carry `Cache-Control: no-cache`: file names are not
//! content-hashed, so browsers revalidate (`Last-Modified`, a 304 when unchanged)
//! instead of running an old SDK against a newer server.

use std::path::Path;

use axum::http::{header, HeaderValue};
use axum::routing::get_service;
use axum::Router;
use tower_http::compression::CompressionLayer;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::config::Origins;

// Images may come from https anywhere: a live room's cover is an admin-set URL.
const POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
     style-src 'self'; img-src 'self' data: blob: https:; media-src 'self' blob: mediastream:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'";
const EXAMPLE_POLICY: &str = "default-src 'self'; \
     script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data: blob:; media-src 'self' blob: mediastream:; connect-src 'self'; \
     object-src 'none'; base-uri 'none'";

/// The Content-Security-Policy of a page: `base`, then who may frame it.
pub fn policy(base: &str, ancestors: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("{base}; frame-ancestors {ancestors}"))
        .expect("policies are ASCII")
}

/// Who may frame the call pages: this server and the explicitly allowed origins (never
/// any site, even when any origin may use the SDK).
pub fn call_ancestors(origins: &Origins) -> String {
    match origins {
        Origins::Any => "'self'".to_string(),
        Origins::Only(list) => std::iter::once("'self'")
            .chain(list.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

fn csp(value: HeaderValue) -> SetResponseHeaderLayer<HeaderValue> {
    // A route's own policy, set before the outer default is considered.
    SetResponseHeaderLayer::overriding(header::CONTENT_SECURITY_POLICY, value)
}

pub fn service(dir: &Path, origins: &Origins) -> Router {
    let ancestors = call_ancestors(origins);
    let admin =
        || get_service(ServeFile::new(dir.join("admin.html"))).layer(csp(policy(POLICY, "'none'")));
    Router::new()
        .route_service("/join", get_service(ServeFile::new(dir.join("join.html"))))
        .route_service("/live", get_service(ServeFile::new(dir.join("live.html"))))
        .route_service("/admin", admin())
        .route_service("/admin.html", admin())
        // Browsers ask for /favicon.ico when a page names no icon (e.g. a JSON answer).
        .route_service(
            "/favicon.ico",
            get_service(ServeFile::new(dir.join("favicon.svg"))),
        )
        .nest_service(
            "/examples",
            Router::new()
                .fallback_service(ServeDir::new(dir.join("examples")))
                .layer(csp(policy(EXAMPLE_POLICY, &ancestors))),
        )
        .fallback_service(ServeDir::new(dir))
        // Outermost, so it fills in only where a route set no policy of its own.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            policy(POLICY, &ancestors),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        ))
        .layer(CompressionLayer::new())
}
