//! The embedded SQLite store, on threads of its own (`threads`): one writer connection
//! and read-only connections beside it, so the async workers never block on disk and
//! reads (every join) do not queue behind writes. WAL with `synchronous=FULL`: a write
//! is acknowledged only after its commit is on disk.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::threads::Threads;
use super::{
    AdmissionRead, PurgeCounts, RoomEdit, RoomStore, RosterChange, StoreError, StoredResponse,
};
use crate::ids::{RoomId, UserId};
use crate::model::event::{Event, EventType, NewEvent, Webhook, WebhookSource};
use crate::model::{Role, Room, RosterEntry};
use crate::store::columns::{backend, from_ms, ms};
use crate::store::events::{room_event, roster_event};

/// Applied in order; the database's `user_version` counts how many have run.
const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE rooms (
        id          TEXT PRIMARY KEY,
        valid_until INTEGER NOT NULL,
        doc         TEXT NOT NULL
    );
    CREATE INDEX rooms_valid_until ON rooms(valid_until);
    CREATE TABLE participants (
        room_id    TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
        user_id    TEXT NOT NULL,
        role       TEXT NOT NULL,
        invited_at INTEGER NOT NULL,
        invite_id  TEXT NOT NULL,
        PRIMARY KEY (room_id, user_id)
    );
    CREATE TABLE idempotency (
        key        TEXT PRIMARY KEY,
        status     INTEGER NOT NULL,
        body       TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE revoked_tokens (
        jti        TEXT PRIMARY KEY,
        room_id    TEXT NOT NULL,
        expires_at INTEGER NOT NULL
    );
"#,
    // Room versions: the column is authoritative; the document's copy is refreshed on
    // every write.
    "ALTER TABLE rooms ADD COLUMN version INTEGER NOT NULL DEFAULT 1;",
    // The room a kept response created, so deleting the room forgets the response: a
    // retry after the delete creates the room again instead of replaying a room that
    // no longer exists.
    r#"
    ALTER TABLE idempotency ADD COLUMN room_id TEXT;
    UPDATE idempotency SET room_id = json_extract(body, '$.id') WHERE json_valid(body);
    DELETE FROM idempotency WHERE room_id IS NULL OR room_id NOT IN (SELECT id FROM rooms);
    CREATE INDEX idempotency_room ON idempotency(room_id);
"#,
    // The webhook outbox: events in order, and each endpoint's place in them.
    r#"
    CREATE TABLE events (
        seq     INTEGER PRIMARY KEY AUTOINCREMENT,
        id      TEXT NOT NULL UNIQUE,
        type    TEXT NOT NULL,
        room_id TEXT NOT NULL,
        at      INTEGER NOT NULL,
        data    TEXT NOT NULL
    );
    CREATE TABLE webhooks (
        id         TEXT PRIMARY KEY,
        url        TEXT NOT NULL,
        secret     TEXT NOT NULL,
        events     TEXT NOT NULL,
        source     TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        cursor     INTEGER NOT NULL
    );
"#,
];

/// Read-only connections: two keep a join storm's reads flowing on a 2-core machine
/// while the writer commits.
const READERS: usize = 2;

#[derive(Clone)]
pub struct SqliteStore {
    threads: Arc<Threads>,
    /// Successful writes so far (see `RoomStore::generation`).
    writes: Arc<AtomicU64>,
}

impl SqliteStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let writer = migrate(Connection::open(path).map_err(backend)?)?;
        let readers = (0..READERS)
            .map(|_| {
                let conn = Connection::open_with_flags(
                    path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(backend)?;
                conn.busy_timeout(std::time::Duration::from_secs(5))
                    .map_err(backend)?;
                Ok(conn)
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Self::start(writer, readers)
    }

    /// A private in-memory database, for unit tests (one connection for everything).
    pub fn in_memory() -> Result<Self, StoreError> {
        let conn = migrate(Connection::open_in_memory().map_err(backend)?)?;
        Self::start(conn, vec![])
    }

    fn start(writer: Connection, readers: Vec<Connection>) -> Result<Self, StoreError> {
        Ok(Self {
            threads: Arc::new(Threads::start(writer, readers).map_err(backend)?),
            writes: Arc::new(AtomicU64::new(0)),
        })
    }

    /// A write: counted in `generation` once it succeeded.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let writes = self.writes.clone();
        self.threads
            .write(move |conn| {
                let r = f(conn);
                if r.is_ok() {
                    writes.fetch_add(1, Ordering::SeqCst);
                }
                r
            })
            .await
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.threads.read(f).await
    }
}

