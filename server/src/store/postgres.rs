//! The PostgreSQL store (`CONVENE_DATABASE_URL=postgres://...`): the tables and the
//! guarantees of the SQLite store, on a database server several Convene nodes can
//! share. Every write is one transaction, acknowledged after `COMMIT` returns.
//!
//! How SQLite's single writer is replaced:
//! - a room (and its roster) is changed under its row lock (`SELECT ... FOR UPDATE`),
//!   so concurrent edits of one room serialize and none is lost, while other rooms'
//!   writes run beside them;
//! - the webhook outbox must be read in commit order, so the last statement of every
//!   transaction that adds an event takes one advisory lock before numbering it and
//!   keeps it until commit: `seq` order is commit order, and an endpoint's cursor never
//!   passes an event that commits later. The holder needs no further lock, so it cannot
//!   deadlock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use super::{
    AdmissionRead, PurgeCounts, RoomEdit, RoomStore, RosterChange, StoreError, StoredResponse,
};
use crate::ids::{RoomId, UserId};
use crate::model::event::{Event, EventType, NewEvent, Webhook, WebhookSource};
use crate::model::{Role, Room, RosterEntry};
use crate::store::columns::{backend, from_ms, ms};
use crate::store::events::{room_event, roster_event};

/// Applied in order inside one transaction; `convene_schema.version` counts how many
/// have run. Ids use the "C" collation so pages come in byte order, as in SQLite.
const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE rooms (
        id          TEXT COLLATE "C" PRIMARY KEY,
        valid_until BIGINT NOT NULL,
        doc         TEXT NOT NULL,
        version     BIGINT NOT NULL
    );
    CREATE INDEX rooms_valid_until ON rooms(valid_until);
    CREATE TABLE participants (
        room_id    TEXT COLLATE "C" NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
        user_id    TEXT COLLATE "C" NOT NULL,
        role       TEXT NOT NULL,
        invited_at BIGINT NOT NULL,
        invite_id  TEXT NOT NULL,
        PRIMARY KEY (room_id, user_id)
    );
    CREATE TABLE idempotency (
        key        TEXT PRIMARY KEY,
        status     INTEGER NOT NULL,
        body       TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        room_id    TEXT COLLATE "C"
    );
    CREATE INDEX idempotency_room ON idempotency(room_id);
    CREATE TABLE revoked_tokens (
        jti        TEXT PRIMARY KEY,
        room_id    TEXT NOT NULL,
        expires_at BIGINT NOT NULL
    );
    CREATE TABLE events (
        seq     BIGSERIAL PRIMARY KEY,
        id      TEXT NOT NULL UNIQUE,
        type    TEXT NOT NULL,
        room_id TEXT NOT NULL,
        at      BIGINT NOT NULL,
        data    TEXT NOT NULL
    );
    CREATE TABLE webhooks (
        id         TEXT PRIMARY KEY,
        url        TEXT NOT NULL,
        secret     TEXT NOT NULL,
        events     TEXT NOT NULL,
        source     TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        cursor     BIGINT NOT NULL
    );
"#,
    r#"
    CREATE TABLE convene_keys (
        name  TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
"#,
];

/// Advisory lock keys (any 64-bit numbers no other application on the database uses).
const MIGRATION_LOCK: i64 = 0x636f_6e76_656e_6501;
const OUTBOX_LOCK: i64 = 0x636f_6e76_656e_6502;

/// Connections per node: enough for a join storm's reads beside the admin writes.
const POOL_SIZE: usize = 16;
/// Longest a request waits for a free connection of the pool.
const POOL_WAIT: Duration = Duration::from_secs(10);
/// Longest one statement may run (a lock wait included) unless the URL's `options` say
/// otherwise: under the HTTP request timeout, so the client hears why.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// Successful writes through this node (see `RoomStore::generation`).
    writes: Arc<AtomicU64>,
}

