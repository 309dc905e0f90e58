//! HTTP as an attacker uses it: idle and slowloris connections, many connections from
//! one address, guessed admin keys, slow bodies, long tokens; and what browsers need
//! from every answer (security headers, CORS) and the data dir's permissions.
mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::{assert_error, test_config, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

async fn start(edit: impl FnOnce(&mut convene::config::Config)) -> (TestServer, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = test_config(tmp.path());
    edit(&mut c);
    (TestServer::start_with(c).await, tmp)
}

async fn healthz(s: &TestServer) -> u16 {
    let r = s.http().get(s.url("/healthz")).send().await.unwrap();
    r.status().as_u16()
}

async fn connect_from(source: IpAddr, to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::new(source, 0)).unwrap();
    s.connect(to).await.unwrap()
}

/// Reads until the server closes the connection; how long that took, or None when
/// it was still open after `limit`.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at((start + limit).into(), s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => continue, // e.g. a 408 before the close
        }
    }
}

#[tokio::test]
async fn idle_and_slowloris_connections_are_closed_while_others_are_served() {
    let (s, _tmp) = start(|c| c.http_header_timeout = Duration::from_secs(1)).await;
    let mut idle = vec![];
    for _ in 0..300 {
        idle.push(TcpStream::connect(s.addr).await.unwrap());
    }
    // Slowloris: a header byte every 200 ms, never finishing the head.
    let mut slow = vec![];
    for _ in 0..20 {
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(c);
    }
    let trickle = tokio::spawn(async move {
        for _ in 0..15 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            for c in slow.iter_mut() {
                let _ = c.write_all(b"X").await;
            }
        }
        slow
    });
    // Everyone else is served meanwhile.
    assert_eq!(healthz(&s).await, 200);
    // A keep-alive connection that goes quiet after a request is closed too.
    let mut kept = TcpStream::connect(s.addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = kept.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    for c in idle.iter_mut().chain(std::iter::once(&mut kept)) {
        let t = closed_within(c, Duration::from_secs(4)).await;
        assert!(t.is_some(), "an idle connection stayed open");
    }
    let mut slow = trickle.await.unwrap();
    for c in slow.iter_mut() {
        assert!(
            closed_within(c, Duration::from_secs(2)).await.is_some(),
            "a slowloris connection stayed open"
        );
    }
    assert_eq!(healthz(&s).await, 200);
}

#[tokio::test]
async fn one_address_may_hold_only_so_many_connections() {
    let (s, _tmp) = start(|c| c.max_connections_per_ip = 5).await;
    // The test client may hold a pooled connection too: of 7 more, at most 5 stay.
    let mut conns = vec![];
    for _ in 0..7 {
        conns.push(TcpStream::connect(s.addr).await.unwrap());
    }
    let mut held = vec![];
    let mut refused = 0;
    for mut c in conns {
        match closed_within(&mut c, Duration::from_millis(500)).await {
            Some(_) => refused += 1,
            None => held.push(c),
        }
    }
    assert!(
        refused >= 2 && held.len() <= 5,
        "{refused} refused, {} held",
        held.len()
    );
    // Another address is not affected.
    let mut other = connect_from("127.0.0.2".parse().unwrap(), s.addr).await;
    other
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    other.read_to_string(&mut text).await.unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    // Closing frees the slots.
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fresh = reqwest::Client::new();
    let r = fresh.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn guessing_the_admin_key_is_slowed_per_address_and_logged() {
    let (s, _tmp) = start(|_| {}).await;
    let guess = |client: &reqwest::Client, key: &str| {
        client.get(s.url("/v1/rooms")).bearer_auth(key).send()
    };
    let here = reqwest::Client::new();
    for i in 0..10 {
        let r = guess(&here, &format!("wrong-key-{i}")).await.unwrap();
        assert_eq!(r.status(), 401, "guess {i}");
    }
    let r = guess(&here, "wrong-key-again").await.unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=10).contains(&retry), "Retry-After {retry}");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_error(429, &body, 429, "RateLimited", None);
    // While limited, even the right key from that address waits: otherwise a 429
    // would tell a guesser which keys are wrong at full speed.
    let r = guess(&here, &s.key).await.unwrap();
    assert_eq!(r.status(), 429);
    // The admin elsewhere is not locked out.
    let elsewhere = reqwest::Client::builder()
        .local_address("127.0.0.3".parse::<IpAddr>().unwrap())
        .build()
        .unwrap();
    let r = guess(&elsewhere, &s.key).await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_body_sent_too_slowly_gets_the_timeout_envelope() {
    let (s, _tmp) = start(|c| c.http_request_timeout = Duration::from_secs(1)).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "POST /v1/rooms HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{",
        s.key
    );
    c.write_all(head.as_bytes()).await.unwrap();
    let mut text = String::new();
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    while !text.contains("}}") {
        let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
            .await
            .expect("no answer to a stalled body")
            .unwrap();
        if n == 0 {
            break;
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"RequestTimeout\""), "{text}");
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn overlong_tokens_are_refused_clearly() {
    let (s, _tmp) = start(|_| {}).await;
    let long = "a".repeat(10_000);
    let r = s
        .http()
        .get(s.url(&format!("/v1/rtc?token={long}")))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_error(status, &body, 401, "Unauthenticated", Some("token"));
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("longer"),
        "{body}"
    );
    // Past 64 KiB the request line is refused by the HTTP layer itself (documented;
    // the SDK refuses such tokens before sending them).
    let huge = "a".repeat(100_000);
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let req = format!("GET /v1/rtc?token={huge} HTTP/1.1\r\nHost: x\r\n\r\n");
    c.write_all(req.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    c.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 414");
}