/// Sets the connection up and brings the schema to this build's version.
fn migrate(mut conn: Connection) -> Result<Connection, StoreError> {
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(backend)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(backend)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(backend)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(backend)?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(backend)?;
    if version as usize > MIGRATIONS.len() {
        return Err(StoreError::Backend(format!(
            "the database is from a newer Convene (schema {version}, this build knows {})",
            MIGRATIONS.len()
        )));
    }
    let tx = conn.transaction().map_err(backend)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql).map_err(backend)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(backend)?;
    }
    tx.commit().map_err(backend)?;
    Ok(conn)
}

/// Adds `ev` to the outbox inside the caller's transaction.
fn insert_event(tx: &Connection, ev: &NewEvent) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO events (id, type, room_id, at, data) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            format!("ev_{}", crate::ids::random_token(20)),
            ev.kind.as_str(),
            ev.room.as_str(),
            ms(ev.at),
            ev.data.to_string()
        ],
    )
    .map_err(backend)?;
    Ok(())
}

fn row_to_webhook(r: &rusqlite::Row<'_>) -> rusqlite::Result<Webhook> {
    let events: String = r.get(3)?;
    let source: String = r.get(4)?;
    Ok(Webhook {
        id: r.get(0)?,
        url: r.get(1)?,
        secret: r.get(2)?,
        events: serde_json::from_str(&events).unwrap_or_default(),
        source: WebhookSource::parse(&source),
        created_at: from_ms(r.get(5)?),
        cursor: r.get::<_, i64>(6)? as u64,
    })
}

const WEBHOOK_COLUMNS: &str = "id, url, secret, events, source, created_at, cursor";

fn room_from_doc(doc: String, version: i64) -> Result<Room, StoreError> {
    let mut room: Room = serde_json::from_str(&doc).map_err(backend)?;
    room.version = version as u64;
    Ok(room)
}

fn read_room(conn: &Connection, id: &RoomId) -> Result<Option<Room>, StoreError> {
    let row: Option<(String, i64)> = conn
        .query_row(
            "SELECT doc, version FROM rooms WHERE id = ?1",
            [id.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(backend)?;
    row.map(|(doc, v)| room_from_doc(doc, v)).transpose()
}

fn insert_entry(tx: &Transaction<'_>, room: &RoomId, e: &RosterEntry) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO participants (room_id, user_id, role, invited_at, invite_id)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            room.as_str(),
            e.user_id.as_str(),
            e.role.as_str(),
            ms(e.invited_at),
            e.invite_id
        ],
    )
    .map_err(backend)?;
    Ok(())
}

fn row_to_entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, i64, String)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn to_entry(raw: (String, String, i64, String)) -> Result<RosterEntry, StoreError> {
    let (user, role, invited_at, invite_id) = raw;
    Ok(RosterEntry {
        user_id: UserId::parse(&user).map_err(backend)?,
        role: Role::parse(&role).ok_or_else(|| backend(format!("unknown role {role}")))?,
        invited_at: from_ms(invited_at),
        invite_id,
    })
}

fn room_exists(conn: &Connection, room: &RoomId) -> Result<bool, StoreError> {
    conn.query_row("SELECT 1 FROM rooms WHERE id = ?1", [room.as_str()], |_| {
        Ok(())
    })
    .optional()
    .map(|r| r.is_some())
    .map_err(backend)
}

