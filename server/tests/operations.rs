//! What operators run: `/metrics` parsed as Prometheus text with its counters moving
//! during a call, `/readyz`, the metrics listener of its own, JSON logs with request
//! ids and audit lines, no secret in any log line, and a media port one server holds
//! refused to a second.
mod common;

use std::collections::HashMap;
use std::io::BufRead;
use std::sync::Arc;
use std::time::Duration;

use common::light::Counts;
use common::{test_config, TestServer};
use convene_load::pool::{Pool, SendTrack};
use serde_json::{json, Value};

/// Every sample of the text format, by name and labels (`name{a="b"}` as written).
fn parse(text: &str) -> HashMap<String, f64> {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text format");
    scrape
        .samples
        .into_iter()
        .filter_map(|s| {
            let v = match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => return None,
            };
            let mut labels: Vec<String> = s
                .labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect();
            labels.sort();
            let key = if labels.is_empty() {
                s.metric
            } else {
                format!("{}{{{}}}", s.metric, labels.join(","))
            };
            Some((key, v))
        })
        .collect()
}

async fn scrape(s: &TestServer) -> HashMap<String, f64> {
    let r = s
        .req(reqwest::Method::GET, "/metrics")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    parse(&r.text().await.unwrap())
}

fn get(m: &HashMap<String, f64>, key: &str) -> f64 {
    m.get(key).copied().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_during_a_call() {
    let s = TestServer::start().await;
    let r = s.http().get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 401, "the admin key is needed");
    s.room("r", &[("a", "presenter"), ("b", "attendee")]).await;
    let before = scrape(&s).await;
    assert_eq!(get(&before, "convene_rooms"), 1.0);
    assert!(get(&before, "process_open_fds") > 0.0, "process metrics");

    let pool = Pool::start(1, 7).unwrap();
    let counts = Arc::new(Counts::default());
    let a = s
        .light_member(&pool, "r", "a", vec![SendTrack::video(50)], false, None)
        .await;
    let b = s
        .light_member(&pool, "r", "b", vec![], true, Some(counts.clone()))
        .await;
    let id = b.subscribe.as_ref().unwrap().id;
    tokio::time::timeout(Duration::from_secs(20), async {
        while counts.packets(id) < 50 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("media flows");
    let refused = s.ws("not.a.token", None).await.err().unwrap();
    assert_eq!(refused.status, 401);
    let during = scrape(&s).await;
    assert_eq!(get(&during, "convene_live_sessions"), 1.0);
    assert_eq!(get(&during, "convene_live_members"), 2.0);
    assert!(get(&during, "convene_joins_total{result=\"joined\"}") >= 2.0);
    assert!(get(&during, "convene_joins_total{result=\"Unauthenticated\"}") >= 1.0);
    for key in [
        "convene_signaling_frames_received_total",
        "convene_signaling_frames_sent_total",
        "convene_media_total{what=\"forwarded_packets\"}",
        "convene_media_total{what=\"forwarded_payload_bytes\"}",
    ] {
        assert!(
            get(&during, key) > get(&before, key),
            "{key}: {} then {}",
            get(&before, key),
            get(&during, key)
        );
    }
    assert!(get(&during, "convene_media_open{what=\"peer_connections\"}") >= 2.0);
    let created = "convene_http_request_duration_seconds_count{method=\"POST\",route=\"/v1/rooms\",status=\"2xx\"}";
    assert_eq!(get(&during, created), 1.0, "HTTP latency by route");
    drop(a);
    drop(b);
}

#[tokio::test]
async fn readyz_says_when_the_store_and_media_are_up() {
    let s = TestServer::start().await;
    let r = s.http().get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, json!({"ready": true, "store": "ok", "media": "ok"}));
}

#[tokio::test]
async fn metrics_can_have_a_listener_of_their_own() {
    let tmp = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let mut c = test_config(tmp.path());
    c.metrics_listen = Some(format!("127.0.0.1:{port}").parse().unwrap());
    let s = TestServer::start_with(c).await;
    s.room("r", &[]).await;
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        get(&parse(&text), "convene_rooms"),
        1.0,
        "no key needed there"
    );
    s.stop().await;
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "it stops with the server"
    );
}