fn www_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../www")
}

#[tokio::test]
async fn pages_and_answers_carry_security_headers() {
    let (s, _tmp) = start(|c| c.www_dir = Some(www_dir())).await;
    let get = |path: &'static str| s.http().get(s.url(path)).send();
    for path in [
        "/",
        "/join",
        "/admin",
        "/admin.html",
        "/examples/hello.html",
    ] {
        let r = get(path).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("'wasm-unsafe-eval'"), "{path}: {csp}");
        let framing = if path.starts_with("/admin") {
            "frame-ancestors 'none'"
        } else {
            "frame-ancestors 'self'"
        };
        assert!(csp.ends_with(framing), "{path}: {csp}");
        if !path.starts_with("/examples") {
            assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        }
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
    }
    // The API too: join links carry tokens, so no page leaks them onward.
    let r = s
        .req(reqwest::Method::GET, "/v1/rooms")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
}

/// Pages and the SDK go out compressed, revalidated, with an icon.
#[tokio::test]
async fn pages_are_compressed_revalidated_and_have_an_icon() {
    let (s, _tmp) = start(|c| c.www_dir = Some(www_dir())).await;
    let on_disk = std::fs::read(www_dir().join("join.js")).unwrap();
    for (asked, got) in [
        ("br", Some("br")),
        ("gzip", Some("gzip")),
        ("identity", None),
    ] {
        let r = s
            .http()
            .get(s.url("/join.js"))
            .header("Accept-Encoding", asked)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let h = r.headers().clone();
        assert_eq!(h["cache-control"], "no-cache", "{asked}");
        assert_eq!(
            h.get("content-encoding").map(|v| v.to_str().unwrap()),
            got,
            "{asked}"
        );
        let body = r.bytes().await.unwrap();
        if got.is_some() {
            assert!(
                body.len() * 2 < on_disk.len(),
                "{asked}: {} bytes",
                body.len()
            );
        } else {
            assert_eq!(body.as_ref(), on_disk.as_slice());
        }
    }
    // Revalidation: unchanged since the browser's copy gives a 304 with no body.
    let r = s.http().get(s.url("/join.js")).send().await.unwrap();
    let modified = r.headers()["last-modified"].clone();
    let r = s
        .http()
        .get(s.url("/join.js"))
        .header("If-Modified-Since", modified)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    for path in ["/favicon.ico", "/favicon.svg"] {
        let r = s.http().get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], "image/svg+xml", "{path}");
    }
}

#[tokio::test]
async fn sdk_routes_answer_other_origins_and_admin_routes_do_not() {
    let (s, _tmp) = start(|_| {}).await;
    let r = s
        .http()
        .get(s.url("/v1/rtc?token=x.y.z"))
        .header("Origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let r = s
        .http()
        .request(reqwest::Method::OPTIONS, s.url("/v1/rtc"))
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let r = s
        .req(reqwest::Method::GET, "/v1/rooms")
        .header("Origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn allowed_origins_are_enforced_for_cors_and_the_websocket() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let (s, _tmp) = start(|c| {
        c.allowed_origins = convene::config::Origins::Only(vec!["https://a.example".into()])
    })
    .await;
    let cors = |origin: &'static str| {
        s.http()
            .get(s.url("/v1/rtc?token=x.y.z"))
            .header("Origin", origin)
            .send()
    };
    let r = cors("https://a.example").await.unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://a.example"
    );
    let r = cors("https://b.example").await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());

    s.room("r", &[("a", "attendee")]).await;
    let token = s.token("r", "a").await;
    let upgrade = |origin: String| {
        let mut req = format!("ws://{}/v1/rtc?token={token}", s.addr)
            .into_client_request()
            .unwrap();
        req.headers_mut().insert("Origin", origin.parse().unwrap());
        tokio_tungstenite::connect_async(req)
    };
    match upgrade("https://b.example".into()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let body: serde_json::Value =
                serde_json::from_slice(resp.body().as_ref().unwrap()).unwrap();
            assert_error(
                resp.status().as_u16(),
                &body,
                403,
                "PermissionDenied",
                Some("Origin"),
            );
        }
        other => panic!("a page on another origin joined: {:?}", other.map(|_| ())),
    }
    // This server's own pages, and the allowed origin, join.
    for origin in [format!("http://{}", s.addr), "https://a.example".into()] {
        let (mut ws, _) = upgrade(origin).await.expect("allowed origin refused");
        use futures_util::StreamExt;
        let first = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(first.to_text().unwrap().contains("\"joined\""));
    }
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_dir_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    // An existing database from an older version, readable by all, is tightened too.
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let s = TestServer::start_with(test_config(&dir)).await;
    s.room("r", &[]).await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    for f in [
        "convene.db",
        "convene.db-wal",
        "convene.db-shm",
        "admin.key",
        "token.key",
    ] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
}
