//! The admin CLI against a real server, as an admin would use it.
mod common;

use std::process::Command;

use common::TestServer;

fn convene(s: &TestServer, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_convene"))
        .args(args)
        .env("CONVENE_URL", &s.base)
        .env("CONVENE_DATA_DIR", &s.data_dir)
        .env_remove("CONVENE_ADMIN_KEY")
        .output()
        .expect("run convene");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_walkthrough() {
    let s = TestServer::start().await;
    let run = |args: &[&str]| {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let s = &s;
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            tokio::task::block_in_place(|| convene(s, &refs))
        }
    };
    let (ok, out, err) = run(&[
        "room",
        "create",
        "--id",
        "demo",
        "--name",
        "Demo",
        "--invite",
        "alice:presenter",
    ])
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("created room demo"), "{out}");
    let (ok, out, err) = run(&["invite", "add", "demo", "bob", "--role", "attendee"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("bob is invited"), "{out}");
    let (ok, out, _) = run(&["invite", "list", "demo"]).await;
    assert!(ok);
    assert!(
        out.contains("alice") && out.contains("presenter") && out.contains("bob"),
        "{out}"
    );
    let (ok, out, err) = run(&["token", "demo", "bob"]).await;
    assert!(ok, "{err}");
    assert!(
        out.trim().starts_with(&format!("{}/join#token=", s.base)),
        "{out}"
    );
    let (ok, out, _) = run(&["--json", "room", "list"]).await;
    assert!(ok);
    let rooms: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rooms[0]["id"], "demo");
    let (ok, out, _) = run(&["room", "update", "demo", "--name", "Renamed"]).await;
    assert!(ok && out.contains("Renamed"), "{out}");
    let (ok, out, _) = run(&["invite", "remove", "demo", "bob"]).await;
    assert!(ok && out.contains("no longer invited"), "{out}");
    // Live views: alice joins, the admin sees and removes her.
    let (mut alice, _) = s.join("demo", "alice").await;
    let (ok, out, err) = run(&["members", "demo"]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("alice") && out.contains("presenter") && out.contains("off"),
        "{out}"
    );
    let (ok, out, _) = run(&["sessions"]).await;
    assert!(ok && out.contains("demo"), "{out}");
    let (ok, out, err) = run(&["kick", "demo", "alice"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("alice was removed"), "{out}");
    assert_eq!(alice.closed_with().await, "removed");
    let (ok, _, err) = run(&["kick", "demo", "alice"]).await;
    assert!(!ok && err.contains("NotInRoom"), "{err}");
    let (ok, _, _) = run(&["room", "delete", "demo"]).await;
    assert!(ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_one_line_and_fail() {
    let s = TestServer::start().await;
    let (ok, out, err) = tokio::task::block_in_place(|| convene(&s, &["room", "show", "missing"]));
    assert!(!ok);
    assert!(out.is_empty());
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("RoomNotFound"), "{err}");
    let (ok, _, err) = tokio::task::block_in_place(|| {
        convene(&s, &["room", "create", "--valid-until", "yesterday"])
    });
    assert!(!ok);
    assert!(
        err.contains("InvalidParameter") && err.contains("validUntil"),
        "{err}"
    );
    let (ok, _, err) = tokio::task::block_in_place(|| {
        convene(&s, &["--server", "http://127.0.0.1:1", "room", "list"])
    });
    assert!(!ok);
    assert!(err.contains("cannot reach the server"), "{err}");
}

/// `convene room list --json | head -2` and a full disk: no panic, a clear exit code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_or_a_full_disk_is_not_a_panic() {
    let s = TestServer::start().await;
    for i in 0..3 {
        let (st, body) = s
            .post(
                "/v1/rooms",
                serde_json::json!({"id": format!("r{i}"), "participants": {"a": {}}}),
            )
            .await;
        assert_eq!(st, 201, "{body}");
    }
    let base = s.base.clone();
    let data_dir = s.data_dir.clone();
    let (closed, full) = tokio::task::spawn_blocking(move || {
        let cmd = || {
            let mut c = Command::new(env!("CARGO_BIN_EXE_convene"));
            c.args(["--json", "room", "list"])
                .env("CONVENE_URL", &base)
                .env("CONVENE_DATA_DIR", &data_dir)
                .env_remove("CONVENE_ADMIN_KEY")
                .stderr(std::process::Stdio::piped());
            c
        };
        // The reader goes away before the CLI prints anything.
        let mut child = cmd()
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("run convene");
        drop(child.stdout.take());
        let closed = child.wait_with_output().expect("wait");
        let full = cmd()
            .stdout(std::fs::File::create("/dev/full").expect("/dev/full"))
            .output()
            .expect("run convene");
        (closed, full)
    })
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&closed.stderr);
    assert_eq!(closed.status.code(), Some(0), "closed pipe: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let err = String::from_utf8_lossy(&full.stderr);
    assert_eq!(full.status.code(), Some(1), "full disk: {err}");
    assert!(err.contains("cannot write the output"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
