mod common;

use common::{test_config, TestServer};
use serde_json::json;

#[tokio::test]
async fn rooms_rosters_and_keys_survive_a_restart() {
    let s = TestServer::start().await;
    let key = s.key.clone();
    s.room("keep", &[("alice", "presenter"), ("bob", "consumer")])
        .await;
    let (_, before) = s.get("/v1/rooms/keep").await;
    let token = s.token("keep", "alice").await;
    let dir = s.data_dir.clone();
    let tmp = s.stop().await.expect("temp dir");

    let s = TestServer::start_with(test_config(&dir)).await;
    assert_eq!(s.key, key, "the admin key is kept in the data dir");
    let (st, after) = s.get("/v1/rooms/keep").await;
    assert_eq!(st, 200);
    assert_eq!(after, before);
    let (_, roster) = s.get("/v1/rooms/keep/participants").await;
    assert_eq!(
        roster["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["userId"].clone(), e["role"].clone()))
            .collect::<Vec<_>>(),
        vec![
            (json!("alice"), json!("presenter")),
            (json!("bob"), json!("consumer"))
        ]
    );
    // The signing key is kept too: a token minted before still has a valid signature.
    let again = s.token("keep", "alice").await;
    assert_eq!(
        token.split('.').next(),
        again.split('.').next(),
        "same header"
    );
    let key_file = std::fs::read_to_string(dir.join("admin.key")).unwrap();
    assert_eq!(key_file.trim(), key);
    s.stop().await;
    drop(tmp);
}

#[tokio::test]
async fn configured_admin_key_is_used() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = test_config(tmp.path());
    c.admin_key = Some(convene::secret::Secret::new("a-configured-admin-key"));
    let s = TestServer::start_with(c).await;
    assert_eq!(s.key, "a-configured-admin-key");
    let (st, _) = s.get("/v1/rooms").await;
    assert_eq!(st, 200);
    assert!(!tmp.path().join("admin.key").exists());
}

/// On PostgreSQL the rooms live in the database: a server started again with the same
/// URL (and the same keys) finds them, and writes nothing of them to its data dir.
#[tokio::test]
async fn rooms_survive_a_restart_on_postgres() {
    let s = TestServer::start_on_postgres().await;
    s.room("kept", &[("alice", "presenter")]).await;
    let (_, before) = s.patch("/v1/rooms/kept", json!({"name": "Kept"})).await;
    let dir = s.data_dir.clone();
    assert!(
        !dir.join("convene.db").exists(),
        "no SQLite file beside PostgreSQL"
    );
    let mut config = test_config(&dir);
    config.database_url = Some(s.database_url().expect("on PostgreSQL"));
    let tmp = s.stop().await.expect("temp dir");

    let s = TestServer::start_with(config).await;
    let (st, after) = s.get("/v1/rooms/kept").await;
    assert_eq!(st, 200);
    assert_eq!(after, before);
    assert_eq!(after["version"], 2);
    let (_, roster) = s.get("/v1/rooms/kept/participants").await;
    assert_eq!(roster["value"][0]["userId"], "alice");
    s.stop().await;
    drop(tmp);
}

/// A database that cannot be reached stops the start with one clear line (the timeout
/// around `run` fails the test if it would wait forever instead).
#[tokio::test]
async fn an_unreachable_database_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut config = test_config(tmp.path());
    config.database_url = Some(convene::secret::Secret::new(format!(
        "postgres://convene:hunter2@127.0.0.1:{port}/convene"
    )));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = tokio::time::timeout(
        std::time::Duration::from_secs(15),
        convene::run(listener, config, std::future::pending()),
    )
    .await
    .expect("gives up by itself")
    .expect_err("cannot start without its database");
    let text = err.to_string();
    assert!(text.starts_with("cannot open the database:"), "{text}");
    assert!(text.contains("PostgreSQL"), "{text}");
    assert!(
        !text.contains("hunter2"),
        "the password is not repeated: {text}"
    );
}

/// PostgreSQL restarted or an operator killed the server's sessions: the pool replaces
/// the dead connections and the next requests are answered.
#[tokio::test]
async fn dropped_database_connections_are_replaced() {
    let s = TestServer::start_on_postgres().await;
    s.room("steady", &[("alice", "presenter")]).await;
    let url = s.database_url().expect("on PostgreSQL");
    let admin = common::postgres::connect(url.expose()).await;
    let killed: i64 = admin
        .query_one(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()) AS t",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(killed >= 1, "the server's connections were terminated");
    // A request may still meet a connection whose end the pool has not seen yet; soon
    // every request is answered again.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (st, body) = s.get("/v1/rooms/steady").await;
        if st == 200 {
            assert_eq!(body["id"], "steady");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {st}: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for _ in 0..20 {
        let (st, body) = s.patch("/v1/rooms/steady", json!({"name": "again"})).await;
        assert_eq!(st, 200, "{body}");
    }
    s.stop().await;
}
