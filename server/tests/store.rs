//! The store suite, run against both backends: SQLite (in memory) and a real
//! PostgreSQL (`common::postgres`, a throwaway cluster). Each check is written once
//! against the `RoomStore` trait; `backends!` makes one test per backend.
mod common;

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use convene::ids::{RoomId, UserId};
use convene::model::event::{EventType, NewEvent, Webhook, WebhookSource};
use convene::model::{Role, Room, RosterChange, RosterEntry};
use convene::store::{PgStore, PurgeCounts, RoomStore, SqliteStore, StoreError, StoredResponse};

type Store = Arc<dyn RoomStore>;

async fn sqlite() -> Store {
    Arc::new(SqliteStore::in_memory().unwrap())
}

async fn postgres() -> Store {
    let url = common::postgres::database_url().await;
    Arc::new(PgStore::connect(&url).await.unwrap())
}

macro_rules! backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::sqlite().await).await })*
        }
        mod on_postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::postgres().await).await })*
        }
    };
}

backends!(
    purge_removes_only_what_is_past_its_grace,
    updates_are_versioned_and_conditional,
    a_failed_roster_change_changes_nothing,
    changes_write_their_events_and_endpoints_keep_their_place,
    concurrent_updates_of_one_room_lose_nothing,
    concurrent_roster_adds_never_pass_the_limit,
    one_idempotency_key_creates_one_room,
    an_outbox_reader_following_writes_misses_nothing,
    admission_reads_one_moment,
    pages_come_in_byte_order,
);

fn room(id: &str, until: DateTime<Utc>) -> Room {
    Room {
        id: RoomId::parse(id).unwrap(),
        version: 1,
        name: String::new(),
        created_at: until - Duration::days(1),
        valid_from: until - Duration::days(1),
        valid_until: until,
        max_participants: None,
        join_policy: Default::default(),
        is_message_disabled: false,
        is_public_visible: false,
        cover_url: None,
        destroy_delay_seconds: 0,
        announce_limit: 50,
        room_type: Default::default(),
        owner_id: None,
        max_seat_count: 8,
        take_seat_mode: Default::default(),
        attributes: Default::default(),
    }
}

fn user(id: &str) -> UserId {
    UserId::parse(id).unwrap()
}

async fn purge_removes_only_what_is_past_its_grace(store: Store) {
    let now = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
    let entry = RosterEntry {
        user_id: UserId::parse("a").unwrap(),
        role: Role::Attendee,
        invited_at: now,
        invite_id: "i".into(),
    };
    let old = room("old", now - Duration::days(8));
    let recent = room("recent", now - Duration::days(6));
    let resp = StoredResponse {
        status: 201,
        body: "{}".into(),
    };
    store
        .create_room(
            &old,
            std::slice::from_ref(&entry),
            Some(("k-old", &resp)),
            now - Duration::days(2),
        )
        .await
        .unwrap();
    store
        .create_room(&recent, &[entry], Some(("k-new", &resp)), now)
        .await
        .unwrap();
    store
        .revoke_token("t_gone", &old.id, now - Duration::seconds(1))
        .await
        .unwrap();
    store
        .revoke_token("t_live", &recent.id, now + Duration::days(1))
        .await
        .unwrap();
    let counts = store
        .purge(now - Duration::days(7), now - Duration::hours(24), now)
        .await
        .unwrap();
    assert_eq!(
        counts,
        PurgeCounts {
            rooms: 1,
            idempotency_keys: 1,
            revoked_tokens: 1,
            // Both rooms' room.created: no webhook endpoint wants them.
            events: 2,
        }
    );
    assert!(store.get_room(&old.id).await.unwrap().is_none());
    assert_eq!(
        store.roster_count(&old.id).await.unwrap(),
        0,
        "roster cascades"
    );
    assert!(store.get_room(&recent.id).await.unwrap().is_some());
    assert!(store.idempotent_response("k-new").await.unwrap().is_some());
    assert!(store.is_token_revoked("t_live").await.unwrap());
    assert!(!store.is_token_revoked("t_gone").await.unwrap());
}

async fn updates_are_versioned_and_conditional(store: Store) {
    let now = Utc::now();
    let r = room("r", now + Duration::days(1));
    store.create_room(&r, &[], None, now).await.unwrap();
    let renamed = store
        .update_room(
            &r.id,
            Some(1),
            Box::new(|room| {
                room.name = "a".into();
                Ok(())
            }),
        )
        .await
        .unwrap();
    assert_eq!((renamed.version, renamed.name.as_str()), (2, "a"));
    assert!(matches!(
        store
            .update_room(&r.id, Some(1), Box::new(|_| Ok(())))
            .await,
        Err(StoreError::VersionMismatch { current: 2 })
    ));
    let refused = store
        .update_room(
            &r.id,
            None,
            Box::new(|room| {
                room.name = "b".into();
                Err(convene::model::RuleError::new("name", "no"))
            }),
        )
        .await;
    assert!(matches!(refused, Err(StoreError::Rejected(_))));
    let stored = store.get_room(&r.id).await.unwrap().unwrap();
    assert_eq!((stored.version, stored.name.as_str()), (2, "a"));
    assert_eq!(store.list_rooms(None, 10).await.unwrap()[0].version, 2);
    assert!(matches!(
        store.delete_room(&r.id, Some(1)).await,
        Err(StoreError::VersionMismatch { current: 2 })
    ));
    assert!(store.delete_room(&r.id, Some(2)).await.unwrap());
    assert!(!store.delete_room(&r.id, None).await.unwrap());
}

