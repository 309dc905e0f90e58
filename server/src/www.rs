//! Serves the demo and admin pages from the `www/` directory. `/join` and `/admin` are
//! pages of their own so that an invite link `/join#token=...` opens the demo.

use std::path::Path;

use axum::routing::get_service;
use axum::Router;
use tower_http::services::{ServeDir, ServeFile};

pub fn service(dir: &Path) -> Router {
    Router::new()
        .route_service("/join", get_service(ServeFile::new(dir.join("join.html"))))
        .route_service(
            "/admin",
            get_service(ServeFile::new(dir.join("admin.html"))),
        )
        .fallback_service(ServeDir::new(dir))
}
