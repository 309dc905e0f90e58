//! `Room`'s live-room side: seats (take, leave, apply; presenters approve, reject,
//! lock, move and kick), room and member attributes, paging the audience, and moving
//! between rooms (`switchTo`, `Room.leaveAll`). Requests go to the server through the
//! driver; what the server refuses arrives as an `error` event, what it does as
//! `seatsChanged`, `roomAttributesChanged` and the like.

use std::collections::BTreeMap;

use convene_protocol::signal::ClientMessage;
use js_sys::{Array, Promise};
use serde::Deserialize;
use wasm_bindgen::prelude::*;

use crate::driver::{Input, Shared};
use crate::errors::SdkError;
use crate::events;
use crate::room::{active_rooms, join_replacing, Room};

fn promise<F>(f: F) -> Promise
where
    F: std::future::Future<Output = Result<JsValue, SdkError>> + 'static,
{
    wasm_bindgen_futures::future_to_promise(async move { f.await.map_err(|e| e.to_js()) })
}

fn send(shared: &Shared, msg: ClientMessage) -> Result<JsValue, SdkError> {
    if shared.phase() == crate::call::Phase::Disconnected {
        return Err(SdkError::not_connected());
    }
    shared
        .tx
        .unbounded_send(Input::Send(msg))
        .map_err(|_| SdkError::not_connected())?;
    Ok(JsValue::UNDEFINED)
}