/// Runs the real binary with JSON logs at debug level, does what admins and members do
/// (including a wrong admin key and a join with a token in the URL), and reads the logs.
#[tokio::test]
async fn logs_are_json_with_request_ids_and_audit_lines_and_hold_no_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let key = "ck_admin_logs_test_0123456789abcdef";
    let log_path = tmp.path().join("server.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_convene"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .env("CONVENE_ADMIN_KEY", key)
        .env("CONVENE_MEDIA_IP", "127.0.0.1")
        .env("CONVENE_MEDIA_PORT", "0")
        .env("CONVENE_LOG_FORMAT", "json")
        .env("CONVENE_LOG", "debug")
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the server started");
    let admin =
        |m: reqwest::Method, path: &str| http.request(m, format!("{base}{path}")).bearer_auth(key);
    admin(reqwest::Method::POST, "/v1/rooms")
        .json(&json!({"id": "logged", "participants": {"alice": {}}}))
        .send()
        .await
        .unwrap();
    let minted: Value = admin(reqwest::Method::POST, "/v1/rooms/logged/tokens")
        .json(&json!({"userId": "alice"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = minted["token"].as_str().unwrap().to_string();
    let r = http
        .get(format!("{base}/v1/rooms"))
        .bearer_auth("ck_admin_a_wrong_key_for_the_log")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/v1/rtc?token={token}"))
            .await
            .unwrap();
    use futures_util::{SinkExt, StreamExt};
    ws.next().await;
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        json!({"type": "sendMessage", "text": "hi"})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The diagnosis request the SDK sends after a failed upgrade, token in the query.
    http.get(format!("{base}/v1/rtc?token={token}"))
        .send()
        .await
        .unwrap();
    admin(reqwest::Method::DELETE, "/v1/rooms/logged")
        .send()
        .await
        .unwrap();
    drop(ws);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = child.kill();
    let _ = child.wait();

    let file = std::fs::File::open(&log_path).unwrap();
    let lines: Vec<String> = std::io::BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .collect();
    assert!(lines.len() > 10, "{} log lines", lines.len());
    let signature = token.rsplit('.').next().unwrap();
    for l in &lines {
        let v: Value =
            serde_json::from_str(l).unwrap_or_else(|_| panic!("not one JSON object: {l}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{l}");
        assert!(!l.contains(key), "the admin key was logged: {l}");
        assert!(!l.contains(signature), "a join token was logged: {l}");
    }
    let audit: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["target"] == "convene::audit")
        .collect();
    let writes: Vec<&Value> = audit
        .iter()
        .filter(|v| v["fields"]["message"] == "admin write")
        .collect();
    assert_eq!(writes.len(), 3, "create, mint, delete: {audit:?}");
    for w in &writes {
        assert!(
            w["span"]["id"].as_str().unwrap().starts_with("req_"),
            "the request id: {w}"
        );
    }
    assert_eq!(writes[2]["fields"]["room"], "logged");
    assert_eq!(writes[2]["fields"]["status"], 204);
    assert!(
        audit
            .iter()
            .any(|v| v["fields"]["message"] == "refused a wrong admin key"),
        "the refused key is audited"
    );
}

/// Two servers on one host left on the same media port: the second refuses to start and
/// says why, instead of sharing the port through SO_REUSEPORT and getting half of the
/// first one's media (and giving it half of its own).
#[tokio::test]
async fn a_second_server_on_the_same_media_port_refuses_to_start() {
    let tmp = tempfile::tempdir().unwrap();
    let media = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let start = |name: &str| {
        let port = common::free_port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_convene"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(tmp.path().join(name))
            .env("CONVENE_ADMIN_KEY", "ck_admin_media_port_test_0123456789")
            .env("CONVENE_MEDIA_IP", "127.0.0.1")
            .env("CONVENE_MEDIA_PORT", &media)
            .env("CONVENE_LOG", "warn")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        (port, child)
    };
    let (port, mut first) = start("first");
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..200 {
        if http
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the first server started");

    let (second_port, mut second) = start("second");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let served = http
        .get(format!("http://127.0.0.1:{second_port}/healthz"))
        .send()
        .await
        .is_ok();
    let _ = second.kill();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut err).unwrap();
    let _ = first.kill();
    let _ = first.wait();
    let status = status
        .unwrap_or_else(|| panic!("the second server kept running (served: {served}):\n{err}"));
    assert!(!status.success(), "{err}");
    assert!(
        err.contains(&format!("UDP 127.0.0.1:{media} is already in use"))
            && err.contains("CONVENE_MEDIA_PORT"),
        "the reason is given:\n{err}"
    );
}
