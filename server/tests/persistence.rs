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
