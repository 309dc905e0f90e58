//! A real PostgreSQL for the tests: one throwaway cluster per test process (initdb in a
//! temp dir, `postgres` on a free loopback port), and a fresh database per caller.
//! The cluster is stopped when the test process ends, however it ends: the postmaster
//! gets SIGQUIT from the kernel when the thread that started it dies (PR_SET_PDEATHSIG),
//! and that thread lives as long as the process. Data dirs of dead processes are removed
//! by the next run.
//!
//! `CONVENE_TEST_POSTGRES=postgres://user@host:port` uses a server of your own instead
//! (the user must be allowed to create databases).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

static SERVER: OnceLock<Result<String, String>> = OnceLock::new();

/// A URL of a new, empty database on the test PostgreSQL.
pub async fn database_url() -> String {
    let base = match SERVER.get_or_init(|| match std::env::var("CONVENE_TEST_POSTGRES") {
        Ok(url) if !url.trim().is_empty() => Ok(url.trim().trim_end_matches('/').to_string()),
        _ => start_cluster(),
    }) {
        Ok(base) => base.clone(),
        Err(why) => panic!("no PostgreSQL for the tests: {why}"),
    };
    let name = format!("t_{}", convene::ids::random_token(12).to_lowercase());
    let admin = connect(&format!("{base}/postgres")).await;
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create a test database");
    format!("{base}/{name}")
}

/// Connects, retrying while the server starts up (it accepts TCP before it is ready).
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match tokio_postgres::connect(url, tokio_postgres::NoTls).await {
            Ok((client, conn)) => {
                tokio::spawn(conn);
                return client;
            }
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("cannot connect to the test PostgreSQL: {e}"),
        }
    }
}

/// The directory of `initdb` and `postgres`: Debian's newest version, else the PATH.
fn bin_dir() -> Result<PathBuf, String> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").is_file())
        .collect();
    found.sort_by_key(|b| {
        b.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    if let Some(b) = found.pop() {
        return Ok(b);
    }
    let which = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        .map_err(|e| e.to_string())?;
    let path = String::from_utf8_lossy(&which.stdout).trim().to_string();
    match Path::new(&path).parent() {
        Some(dir) if !path.is_empty() => Ok(dir.to_path_buf()),
        _ => Err("PostgreSQL is not installed (apt-get install postgresql; \
                  scripts/ensure-toolchain.sh does it)"
            .into()),
    }
}

/// PostgreSQL refuses to run as root: as root, its processes run as `postgres`.
fn run_as() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, "postgres"]).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Removes data dirs left by test processes that are gone.
fn remove_stale(tmp: &Path) {
    for e in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(pid) = name
            .strip_prefix("convene-pg-")
            .and_then(|r| r.split('-').next())
        {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

fn start_cluster() -> Result<String, String> {
    let bin = bin_dir()?;
    let tmp = std::env::temp_dir();
    remove_stale(&tmp);
    let dir = tmp.join(format!(
        "convene-pg-{}-{}",
        std::process::id(),
        convene::ids::random_token(6)
    ));
    std::fs::create_dir(&dir).map_err(|e| e.to_string())?;
    let user = run_as();
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
    }
    let data = dir.join("data");
    let mut initdb = Command::new(bin.join("initdb"));
    initdb.arg("-D").arg(&data).args([
        "-U",
        "convene",
        "-A",
        "trust",
        "-E",
        "UTF8",
        "--locale=C",
        "--no-sync",
    ]);
    if let Some((uid, gid)) = user {
        use std::os::unix::process::CommandExt;
        initdb.uid(uid).gid(gid);
    }
    let out = initdb.output().map_err(|e| format!("initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let port = free_port();
    let (tx, rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let postgres = bin.join("postgres");
    let socket_dir = dir.clone();
    // The postmaster's parent-death signal is tied to this thread, which never ends.
    std::thread::Builder::new()
        .name("test-postgres".into())
        .spawn(move || {
            use std::os::unix::process::CommandExt;
            let mut cmd = Command::new(postgres);
            cmd.arg("-D")
                .arg(&data)
                .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
                .arg("-c")
                .arg(format!("unix_socket_directories={}", socket_dir.display()))
                .args(["-c", "max_connections=200"])
                .stdout(std::process::Stdio::null())
                .stderr(
                    std::fs::File::create(socket_dir.join("log"))
                        .map_or_else(|_| std::process::Stdio::null(), std::process::Stdio::from),
                );
            if let Some((uid, gid)) = user {
                cmd.uid(uid).gid(gid);
            }
            // SAFETY: prctl is async-signal-safe; it runs after the uid change (which
            // would clear it) and before exec.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            match cmd.spawn() {
                Ok(_child) => {
                    let _ = tx.send(Ok(()));
                    loop {
                        std::thread::park();
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(format!("postgres: {e}")));
                }
            }
        })
        .map_err(|e| e.to_string())?;
    rx.recv().map_err(|e| e.to_string())??;
    Ok(format!("postgres://convene@127.0.0.1:{port}"))
}