/// A database error, with PostgreSQL's own message or the cause (tokio-postgres's
/// `Display` says only "db error" or "error connecting to server").
fn pg(e: tokio_postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        return StoreError::Backend(format!("PostgreSQL: {}", db.message()));
    }
    let mut text = format!("PostgreSQL: {e}");
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    StoreError::Backend(text)
}

/// Where the database is, for messages: host, port and name, never the password.
fn describe(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or_default();
    format!("{host}:{port}/{db}")
}

/// Checks the URL without connecting; the reason never repeats the URL (it may hold a
/// password).
pub fn parse_url(url: &str) -> Result<tokio_postgres::Config, String> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err("the database URL must start with postgres:// or postgresql://".into());
    }
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| format!("the database URL does not parse: {e}"))?;
    if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
        return Err(
            "sslmode=require is not supported yet: reach PostgreSQL over a private network \
             or a local socket"
                .into(),
        );
    }
    Ok(config)
}

impl PgStore {
    /// Connects, and brings the schema to this build's version (one node at a time).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let mut config = parse_url(url).map_err(StoreError::Backend)?;
        let target = describe(&config);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        if config.get_application_name().is_none() {
            config.application_name("convene");
        }
        if config.get_options().is_none() {
            config.options(format!(
                "-c statement_timeout={}",
                STATEMENT_TIMEOUT.as_millis()
            ));
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        // Nothing waits forever on the database: a request finds a connection, a new
        // connection is made and a used one is checked, each within its limit (and a
        // statement is cut off by the server after `STATEMENT_TIMEOUT`).
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(Duration::from_secs(5)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(backend)?;
        let store = Self {
            pool,
            writes: Arc::new(AtomicU64::new(0)),
        };
        store.migrate().await.map_err(|e| match e {
            StoreError::Backend(why) => StoreError::Backend(format!("{target}: {why}")),
            e => e,
        })?;
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => pg(e),
            deadpool_postgres::PoolError::Timeout(_) => StoreError::Backend(
                "PostgreSQL: no free connection in time (the database is slow or unreachable)"
                    .into(),
            ),
            e => StoreError::Backend(format!("PostgreSQL connection pool: {e}")),
        })
    }

    fn wrote(&self) {
        self.writes.fetch_add(1, Ordering::SeqCst);
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        // Nodes starting together: one migrates, the others wait and find it done.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg)?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS convene_schema (version INTEGER NOT NULL)")
            .await
            .map_err(pg)?;
        let version: i32 = match tx
            .query_opt("SELECT version FROM convene_schema", &[])
            .await
            .map_err(pg)?
        {
            Some(row) => row.get(0),
            None => {
                tx.execute("INSERT INTO convene_schema (version) VALUES (0)", &[])
                    .await
                    .map_err(pg)?;
                0
            }
        };
        if version as usize > MIGRATIONS.len() {
            return Err(StoreError::Backend(format!(
                "the database is from a newer Convene (schema {version}, this build knows {})",
                MIGRATIONS.len()
            )));
        }
        for sql in &MIGRATIONS[version as usize..] {
            tx.batch_execute(sql).await.map_err(pg)?;
        }
        tx.execute(
            "UPDATE convene_schema SET version = $1",
            &[&(MIGRATIONS.len() as i32)],
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)
    }
}

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// A transaction whose statements are each prepared once per connection: a plain
/// `&str` query costs tokio-postgres a second round trip (to prepare it) every time,
/// and here that would be while a room's row lock or the outbox lock is held.
struct Tx<'a>(deadpool_postgres::Transaction<'a>);

