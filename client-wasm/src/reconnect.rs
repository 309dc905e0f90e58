//! Coming back after the signaling connection drops, or after a media connection
//! fails: what to do is `call::Call`'s decision; this file carries it out (asking the
//! server why a join was refused, and timing the next attempt).

use gloo_timers::future::TimeoutFuture;

use crate::call::{Attempt, Closed};
use crate::check::diagnose;
use crate::driver::{fail_join, finish, Ctx, Input};
use crate::events::{self, Emit};

pub async fn on_closed(ctx: &mut Ctx) {
    ctx.socket = None;
    match ctx.call.on_socket_closed(js_sys::Date::now()) {
        Closed::Ignore => {}
        Closed::DiagnoseAndFail => {
            let e = diagnose(&ctx.base, &ctx.token).await;
            fail_join(ctx, e);
        }
        Closed::Reconnect { delay_ms } => {
            announce_reconnecting(ctx);
            schedule_retry(ctx, delay_ms);
        }
        Closed::Diagnose => {
            let e = diagnose(&ctx.base, &ctx.token).await;
            match ctx.call.diagnosed(e.is_permanent()) {
                Some(delay) => schedule_retry(ctx, delay),
                None => finish(ctx, "connectionLost", Some(e)),
            }
        }
        Closed::Finish => finish(ctx, "connectionLost", None),
    }
}

fn announce_reconnecting(ctx: &Ctx) {
    ctx.sync_phase();
    ctx.emit(vec![Emit(
        "stateChanged",
        events::state_changed("reconnecting", Some("connectionLost")),
    )]);
}

/// Restarts the call's media by joining afresh (the server then drops the old
/// connections); used when a peer connection fails while signaling still works. The
/// wait grows with each failure in a row, so a network that keeps failing ICE is not
/// retried in a tight loop.
pub fn rejoin_fresh(ctx: &mut Ctx) {
    let Some(wait) = ctx.call.media_failed(js_sys::Date::now()) else {
        return;
    };
    ctx.socket = None;
    announce_reconnecting(ctx);
    schedule_retry(ctx, wait);
}

fn schedule_retry(ctx: &Ctx, delay_ms: u32) {
    let tx = ctx.shared.tx.clone();
    wasm_bindgen_futures::spawn_local(async move {
        TimeoutFuture::new(delay_ms).await;
        let _ = tx.unbounded_send(Input::Retry);
    });
}

pub fn retry(ctx: &mut Ctx) {
    let grace = ctx
        .shared
        .view
        .borrow()
        .session
        .as_ref()
        .map_or(0, |s| s.resume.grace_seconds);
    let opened = match ctx.call.attempt(js_sys::Date::now(), grace) {
        Attempt::Ignore => return,
        Attempt::GiveUp => return finish(ctx, "connectionLost", None),
        Attempt::Resume => ctx.connect(true),
        Attempt::Rejoin => ctx.connect(false),
    };
    if opened.is_err() {
        let delay = ctx.call.next_delay();
        schedule_retry(ctx, delay);
    }
}
