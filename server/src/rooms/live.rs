//! Live sessions: the registry of rooms with members joined now.

use crate::ids::RoomId;
use crate::store::RosterChange;

use super::Room;

#[derive(Default, Clone)]
pub struct LiveRooms {}

impl LiveRooms {
    pub fn room_updated(&self, _room: &Room) {}
    pub fn room_deleted(&self, _room: &RoomId) {}
    pub fn roster_changed(&self, _room: &RoomId, _changes: &[RosterChange]) {}
    pub fn token_revoked(&self, _room: &RoomId, _jti: &str) {}
}
