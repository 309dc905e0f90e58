//! Removes rooms whose window ended longer ago than the grace period, old idempotency
//! records and revocations of expired tokens.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::store::RoomStore;

/// How long a `Repeatability-Request-ID` is remembered.
pub const IDEMPOTENCY_TTL_HOURS: i64 = 24;

pub async fn run(
    store: Arc<dyn RoomStore>,
    clock: Arc<dyn Clock>,
    grace: chrono::Duration,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let now = clock.now();
        match store
            .purge(
                now - grace,
                now - chrono::Duration::hours(IDEMPOTENCY_TTL_HOURS),
                now,
            )
            .await
        {
            Ok(c) if c.rooms > 0 => tracing::info!(rooms = c.rooms, "purged ended rooms"),
            Ok(_) => {}
            Err(e) => tracing::warn!("purge failed, will retry: {e}"),
        }
    }
}
