//! What the server tells the person who started it (where it serves, where the admin key
//! is, that it is shutting down): `convene: ...` lines on stderr, or, with
//! `CONVENE_LOG_FORMAT=json`, log events like every other line, so the output stays
//! one JSON object per line.

use std::sync::atomic::{AtomicBool, Ordering};

static JSON: AtomicBool = AtomicBool::new(false);

/// Set once by `main` when logs are JSON.
pub fn use_json(on: bool) {
    JSON.store(on, Ordering::Relaxed);
}

pub fn say(message: &str) {
    if JSON.load(Ordering::Relaxed) {
        tracing::info!(target: "convene", "{message}");
    } else {
        eprintln!("convene: {message}");
    }
}

/// Like `say`, for what went wrong.
pub fn fail(message: &str) {
    if JSON.load(Ordering::Relaxed) {
        tracing::error!(target: "convene", "{message}");
    } else {
        eprintln!("convene: {message}");
    }
}
