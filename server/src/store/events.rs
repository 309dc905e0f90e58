//! The outbox events a room or roster write adds in its own transaction, built the same
//! way by every backend.

use chrono::Utc;

use crate::ids::RoomId;
use crate::model::event::{EventType, NewEvent};
use crate::model::{Room, RosterChange};

pub fn room_event(kind: EventType, room: &Room) -> NewEvent {
    let data = serde_json::to_value(room).unwrap_or(serde_json::Value::Null);
    NewEvent::new(kind, &room.id, Utc::now(), data)
}

pub fn roster_event(room: &RoomId, changes: &[RosterChange]) -> NewEvent {
    let mut added = vec![];
    let mut updated = vec![];
    let mut removed = vec![];
    for c in changes {
        match c {
            RosterChange::Added(e) => added.push(serde_json::to_value(e).unwrap_or_default()),
            RosterChange::RoleChanged { entry, .. } => {
                updated.push(serde_json::to_value(entry).unwrap_or_default())
            }
            RosterChange::Removed(u) => removed.push(serde_json::Value::from(u.as_str())),
        }
    }
    NewEvent::new(
        EventType::RosterChanged,
        room,
        Utc::now(),
        serde_json::json!({"added": added, "updated": updated, "removed": removed}),
    )
}
