//! Persistence of rooms and rosters behind one trait. SQLite is the embedded default
//! (`sqlite`); PostgreSQL (`postgres`, chosen by a database URL) implements the same
//! trait with the same guarantees. A write is acknowledged only
//! once it is committed, and a room update is one transaction: read, edit, version + 1,
//! write, so concurrent updates serialize and none is lost.

mod columns;
mod events;
mod postgres;
mod sqlite;
mod threads;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::ids::{RoomId, UserId};
use crate::model::event::{Event, NewEvent, Webhook};
pub use crate::model::RosterChange;
use crate::model::{Role, Room, RosterEntry, RuleError};
pub use postgres::{parse_url as parse_database_url, PgStore};
pub use sqlite::SqliteStore;

/// An edit of a room, applied by the store inside its transaction to the latest stored
/// version. Returning an error leaves the room unchanged.
pub type RoomEdit = Box<dyn FnOnce(&mut Room) -> Result<(), RuleError> + Send>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("a room with this id already exists")]
    AlreadyExists,
    #[error("the room does not exist")]
    RoomNotFound,
    #[error("this idempotency key was already used")]
    DuplicateRequest,
    #[error("the roster would exceed {0} users")]
    RosterFull(u64),
    /// `If-Match` named another version than the stored one.
    #[error("the room is at version {current}, not the one expected")]
    VersionMismatch { current: u64 },
    /// The edit refused the room as it is now.
    #[error("{0}")]
    Rejected(RuleError),
    #[error("storage failure: {0}")]
    Backend(String),
}

/// A response kept for a `Repeatability-Request-ID`, replayed on a retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

/// What admission needs from the store, read at one moment in one round trip.
#[derive(Debug, Clone, Default)]
pub struct AdmissionRead {
    /// The token id is on the revocation list.
    pub revoked: bool,
    pub room: Option<Room>,
    /// The user's roster entry (None when the room is missing too).
    pub entry: Option<RosterEntry>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PurgeCounts {
    pub rooms: u64,
    pub idempotency_keys: u64,
    pub revoked_tokens: u64,
    /// Outbox events every webhook endpoint has.
    pub events: u64,
}

#[async_trait]
pub trait RoomStore: Send + Sync + 'static {
    /// Stores a new room with its roster, and the response for `idempotency`, in one
    /// transaction: either all of it is committed or none.
    async fn create_room(
        &self,
        room: &Room,
        roster: &[RosterEntry],
        idempotency: Option<(&str, &StoredResponse)>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    async fn get_room(&self, id: &RoomId) -> Result<Option<Room>, StoreError>;
    /// How many rooms are stored (also a cheap "does the store answer" probe).
    async fn count_rooms(&self) -> Result<u64, StoreError>;
    /// Rooms ordered by id, starting after `after` (any text: a position, not an id).
    async fn list_rooms(&self, after: Option<&str>, limit: usize) -> Result<Vec<Room>, StoreError>;
    /// Applies `edit` to the stored room in one transaction and stores it as the next
    /// version; with `if_version`, only when that is the stored version. Returns the
    /// room as stored.
    async fn update_room(
        &self,
        id: &RoomId,
        if_version: Option<u64>,
        edit: RoomEdit,
    ) -> Result<Room, StoreError>;
    /// Deletes the room and its roster (with `if_version`, only at that version); false
    /// when there was none.
    async fn delete_room(&self, id: &RoomId, if_version: Option<u64>) -> Result<bool, StoreError>;

    /// Users ordered by id, starting after `after` (any text: a position).
    async fn roster_page(
        &self,
        room: &RoomId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RosterEntry>, StoreError>;
    async fn roster_entry(
        &self,
        room: &RoomId,
        user: &UserId,
    ) -> Result<Option<RosterEntry>, StoreError>;
    async fn roster_count(&self, room: &RoomId) -> Result<u64, StoreError>;
    /// Upserts (`Some(role)`) and removes (`None`) users in one transaction; refused
    /// whole when the roster would hold more than `max_size` users.
    async fn apply_roster(
        &self,
        room: &RoomId,
        changes: &[(UserId, Option<Role>)],
        now: DateTime<Utc>,
        max_size: u64,
    ) -> Result<Vec<RosterChange>, StoreError>;

    async fn idempotent_response(&self, key: &str) -> Result<Option<StoredResponse>, StoreError>;

    async fn revoke_token(
        &self,
        jti: &str,
        room: &RoomId,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    async fn is_token_revoked(&self, jti: &str) -> Result<bool, StoreError>;

    /// Everything a join is checked against, in one read (one transaction).
    async fn admission_read(
        &self,
        room: &RoomId,
        user: &UserId,
        jti: &str,
    ) -> Result<AdmissionRead, StoreError>;

    /// Adds events to the webhook outbox, in order. (Room and roster writes add theirs
    /// in their own transaction.)
    async fn append_events(&self, events: Vec<NewEvent>) -> Result<(), StoreError>;
    /// Events after `seq`, oldest first.
    async fn events_after(&self, seq: u64, limit: usize) -> Result<Vec<Event>, StoreError>;
    async fn webhooks(&self) -> Result<Vec<Webhook>, StoreError>;
    /// Stores a new endpoint (its cursor at the newest event) or updates an existing
    /// one's url, secret and events (its cursor kept).
    async fn put_webhook(&self, hook: Webhook) -> Result<Webhook, StoreError>;
    async fn delete_webhook(&self, id: &str) -> Result<bool, StoreError>;
    /// Records that the endpoint has every event up to `seq`.
    async fn set_webhook_cursor(&self, id: &str, seq: u64) -> Result<(), StoreError>;

    /// Changes whenever a write through this store succeeds: a caller that read at
    /// generation g and sees g again knows nothing it read has changed since.
    fn generation(&self) -> u64;

    /// The key join tokens are signed with, the same for every node on this store:
    /// the stored one, or `candidate` (stored) when there is none yet. SQLite serves one
    /// node, whose key file is the key.
    async fn shared_token_key(&self, candidate: &str) -> Result<String, StoreError> {
        Ok(candidate.to_string())
    }

    /// Removes rooms that ended before `rooms_ended_before`, idempotency records older
    /// than `keys_before`, and revocations of tokens that have expired by `now`.
    async fn purge(
        &self,
        rooms_ended_before: DateTime<Utc>,
        keys_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<PurgeCounts, StoreError>;
}