impl<'a> std::ops::Deref for Tx<'a> {
    type Target = deadpool_postgres::Transaction<'a>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Tx<'_> {
    async fn run(&self, sql: &str, params: Params<'_>) -> Result<u64, tokio_postgres::Error> {
        let stmt = self.0.prepare_cached(sql).await?;
        self.0.execute(&stmt, params).await
    }

    async fn opt(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Option<Row>, tokio_postgres::Error> {
        let stmt = self.0.prepare_cached(sql).await?;
        self.0.query_opt(&stmt, params).await
    }

    async fn one(&self, sql: &str, params: Params<'_>) -> Result<Row, tokio_postgres::Error> {
        let stmt = self.0.prepare_cached(sql).await?;
        self.0.query_one(&stmt, params).await
    }

    async fn commit(self) -> Result<(), tokio_postgres::Error> {
        self.0.commit().await
    }
}

async fn begin(client: &mut deadpool_postgres::Client) -> Result<Tx<'_>, StoreError> {
    Ok(Tx(client.transaction().await.map_err(pg)?))
}

/// Adds `ev` to the outbox as the last statement of the caller's transaction, in one
/// round trip: the outbox lock is taken (see the module header) before the row, and so
/// its `seq`, exists.
async fn insert_event(tx: &Tx<'_>, ev: &NewEvent) -> Result<(), StoreError> {
    let id = format!("ev_{}", crate::ids::random_token(20));
    let data = ev.data.to_string();
    tx.run(
        "INSERT INTO events (id, type, room_id, at, data)
         SELECT $1::text, $2::text, $3::text, $4::bigint, $5::text
         FROM (SELECT pg_advisory_xact_lock($6::bigint)) AS outbox_lock",
        &[
            &id,
            &ev.kind.as_str(),
            &ev.room.as_str(),
            &ms(ev.at),
            &data,
            &OUTBOX_LOCK,
        ],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

fn room_from_row(row: &Row, doc: usize, version: usize) -> Result<Room, StoreError> {
    let doc: String = row.get(doc);
    let mut room: Room = serde_json::from_str(&doc).map_err(backend)?;
    room.version = row.get::<_, i64>(version) as u64;
    Ok(room)
}

/// A roster entry from four columns starting at `at`: user_id, role, invited_at,
/// invite_id.
fn entry_from_row(row: &Row, at: usize) -> Result<RosterEntry, StoreError> {
    let user: String = row.get(at);
    let role: String = row.get(at + 1);
    Ok(RosterEntry {
        user_id: UserId::parse(&user).map_err(backend)?,
        role: Role::parse(&role).ok_or_else(|| backend(format!("unknown role {role}")))?,
        invited_at: from_ms(row.get(at + 2)),
        invite_id: row.get(at + 3),
    })
}

fn webhook_from_row(r: &Row) -> Webhook {
    let events: String = r.get(3);
    let source: String = r.get(4);
    Webhook {
        id: r.get(0),
        url: r.get(1),
        secret: r.get(2),
        events: serde_json::from_str(&events).unwrap_or_default(),
        source: WebhookSource::parse(&source),
        created_at: from_ms(r.get(5)),
        cursor: r.get::<_, i64>(6) as u64,
    }
}

const WEBHOOK_COLUMNS: &str = "id, url, secret, events, source, created_at, cursor";
const ENTRY_COLUMNS: &str = "user_id, role, invited_at, invite_id";

impl PgStore {
    /// One statement outside a transaction, prepared once per connection.
    async fn query(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await.map_err(pg)?;
        client.query(&stmt, params).await.map_err(pg)
    }

    async fn query_opt(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }

    async fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await.map_err(pg)?;
        let n = client.execute(&stmt, params).await.map_err(pg)?;
        self.wrote();
        Ok(n)
    }
}

#[async_trait]
impl RoomStore for PgStore {
    async fn create_room(
        &self,
        room: &Room,
        roster: &[RosterEntry],
        idempotency: Option<(&str, &StoredResponse)>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let doc = serde_json::to_string(room).map_err(backend)?;
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let inserted = tx
            .execute(
                "INSERT INTO rooms (id, valid_until, doc, version) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id) DO NOTHING",
                &[
                    &room.id.as_str(),
                    &ms(room.valid_until),
                    &doc,
                    &(room.version as i64),
                ],
            )
            .await
            .map_err(pg)?;
        if inserted == 0 {
            return Err(StoreError::AlreadyExists);
        }
        let add = tx
            .prepare_cached(&format!(
                "INSERT INTO participants (room_id, {ENTRY_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"
            ))
            .await
            .map_err(pg)?;
        for e in roster {
            tx.execute(
                &add,
                &[
                    &room.id.as_str(),
                    &e.user_id.as_str(),
                    &e.role.as_str(),
                    &ms(e.invited_at),
                    &e.invite_id,
                ],
            )
            .await
            .map_err(pg)?;
        }
        if let Some((key, resp)) = idempotency {
            // A concurrent retry with the same key waits here for this one's commit,
            // then finds the key taken, rolls back its room and replays this response.
            let n = tx
                .execute(
                    "INSERT INTO idempotency (key, status, body, created_at, room_id)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO NOTHING",
                    &[
                        &key,
                        &i32::from(resp.status),
                        &resp.body,
                        &ms(now),
                        &room.id.as_str(),
                    ],
                )
                .await
                .map_err(pg)?;
            if n == 0 {
                return Err(StoreError::DuplicateRequest);
            }
        }
        insert_event(&tx, &room_event(EventType::RoomCreated, room)).await?;
        tx.commit().await.map_err(pg)?;
        self.wrote();
        Ok(())
    }

    async fn get_room(&self, id: &RoomId) -> Result<Option<Room>, StoreError> {
        self.query_opt(
            "SELECT doc, version FROM rooms WHERE id = $1",
            &[&id.as_str()],
        )
        .await?
        .map(|row| room_from_row(&row, 0, 1))
        .transpose()
    }

    async fn count_rooms(&self) -> Result<u64, StoreError> {
        let row = self.query_opt("SELECT COUNT(*) FROM rooms", &[]).await?;
        Ok(row.map(|r| r.get::<_, i64>(0) as u64).unwrap_or(0))
    }

    async fn list_rooms(&self, after: Option<&str>, limit: usize) -> Result<Vec<Room>, StoreError> {
        let after = after.unwrap_or_default();
        self.query(
            "SELECT doc, version FROM rooms WHERE id > $1 ORDER BY id LIMIT $2",
            &[&after, &(limit as i64)],
        )
        .await?
        .iter()
        .map(|row| room_from_row(row, 0, 1))
        .collect()
    }

    async fn update_room(
        &self,
        id: &RoomId,
        if_version: Option<u64>,
        edit: RoomEdit,
    ) -> Result<Room, StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        // The row lock: a concurrent update of this room waits here for this commit,
        // then reads what this one wrote.
        let row = tx
            .opt(
                "SELECT doc, version FROM rooms WHERE id = $1 FOR UPDATE",
                &[&id.as_str()],
            )
            .await
            .map_err(pg)?
            .ok_or(StoreError::RoomNotFound)?;
        let mut room = room_from_row(&row, 0, 1)?;
        let current = room.version;
        if if_version.is_some_and(|v| v != current) {
            return Err(StoreError::VersionMismatch { current });
        }
        edit(&mut room).map_err(StoreError::Rejected)?;
        room.id = id.clone();
        room.version = current + 1;
        let doc = serde_json::to_string(&room).map_err(backend)?;
        tx.run(
            "UPDATE rooms SET valid_until = $2, doc = $3, version = $4 WHERE id = $1",
            &[
                &id.as_str(),
                &ms(room.valid_until),
                &doc,
                &(room.version as i64),
            ],
        )
        .await
        .map_err(pg)?;
        insert_event(&tx, &room_event(EventType::RoomUpdated, &room)).await?;
        tx.commit().await.map_err(pg)?;
        self.wrote();
        Ok(room)
    }

    async fn delete_room(&self, id: &RoomId, if_version: Option<u64>) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let Some(row) = tx
            .opt(
                "SELECT version FROM rooms WHERE id = $1 FOR UPDATE",
                &[&id.as_str()],
            )
            .await
            .map_err(pg)?
        else {
            return Ok(false);
        };
        let current = row.get::<_, i64>(0) as u64;
        if if_version.is_some_and(|v| v != current) {
            return Err(StoreError::VersionMismatch { current });
        }
        tx.run("DELETE FROM rooms WHERE id = $1", &[&id.as_str()])
            .await
            .map_err(pg)?;
        tx.run(
            "DELETE FROM idempotency WHERE room_id = $1",
            &[&id.as_str()],
        )
        .await
        .map_err(pg)?;
        let gone = NewEvent::new(
            EventType::RoomDeleted,
            id,
            Utc::now(),
            serde_json::json!({ "id": id.as_str() }),
        );
        insert_event(&tx, &gone).await?;
        tx.commit().await.map_err(pg)?;
        self.wrote();
        Ok(true)
    }