/// `{key: value | null}` from JS.
fn changes(map: JsValue, target: &str) -> Result<BTreeMap<String, Option<String>>, SdkError> {
    serde_wasm_bindgen::from_value(map)
        .map_err(|e| SdkError::invalid(target, format!("expected {{key: string | null}}: {e}")))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AudienceOptions {
    page_size: Option<u32>,
    skip_token: Option<String>,
}

/// Leaves a room, telling its listeners `reason`; resolves once it has.
async fn leave(shared: &Shared, reason: &'static str) {
    let (reply, done) = futures_channel::oneshot::channel();
    if shared
        .tx
        .unbounded_send(Input::Leave(reason, reply))
        .is_ok()
    {
        let _ = done.await;
    }
}

#[wasm_bindgen]
impl Room {
    /// The seats of a live or voice room (empty in a conference).
    #[wasm_bindgen(getter, unchecked_return_type = "SeatInfo[]")]
    pub fn seats(&self) -> JsValue {
        let view = self.shared().view.borrow();
        events::value(
            &view
                .session
                .as_ref()
                .map(|s| s.seats.clone())
                .unwrap_or_default(),
        )
    }

    /// Open seat applications (presenters are told them).
    #[wasm_bindgen(getter, js_name = seatApplications, unchecked_return_type = "SeatApplication[]")]
    pub fn seat_applications(&self) -> JsValue {
        let view = self.shared().view.borrow();
        events::value(
            &view
                .session
                .as_ref()
                .map(|s| s.applications.clone())
                .unwrap_or_default(),
        )
    }

    /// Sits on seat `index`, or the first free one (`freeToTake` rooms; presenters in
    /// every room with seats).
    #[wasm_bindgen(js_name = takeSeat, unchecked_return_type = "Promise<void>")]
    pub fn take_seat(&self, index: Option<u32>) -> Promise {
        let r = send(self.shared(), ClientMessage::TakeSeat { index });
        promise(async move { r })
    }

    /// Leaves your seat; your microphone and camera stop.
    #[wasm_bindgen(js_name = leaveSeat, unchecked_return_type = "Promise<void>")]
    pub fn leave_seat(&self) -> Promise {
        let r = send(self.shared(), ClientMessage::LeaveSeat);
        promise(async move { r })
    }

    /// Asks for seat `index`, or for a free one (`applyToTake` rooms);
    /// `seatApplicationEnded` says how it ended.
    #[wasm_bindgen(js_name = applySeat, unchecked_return_type = "Promise<void>")]
    pub fn apply_seat(&self, index: Option<u32>) -> Promise {
        let r = send(self.shared(), ClientMessage::ApplySeat { index });
        promise(async move { r })
    }

    #[wasm_bindgen(js_name = cancelSeatApplication, unchecked_return_type = "Promise<void>")]
    pub fn cancel_seat_application(&self) -> Promise {
        let r = send(self.shared(), ClientMessage::CancelSeatApplication);
        promise(async move { r })
    }

    /// Presenters: seats an applicant.
    #[wasm_bindgen(js_name = approveSeat, unchecked_return_type = "Promise<void>")]
    pub fn approve_seat(&self, user_id: String) -> Promise {
        let r = send(self.shared(), ClientMessage::ApproveSeat { user_id });
        promise(async move { r })
    }

    /// Presenters: turns an application down.
    #[wasm_bindgen(js_name = rejectSeat, unchecked_return_type = "Promise<void>")]
    pub fn reject_seat(&self, user_id: String) -> Promise {
        let r = send(self.shared(), ClientMessage::RejectSeat { user_id });
        promise(async move { r })
    }

    /// Presenters: locks or unlocks a seat (a locked seat cannot be taken).
    #[wasm_bindgen(js_name = lockSeat, unchecked_return_type = "Promise<void>")]
    pub fn lock_seat(&self, index: u32, locked: bool) -> Promise {
        let r = send(self.shared(), ClientMessage::LockSeat { index, locked });
        promise(async move { r })
    }

    /// Presenters: moves a seated member to a free seat.
    #[wasm_bindgen(js_name = moveSeat, unchecked_return_type = "Promise<void>")]
    pub fn move_seat(&self, user_id: String, index: u32) -> Promise {
        let r = send(self.shared(), ClientMessage::MoveSeat { user_id, index });
        promise(async move { r })
    }

    /// Presenters: takes a member off its seat.
    #[wasm_bindgen(js_name = kickFromSeat, unchecked_return_type = "Promise<void>")]
    pub fn kick_from_seat(&self, user_id: String) -> Promise {
        let r = send(self.shared(), ClientMessage::KickFromSeat { user_id });
        promise(async move { r })
    }

    /// Presenters: sets (a string) or removes (`null`) room attributes; stored with the
    /// room, and everyone gets `roomAttributesChanged`.
    #[wasm_bindgen(js_name = setRoomAttributes, unchecked_return_type = "Promise<void>")]
    pub fn set_room_attributes(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Record<string, string | null>")] attributes: JsValue,
    ) -> Promise {
        let r = changes(attributes, "attributes").and_then(|attributes| {
            send(
                self.shared(),
                ClientMessage::SetRoomAttributes { attributes },
            )
        });
        promise(async move { r })
    }

    /// Sets (a string) or removes (`null`) your own attributes, or (presenters)
    /// another participant's; others get `memberAttributesChanged`.
    #[wasm_bindgen(js_name = setMemberAttributes, unchecked_return_type = "Promise<void>")]
    pub fn set_member_attributes(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Record<string, string | null>")] attributes: JsValue,
        participant_id: Option<String>,
    ) -> Promise {
        let r = changes(attributes, "attributes").and_then(|attributes| {
            send(
                self.shared(),
                ClientMessage::SetMemberAttributes {
                    participant_id,
                    attributes,
                },
            )
        });
        promise(async move { r })
    }

    /// A page of the receive-only members not listed in `participants()`.
    #[wasm_bindgen(js_name = listAudience, unchecked_return_type = "Promise<AudiencePage>")]
    pub fn list_audience(
        &self,
        #[wasm_bindgen(unchecked_param_type = "{ pageSize?: number; skipToken?: string }")]
        options: JsValue,
    ) -> Promise {
        let shared = self.shared().clone();
        promise(async move {
            let o: AudienceOptions = if options.is_undefined() || options.is_null() {
                AudienceOptions::default()
            } else {
                crate::options::read_options(
                    options,
                    "listAudience",
                    &["pageSize", "skipToken"],
                    "{pageSize?, skipToken?}",
                )?
            };
            let (reply, answer) = futures_channel::oneshot::channel();
            shared
                .tx
                .unbounded_send(Input::ListAudience {
                    after: o.skip_token,
                    limit: o.page_size,
                    reply,
                })
                .map_err(|_| SdkError::not_connected())?;
            let (people, next) = answer.await.map_err(|_| SdkError::not_connected())?;
            let local = shared.local_id();
            let out = js_sys::Object::new();
            let list: Array = people
                .iter()
                .map(|p| events::participant(p, &local))
                .collect();
            events::set(&out, "participants", list);
            if let Some(n) = next {
                events::set(&out, "skipToken", n.as_str());
            }
            Ok(out.into())
        })
    }

    /// Moves to another room: joins it (it goes `connecting`, then `connected`), then
    /// leaves this one (`disconnected`, reason `switched`). If the join fails this room
    /// is kept and the promise rejects.
    #[wasm_bindgen(js_name = switchTo, unchecked_return_type = "Promise<Room>")]
    pub fn switch_to(
        &self,
        #[wasm_bindgen(unchecked_param_type = "JoinOptions")] options: JsValue,
    ) -> Promise {
        let old = self.shared().clone();
        promise(async move {
            let next = join_replacing(options, old.clone()).await?;
            leave(&old, "switched").await;
            Ok(JsValue::from(next))
        })
    }

    /// Leaves every room this page is in; resolves with their ids.
    #[wasm_bindgen(js_name = leaveAll, unchecked_return_type = "Promise<string[]>")]
    pub fn leave_all() -> Promise {
        promise(async move {
            let ids = Array::new();
            for shared in active_rooms() {
                let id = shared
                    .view
                    .borrow()
                    .session
                    .as_ref()
                    .map(|s| s.room.id.clone())
                    .unwrap_or_default();
                leave(&shared, "clientLeft").await;
                ids.push(&JsValue::from_str(&id));
            }
            Ok(ids.into())
        })
    }
}