async fn a_failed_roster_change_changes_nothing(store: Store) {
    let now = Utc::now();
    let r = room("r", now + Duration::days(1));
    store.create_room(&r, &[], None, now).await.unwrap();
    let missing = RoomId::parse("missing").unwrap();
    let add = vec![(UserId::parse("a").unwrap(), Some(Role::Presenter))];
    assert!(matches!(
        store.apply_roster(&missing, &add, now, 10).await,
        Err(StoreError::RoomNotFound)
    ));
    let done = store.apply_roster(&r.id, &add, now, 10).await.unwrap();
    assert!(matches!(done[0], RosterChange::Added(_)));
    let again = store.apply_roster(&r.id, &add, now, 10).await.unwrap();
    assert!(again.is_empty(), "same role again is no change");
}

async fn changes_write_their_events_and_endpoints_keep_their_place(store: Store) {
    let now = Utc::now();
    let hook = |id: &str| Webhook {
        id: id.into(),
        url: "http://127.0.0.1:9/h".into(),
        secret: "0123456789abcdef".into(),
        events: vec![],
        source: WebhookSource::Api,
        created_at: now,
        cursor: 99,
    };
    let early = store.put_webhook(hook("a")).await.unwrap();
    assert_eq!(
        early.cursor, 0,
        "starts at the newest event, not what was asked"
    );
    let r = room("ev", now + Duration::days(1));
    store.create_room(&r, &[], None, now).await.unwrap();
    let changes = vec![(UserId::parse("u").unwrap(), Some(Role::Attendee))];
    store.apply_roster(&r.id, &changes, now, 10).await.unwrap();
    let late = store.put_webhook(hook("b")).await.unwrap();
    assert_eq!(late.cursor, 2, "a later endpoint only gets later events");
    store.delete_room(&r.id, None).await.unwrap();
    let all = store.events_after(0, 10).await.unwrap();
    let kinds: Vec<_> = all.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            EventType::RoomCreated,
            EventType::RosterChanged,
            EventType::RoomDeleted
        ]
    );
    assert_eq!(all[1].data["added"][0]["userId"], "u");
    store.set_webhook_cursor("a", 2).await.unwrap();
    store.set_webhook_cursor("a", 1).await.unwrap();
    let counts = store
        .purge(now - Duration::days(7), now - Duration::hours(24), now)
        .await
        .unwrap();
    assert_eq!(counts.events, 2, "what the slowest endpoint has");
    assert_eq!(store.events_after(0, 10).await.unwrap().len(), 1);
}

async fn concurrent_updates_of_one_room_lose_nothing(store: Store) {
    let now = Utc::now();
    let r = room("race", now + Duration::days(1));
    store.create_room(&r, &[], None, now).await.unwrap();
    let writes = (0..20).map(|i| {
        let store = store.clone();
        let id = r.id.clone();
        tokio::spawn(async move {
            store
                .update_room(
                    &id,
                    None,
                    Box::new(move |room| {
                        room.attributes.insert(format!("k{i}"), format!("v{i}"));
                        Ok(())
                    }),
                )
                .await
                .map(|room| room.version)
        })
    });
    let mut versions: Vec<u64> = futures_util::future::join_all(writes)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    versions.sort();
    assert_eq!(versions, (2..=21).collect::<Vec<_>>(), "one version each");
    let stored = store.get_room(&r.id).await.unwrap().unwrap();
    assert_eq!(stored.version, 21);
    assert_eq!(
        stored.attributes.len(),
        20,
        "every edit kept: {:?}",
        stored.attributes
    );
}

async fn concurrent_roster_adds_never_pass_the_limit(store: Store) {
    let now = Utc::now();
    let r = room("full", now + Duration::days(1));
    store.create_room(&r, &[], None, now).await.unwrap();
    let adds = (0..20).map(|i| {
        let store = store.clone();
        let id = r.id.clone();
        tokio::spawn(async move {
            let add = [(user(&format!("u{i:02}")), Some(Role::Attendee))];
            store.apply_roster(&id, &add, now, 10).await
        })
    });
    let results: Vec<_> = futures_util::future::join_all(adds)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let full = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::RosterFull(10))))
        .count();
    assert_eq!((ok, full), (10, 10), "{results:?}");
    assert_eq!(store.roster_count(&r.id).await.unwrap(), 10);
}