    async fn roster_page(
        &self,
        room: &RoomId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RosterEntry>, StoreError> {
        let after = after.unwrap_or_default();
        self.query(
            &format!(
                "SELECT {ENTRY_COLUMNS} FROM participants
                 WHERE room_id = $1 AND user_id > $2 ORDER BY user_id LIMIT $3"
            ),
            &[&room.as_str(), &after, &(limit as i64)],
        )
        .await?
        .iter()
        .map(|row| entry_from_row(row, 0))
        .collect()
    }

    async fn roster_entry(
        &self,
        room: &RoomId,
        user: &UserId,
    ) -> Result<Option<RosterEntry>, StoreError> {
        self.query_opt(
            &format!(
                "SELECT {ENTRY_COLUMNS} FROM participants WHERE room_id = $1 AND user_id = $2"
            ),
            &[&room.as_str(), &user.as_str()],
        )
        .await?
        .map(|row| entry_from_row(&row, 0))
        .transpose()
    }

    async fn roster_count(&self, room: &RoomId) -> Result<u64, StoreError> {
        let row = self
            .query_opt(
                "SELECT COUNT(*) FROM participants WHERE room_id = $1",
                &[&room.as_str()],
            )
            .await?;
        Ok(row.map(|r| r.get::<_, i64>(0) as u64).unwrap_or(0))
    }

    async fn apply_roster(
        &self,
        room: &RoomId,
        changes: &[(UserId, Option<Role>)],
        now: DateTime<Utc>,
        max_size: u64,
    ) -> Result<Vec<RosterChange>, StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        // The room's row lock serializes roster changes of one room, so the size check
        // below counts every change committed before.
        let exists = tx
            .opt(
                "SELECT 1 FROM rooms WHERE id = $1 FOR UPDATE",
                &[&room.as_str()],
            )
            .await
            .map_err(pg)?
            .is_some();
        if !exists {
            return Err(StoreError::RoomNotFound);
        }
        let read = tx
            .prepare_cached(&format!(
                "SELECT {ENTRY_COLUMNS} FROM participants WHERE room_id = $1 AND user_id = $2"
            ))
            .await
            .map_err(pg)?;
        let mut done = Vec::new();
        for (user, role) in changes {
            let old = tx
                .query_opt(&read, &[&room.as_str(), &user.as_str()])
                .await
                .map_err(pg)?
                .map(|row| entry_from_row(&row, 0))
                .transpose()?;
            match (old, role) {
                (None, None) => {}
                (Some(_), None) => {
                    tx.run(
                        "DELETE FROM participants WHERE room_id = $1 AND user_id = $2",
                        &[&room.as_str(), &user.as_str()],
                    )
                    .await
                    .map_err(pg)?;
                    done.push(RosterChange::Removed(user.clone()));
                }
                (None, Some(role)) => {
                    let entry = RosterEntry {
                        user_id: user.clone(),
                        role: *role,
                        invited_at: now,
                        invite_id: crate::ids::random_token(16),
                    };
                    tx.run(
                        &format!(
                            "INSERT INTO participants (room_id, {ENTRY_COLUMNS})
                             VALUES ($1, $2, $3, $4, $5)"
                        ),
                        &[
                            &room.as_str(),
                            &entry.user_id.as_str(),
                            &entry.role.as_str(),
                            &ms(entry.invited_at),
                            &entry.invite_id,
                        ],
                    )
                    .await
                    .map_err(pg)?;
                    done.push(RosterChange::Added(entry));
                }
                (Some(mut entry), Some(role)) if entry.role != *role => {
                    tx.run(
                        "UPDATE participants SET role = $3 WHERE room_id = $1 AND user_id = $2",
                        &[&room.as_str(), &user.as_str(), &role.as_str()],
                    )
                    .await
                    .map_err(pg)?;
                    let from = entry.role;
                    entry.role = *role;
                    done.push(RosterChange::RoleChanged { entry, from });
                }
                (Some(_), Some(_)) => {}
            }
        }
        let count: i64 = tx
            .one(
                "SELECT COUNT(*) FROM participants WHERE room_id = $1",
                &[&room.as_str()],
            )
            .await
            .map_err(pg)?
            .get(0);
        if count as u64 > max_size {
            // Dropping the transaction rolls every change back.
            return Err(StoreError::RosterFull(max_size));
        }
        if !done.is_empty() {
            insert_event(&tx, &roster_event(room, &done)).await?;
        }
        tx.commit().await.map_err(pg)?;
        self.wrote();
        Ok(done)
    }