#[async_trait]
impl RoomStore for SqliteStore {
    async fn create_room(
        &self,
        room: &Room,
        roster: &[RosterEntry],
        idempotency: Option<(&str, &StoredResponse)>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let room = room.clone();
        let roster = roster.to_vec();
        let idem = idempotency.map(|(k, r)| (k.to_owned(), r.clone()));
        self.write(move |conn| {
            let tx = conn.transaction().map_err(backend)?;
            let doc = serde_json::to_string(&room).map_err(backend)?;
            let inserted = tx.execute(
                "INSERT INTO rooms (id, valid_until, doc, version) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(id) DO NOTHING",
                params![
                    room.id.as_str(),
                    ms(room.valid_until),
                    doc,
                    room.version as i64
                ],
            );
            if inserted.map_err(backend)? == 0 {
                return Err(StoreError::AlreadyExists);
            }
            for e in &roster {
                insert_entry(&tx, &room.id, e)?;
            }
            insert_event(&tx, &room_event(EventType::RoomCreated, &room))?;
            if let Some((key, resp)) = idem {
                // A plain INSERT: two concurrent retries race here, and the loser rolls
                // back its room and replays the winner's response.
                let n = tx
                    .execute(
                        "INSERT INTO idempotency (key, status, body, created_at, room_id)
                         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(key) DO NOTHING",
                        params![key, resp.status, resp.body, ms(now), room.id.as_str()],
                    )
                    .map_err(backend)?;
                if n == 0 {
                    return Err(StoreError::DuplicateRequest);
                }
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn get_room(&self, id: &RoomId) -> Result<Option<Room>, StoreError> {
        let id = id.clone();
        self.read(move |conn| read_room(conn, &id)).await
    }

    async fn count_rooms(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            conn.query_row("SELECT COUNT(*) FROM rooms", [], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
                .map_err(backend)
        })
        .await
    }

    async fn list_rooms(&self, after: Option<&str>, limit: usize) -> Result<Vec<Room>, StoreError> {
        let after = after.unwrap_or_default().to_owned();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT doc, version FROM rooms WHERE id > ?1 ORDER BY id LIMIT ?2")
                .map_err(backend)?;
            let docs = stmt
                .query_map(params![after, limit as i64], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            docs.into_iter()
                .map(|(doc, v)| room_from_doc(doc, v))
                .collect()
        })
        .await
    }

    async fn update_room(
        &self,
        id: &RoomId,
        if_version: Option<u64>,
        edit: RoomEdit,
    ) -> Result<Room, StoreError> {
        let id = id.clone();
        self.write(move |conn| {
            // IMMEDIATE takes the write lock before the read, so no other writer (not
            // even another process on the same file) can slip in between.
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(backend)?;
            let mut room = read_room(&tx, &id)?.ok_or(StoreError::RoomNotFound)?;
            let current = room.version;
            if if_version.is_some_and(|v| v != current) {
                return Err(StoreError::VersionMismatch { current });
            }
            edit(&mut room).map_err(StoreError::Rejected)?;
            room.id = id;
            room.version = current + 1;
            let doc = serde_json::to_string(&room).map_err(backend)?;
            let n = tx
                .execute(
                    "UPDATE rooms SET valid_until = ?2, doc = ?3, version = ?4
                     WHERE id = ?1 AND version = ?5",
                    params![
                        room.id.as_str(),
                        ms(room.valid_until),
                        doc,
                        room.version as i64,
                        current as i64
                    ],
                )
                .map_err(backend)?;
            if n != 1 {
                return Err(backend("the room changed inside its own transaction"));
            }
            insert_event(&tx, &room_event(EventType::RoomUpdated, &room))?;
            tx.commit().map_err(backend)?;
            Ok(room)
        })
        .await
    }

    async fn delete_room(&self, id: &RoomId, if_version: Option<u64>) -> Result<bool, StoreError> {
        let id = id.clone();
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(backend)?;
            let current: Option<i64> = tx
                .query_row(
                    "SELECT version FROM rooms WHERE id = ?1",
                    [id.as_str()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            let Some(current) = current else {
                return Ok(false);
            };
            if if_version.is_some_and(|v| v != current as u64) {
                return Err(StoreError::VersionMismatch {
                    current: current as u64,
                });
            }
            tx.execute("DELETE FROM rooms WHERE id = ?1", [id.as_str()])
                .map_err(backend)?;
            tx.execute("DELETE FROM idempotency WHERE room_id = ?1", [id.as_str()])
                .map_err(backend)?;
            let gone = NewEvent::new(
                EventType::RoomDeleted,
                &id,
                Utc::now(),
                serde_json::json!({ "id": id.as_str() }),
            );
            insert_event(&tx, &gone)?;
            tx.commit().map_err(backend)?;
            Ok(true)
        })
        .await
    }

    async fn roster_page(
        &self,
        room: &RoomId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RosterEntry>, StoreError> {
        let room = room.clone();
        let after = after.unwrap_or_default().to_owned();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT user_id, role, invited_at, invite_id FROM participants
                     WHERE room_id = ?1 AND user_id > ?2 ORDER BY user_id LIMIT ?3",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![room.as_str(), after, limit as i64], row_to_entry)
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            rows.into_iter().map(to_entry).collect()
        })
        .await
    }

    async fn roster_entry(
        &self,
        room: &RoomId,
        user: &UserId,
    ) -> Result<Option<RosterEntry>, StoreError> {
        let room = room.clone();
        let user = user.clone();
        self.read(move |conn| {
            conn.query_row(
                "SELECT user_id, role, invited_at, invite_id FROM participants
                 WHERE room_id = ?1 AND user_id = ?2",
                params![room.as_str(), user.as_str()],
                row_to_entry,
            )
            .optional()
            .map_err(backend)?
            .map(to_entry)
            .transpose()
        })
        .await
    }

    async fn roster_count(&self, room: &RoomId) -> Result<u64, StoreError> {
        let room = room.clone();
        self.read(move |conn| {
            conn.query_row(
                "SELECT COUNT(*) FROM participants WHERE room_id = ?1",
                [room.as_str()],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(backend)
        })
        .await
    }

    async fn apply_roster(
        &self,
        room: &RoomId,
        changes: &[(UserId, Option<Role>)],
        now: DateTime<Utc>,
        max_size: u64,
    ) -> Result<Vec<RosterChange>, StoreError> {
        let room = room.clone();
        let changes = changes.to_vec();
        self.write(move |conn| {
            let tx = conn.transaction().map_err(backend)?;
            if !room_exists(&tx, &room)? {
                return Err(StoreError::RoomNotFound);
            }
            let mut done = Vec::new();
            for (user, role) in changes {
                let old: Option<String> = tx
                    .query_row(
                        "SELECT role FROM participants WHERE room_id = ?1 AND user_id = ?2",
                        params![room.as_str(), user.as_str()],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(backend)?;
                let old = old.and_then(|r| Role::parse(&r));
                match (old, role) {
                    (None, None) => {}
                    (Some(_), None) => {
                        tx.execute(
                            "DELETE FROM participants WHERE room_id = ?1 AND user_id = ?2",
                            params![room.as_str(), user.as_str()],
                        )
                        .map_err(backend)?;
                        done.push(RosterChange::Removed(user));
                    }
                    (None, Some(role)) => {
                        let entry = RosterEntry {
                            user_id: user,
                            role,
                            invited_at: now,
                            invite_id: crate::ids::random_token(16),
                        };
                        insert_entry(&tx, &room, &entry)?;
                        done.push(RosterChange::Added(entry));
                    }
                    (Some(from), Some(role)) => {
                        if from != role {
                            tx.execute(
                                "UPDATE participants SET role = ?3 WHERE room_id = ?1 AND user_id = ?2",
                                params![room.as_str(), user.as_str(), role.as_str()],
                            )
                            .map_err(backend)?;
                        }
                        let raw = tx
                            .query_row(
                                "SELECT user_id, role, invited_at, invite_id FROM participants
                                 WHERE room_id = ?1 AND user_id = ?2",
                                params![room.as_str(), user.as_str()],
                                row_to_entry,
                            )
                            .map_err(backend)?;
                        if from != role {
                            done.push(RosterChange::RoleChanged {
                                entry: to_entry(raw)?,
                                from,
                            });
                        }
                    }
                }
            }
            let count: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM participants WHERE room_id = ?1",
                    [room.as_str()],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            if count as u64 > max_size {
                // Dropping the transaction rolls every change back.
                return Err(StoreError::RosterFull(max_size));
            }
            if !done.is_empty() {
                insert_event(&tx, &roster_event(&room, &done))?;
            }
            tx.commit().map_err(backend)?;
            Ok(done)
        })
        .await
    }

    async fn idempotent_response(&self, key: &str) -> Result<Option<StoredResponse>, StoreError> {
        let key = key.to_owned();
        self.read(move |conn| {
            conn.query_row(
                "SELECT status, body FROM idempotency WHERE key = ?1",
                [key],
                |r| {
                    Ok(StoredResponse {
                        status: r.get(0)?,
                        body: r.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn revoke_token(
        &self,
        jti: &str,
        room: &RoomId,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (jti, room) = (jti.to_owned(), room.clone());
        self.write(move |conn| {
            conn.execute(
                "INSERT OR IGNORE INTO revoked_tokens (jti, room_id, expires_at) VALUES (?1, ?2, ?3)",
                params![jti, room.as_str(), ms(expires_at)],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn is_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let jti = jti.to_owned();
        self.read(move |conn| {
            conn.query_row("SELECT 1 FROM revoked_tokens WHERE jti = ?1", [jti], |_| {
                Ok(())
            })
            .optional()
            .map(|r| r.is_some())
            .map_err(backend)
        })
        .await
    }

    async fn admission_read(
        &self,
        room: &RoomId,
        user: &UserId,
        jti: &str,
    ) -> Result<AdmissionRead, StoreError> {
        let (room, user, jti) = (room.clone(), user.clone(), jti.to_owned());
        self.read(move |conn| {
            // One transaction, so the three answers are of the same moment.
            let tx = conn.transaction().map_err(backend)?;
            let revoked = tx
                .query_row(
                    "SELECT 1 FROM revoked_tokens WHERE jti = ?1",
                    [&jti],
                    |_| Ok(()),
                )
                .optional()
                .map_err(backend)?
                .is_some();
            let room = read_room(&tx, &room)?;
            let entry = match &room {
                Some(r) => tx
                    .query_row(
                        "SELECT user_id, role, invited_at, invite_id FROM participants
                         WHERE room_id = ?1 AND user_id = ?2",
                        params![r.id.as_str(), user.as_str()],
                        row_to_entry,
                    )
                    .optional()
                    .map_err(backend)?
                    .map(to_entry)
                    .transpose()?,
                None => None,
            };
            Ok(AdmissionRead {
                revoked,
                room,
                entry,
            })
        })
        .await
    }

    async fn append_events(&self, events: Vec<NewEvent>) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        self.write(move |conn| {
            let tx = conn.transaction().map_err(backend)?;
            for ev in &events {
                insert_event(&tx, ev)?;
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn events_after(&self, seq: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT seq, id, type, room_id, at, data FROM events
                     WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![seq as i64, limit as i64], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, String>(5)?,
                    ))
                })
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            rows.into_iter()
                .map(|(seq, id, kind, room, at, data)| {
                    Ok(Event {
                        seq: seq as u64,
                        id,
                        kind: EventType::parse(&kind)
                            .ok_or_else(|| backend(format!("unknown event type {kind}")))?,
                        room: RoomId::parse(&room).map_err(backend)?,
                        at: from_ms(at),
                        data: serde_json::from_str(&data).map_err(backend)?,
                    })
                })
                .collect()
        })
        .await
    }

    async fn webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY created_at, id"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map([], row_to_webhook)
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            Ok(rows)
        })
        .await
    }

    async fn put_webhook(&self, hook: Webhook) -> Result<Webhook, StoreError> {
        self.write(move |conn| {
            let tx = conn.transaction().map_err(backend)?;
            // A new endpoint starts after the events written so far; one that exists
            // (a config entry seen again) keeps its place.
            let last: i64 = tx
                .query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))
                .map_err(backend)?;
            tx.execute(
                "INSERT INTO webhooks (id, url, secret, events, source, created_at, cursor)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(id) DO UPDATE SET url = ?2, secret = ?3, events = ?4",
                params![
                    hook.id,
                    hook.url,
                    hook.secret,
                    serde_json::to_string(&hook.events).map_err(backend)?,
                    hook.source.as_str(),
                    ms(hook.created_at),
                    last
                ],
            )
            .map_err(backend)?;
            let stored = tx
                .query_row(
                    &format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = ?1"),
                    [&hook.id],
                    row_to_webhook,
                )
                .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(stored)
        })
        .await
    }

    async fn delete_webhook(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.write(move |conn| {
            conn.execute("DELETE FROM webhooks WHERE id = ?1", [id])
                .map(|n| n > 0)
                .map_err(backend)
        })
        .await
    }

    async fn set_webhook_cursor(&self, id: &str, seq: u64) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.write(move |conn| {
            conn.execute(
                "UPDATE webhooks SET cursor = MAX(cursor, ?2) WHERE id = ?1",
                params![id, seq as i64],
            )
            .map(|_| ())
            .map_err(backend)
        })
        .await
    }

    fn generation(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    async fn purge(
        &self,
        rooms_ended_before: DateTime<Utc>,
        keys_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<PurgeCounts, StoreError> {
        self.write(move |conn| {
            let tx = conn.transaction().map_err(backend)?;
            let rooms = tx
                .execute(
                    "DELETE FROM rooms WHERE valid_until < ?1",
                    [ms(rooms_ended_before)],
                )
                .map_err(backend)? as u64;
            let idempotency_keys = tx
                .execute(
                    "DELETE FROM idempotency
                     WHERE created_at < ?1 OR room_id NOT IN (SELECT id FROM rooms)",
                    [ms(keys_before)],
                )
                .map_err(backend)? as u64;
            let revoked_tokens = tx
                .execute(
                    "DELETE FROM revoked_tokens WHERE expires_at <= ?1",
                    [ms(now)],
                )
                .map_err(backend)? as u64;
            // Events every endpoint has (all of them when there is none).
            let events = tx
                .execute(
                    "DELETE FROM events WHERE seq <= COALESCE(
                         (SELECT MIN(cursor) FROM webhooks), (SELECT MAX(seq) FROM events))",
                    [],
                )
                .map_err(backend)? as u64;
            tx.commit().map_err(backend)?;
            Ok(PurgeCounts {
                rooms,
                idempotency_keys,
                revoked_tokens,
                events,
            })
        })
        .await
    }
}