async fn one_idempotency_key_creates_one_room(store: Store) {
    let now = Utc::now();
    let resp = StoredResponse {
        status: 201,
        body: "{}".into(),
    };
    let creates = (0..6).map(|i| {
        let store = store.clone();
        let resp = resp.clone();
        tokio::spawn(async move {
            let r = room(&format!("same-key-{i}"), now + Duration::days(1));
            store.create_room(&r, &[], Some(("k", &resp)), now).await
        })
    });
    let results: Vec<_> = futures_util::future::join_all(creates)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let dup = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::DuplicateRequest)))
        .count();
    assert_eq!((ok, dup), (1, 5), "{results:?}");
    assert_eq!(
        store.count_rooms().await.unwrap(),
        1,
        "the losers rolled back"
    );
    assert_eq!(store.idempotent_response("k").await.unwrap(), Some(resp));
}

/// A webhook sender reads the outbox after its cursor while writes commit: an event
/// numbered before one it has read, but committed after, would be skipped for good.
async fn an_outbox_reader_following_writes_misses_nothing(store: Store) {
    let now = Utc::now();
    let writers = (0..8).map(|w| {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..25 {
                let r = room(&format!("w{w}-{i}"), now + Duration::days(1));
                store.create_room(&r, &[], None, now).await.unwrap();
                let ev = NewEvent::new(
                    EventType::ParticipantJoined,
                    &r.id,
                    now,
                    serde_json::json!({"i": i}),
                );
                store.append_events(vec![ev]).await.unwrap();
            }
        })
    });
    let writers = tokio::spawn(futures_util::future::join_all(writers));
    let mut cursor = 0;
    let mut seen = std::collections::HashSet::new();
    loop {
        let done = writers.is_finished();
        for ev in store.events_after(cursor, 1000).await.unwrap() {
            assert!(ev.seq > cursor);
            cursor = ev.seq;
            seen.insert(ev.id);
        }
        if done {
            break;
        }
        tokio::task::yield_now().await;
    }
    let all = store.events_after(0, 10_000).await.unwrap();
    assert_eq!(all.len(), 400);
    let missed: Vec<_> = all.iter().filter(|e| !seen.contains(&e.id)).collect();
    assert!(
        missed.is_empty(),
        "the follower skipped {} events",
        missed.len()
    );
}

async fn admission_reads_one_moment(store: Store) {
    let now = Utc::now();
    let missing = store
        .admission_read(&RoomId::parse("nope").unwrap(), &user("a"), "t1")
        .await
        .unwrap();
    assert!(!missing.revoked && missing.room.is_none() && missing.entry.is_none());
    let r = room("adm", now + Duration::days(1));
    let entry = RosterEntry {
        user_id: user("a"),
        role: Role::Presenter,
        invited_at: Utc.timestamp_millis_opt(now.timestamp_millis()).unwrap(),
        invite_id: "inv1".into(),
    };
    store
        .create_room(&r, std::slice::from_ref(&entry), None, now)
        .await
        .unwrap();
    store
        .revoke_token("t1", &r.id, now + Duration::hours(1))
        .await
        .unwrap();
    let read = store.admission_read(&r.id, &user("a"), "t1").await.unwrap();
    assert!(read.revoked);
    assert_eq!(read.room.unwrap().id, r.id);
    assert_eq!(read.entry, Some(entry));
    let other = store.admission_read(&r.id, &user("b"), "t2").await.unwrap();
    assert!(!other.revoked && other.room.is_some() && other.entry.is_none());
}

async fn pages_come_in_byte_order(store: Store) {
    let now = Utc::now();
    for id in ["b", "B", "a-1", "a_1", "Z", "a"] {
        store
            .create_room(&room(id, now + Duration::days(1)), &[], None, now)
            .await
            .unwrap();
    }
    let first: Vec<String> = store
        .list_rooms(None, 3)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id.as_str().to_string())
        .collect();
    let rest: Vec<String> = store
        .list_rooms(Some(first.last().unwrap()), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id.as_str().to_string())
        .collect();
    assert_eq!(
        [first, rest].concat(),
        ["B", "Z", "a", "a-1", "a_1", "b"],
        "byte order, the same on every backend"
    );
    let changes: Vec<_> = ["bob", "Al", "al"]
        .iter()
        .map(|u| (user(u), Some(Role::Attendee)))
        .collect();
    store
        .apply_roster(&RoomId::parse("a").unwrap(), &changes, now, 10)
        .await
        .unwrap();
    let page: Vec<String> = store
        .roster_page(&RoomId::parse("a").unwrap(), Some("Al"), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.user_id.as_str().to_string())
        .collect();
    assert_eq!(page, ["al", "bob"]);
}