    async fn idempotent_response(&self, key: &str) -> Result<Option<StoredResponse>, StoreError> {
        let row = self
            .query_opt(
                "SELECT status, body FROM idempotency WHERE key = $1",
                &[&key],
            )
            .await?;
        row.map(|r| {
            Ok(StoredResponse {
                status: u16::try_from(r.get::<_, i32>(0)).map_err(backend)?,
                body: r.get(1),
            })
        })
        .transpose()
    }

    async fn revoke_token(
        &self,
        jti: &str,
        room: &RoomId,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO revoked_tokens (jti, room_id, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (jti) DO NOTHING",
            &[&jti, &room.as_str(), &ms(expires_at)],
        )
        .await
        .map(|_| ())
    }

    async fn is_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        Ok(self
            .query_opt("SELECT 1 FROM revoked_tokens WHERE jti = $1", &[&jti])
            .await?
            .is_some())
    }

    async fn admission_read(
        &self,
        room: &RoomId,
        user: &UserId,
        jti: &str,
    ) -> Result<AdmissionRead, StoreError> {
        // One statement: one snapshot and one round trip for all three answers.
        let row = self
            .query_opt(
                "SELECT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $3),
                        r.doc, r.version, p.user_id, p.role, p.invited_at, p.invite_id
                 FROM (SELECT 1) AS one
                 LEFT JOIN rooms r ON r.id = $1
                 LEFT JOIN participants p ON p.room_id = r.id AND p.user_id = $2",
                &[&room.as_str(), &user.as_str(), &jti],
            )
            .await?
            .ok_or_else(|| backend("the admission read returned no row"))?;
        let room = match row.get::<_, Option<String>>(1) {
            Some(_) => Some(room_from_row(&row, 1, 2)?),
            None => None,
        };
        let entry = match row.get::<_, Option<String>>(3) {
            Some(_) => Some(entry_from_row(&row, 3)?),
            None => None,
        };
        Ok(AdmissionRead {
            revoked: row.get(0),
            room,
            entry,
        })
    }

    async fn append_events(&self, events: Vec<NewEvent>) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        for ev in &events {
            insert_event(&tx, ev).await?;
        }
        tx.commit().await.map_err(pg)?;
        self.wrote();
        Ok(())
    }

    async fn events_after(&self, seq: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        self.query(
            "SELECT seq, id, type, room_id, at, data FROM events
             WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&(seq as i64), &(limit as i64)],
        )
        .await?
        .iter()
        .map(|r| {
            let kind: String = r.get(2);
            let room: String = r.get(3);
            let data: String = r.get(5);
            Ok(Event {
                seq: r.get::<_, i64>(0) as u64,
                id: r.get(1),
                kind: EventType::parse(&kind)
                    .ok_or_else(|| backend(format!("unknown event type {kind}")))?,
                room: RoomId::parse(&room).map_err(backend)?,
                at: from_ms(r.get(4)),
                data: serde_json::from_str(&data).map_err(backend)?,
            })
        })
        .collect()
    }

    async fn webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        Ok(self
            .query(
                &format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY created_at, id"),
                &[],
            )
            .await?
            .iter()
            .map(webhook_from_row)
            .collect())
    }

    async fn put_webhook(&self, hook: Webhook) -> Result<Webhook, StoreError> {
        let events = serde_json::to_string(&hook.events).map_err(backend)?;
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        // The outbox lock: no event is being numbered, so "after the newest event" is
        // exact (see the module header).
        tx.run("SELECT pg_advisory_xact_lock($1)", &[&OUTBOX_LOCK])
            .await
            .map_err(pg)?;
        let row = tx
            .one(
                &format!(
                    "INSERT INTO webhooks ({WEBHOOK_COLUMNS})
                     VALUES ($1, $2, $3, $4, $5, $6, (SELECT COALESCE(MAX(seq), 0) FROM events))
                     ON CONFLICT (id) DO UPDATE
                     SET url = EXCLUDED.url, secret = EXCLUDED.secret, events = EXCLUDED.events
                     RETURNING {WEBHOOK_COLUMNS}"
                ),
                &[
                    &hook.id,
                    &hook.url,
                    &hook.secret,
                    &events,
                    &hook.source.as_str(),
                    &ms(hook.created_at),
                ],
            )
            .await
            .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        self.wrote();
        Ok(webhook_from_row(&row))
    }

    async fn delete_webhook(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .execute("DELETE FROM webhooks WHERE id = $1", &[&id])
            .await?
            > 0)
    }

    async fn set_webhook_cursor(&self, id: &str, seq: u64) -> Result<(), StoreError> {
        self.execute(
            "UPDATE webhooks SET cursor = GREATEST(cursor, $2) WHERE id = $1",
            &[&id, &(seq as i64)],
        )
        .await
        .map(|_| ())
    }

    fn generation(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    async fn shared_token_key(&self, candidate: &str) -> Result<String, StoreError> {
        // The first node to start keeps its key; the others take it. The no-op update
        // makes a node that races the first wait for its row and return it (DO NOTHING
        // would return no row, and a separate SELECT might not see it yet).
        let row = self
            .query_opt(
                "INSERT INTO convene_keys (name, value) VALUES ('token', $1)
                 ON CONFLICT (name) DO UPDATE SET value = convene_keys.value
                 RETURNING value",
                &[&candidate],
            )
            .await?;
        row.map(|r| r.get::<_, String>(0))
            .ok_or_else(|| StoreError::Backend("the token key could not be stored".into()))
    }

    async fn purge(
        &self,
        rooms_ended_before: DateTime<Utc>,
        keys_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<PurgeCounts, StoreError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let rooms = tx
            .execute(
                "DELETE FROM rooms WHERE valid_until < $1",
                &[&ms(rooms_ended_before)],
            )
            .await
            .map_err(pg)?;
        let idempotency_keys = tx
            .execute(
                "DELETE FROM idempotency
                 WHERE created_at < $1 OR room_id NOT IN (SELECT id FROM rooms)",
                &[&ms(keys_before)],
            )
            .await
            .map_err(pg)?;
        let revoked_tokens = tx
            .execute(
                "DELETE FROM revoked_tokens WHERE expires_at <= $1",
                &[&ms(now)],
            )
            .await
            .map_err(pg)?;
        // Events every endpoint has (all of them when there is none).
        let events = tx
            .execute(
                "DELETE FROM events WHERE seq <= COALESCE(
                     (SELECT MIN(cursor) FROM webhooks), (SELECT MAX(seq) FROM events))",
                &[],
            )
            .await
            .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        self.wrote();
        Ok(PurgeCounts {
            rooms,
            idempotency_keys,
            revoked_tokens,
            events,
        })
    }
}
