//! A real Redis for the tests: `start()` runs a throwaway redis-server on a free loopback
//! port (no persistence, its files in a temp dir), stopped when the handle drops; if the
//! test process dies first, the kernel kills it (PR_SET_PDEATHSIG).
//!
//! Each test gets a server of its own: pub/sub channels are shared by a server's
//! databases, so tests sharing one would hear each other's nodes.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct TestRedis {
    pub url: String,
    port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl TestRedis {
    /// Kills the server (what is in it is lost, as after a crash without persistence).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn(self.port, self.dir.path());
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub fn start() -> TestRedis {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let child = spawn(port, dir.path());
    TestRedis {
        url: format!("redis://127.0.0.1:{port}"),
        port,
        child,
        dir,
    }
}

fn spawn(port: u16, dir: &std::path::Path) -> Child {
    let mut cmd = Command::new("redis-server");
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: prctl is async-signal-safe and runs just before exec.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap_or_else(|e| {
        panic!(
            "cannot start redis-server ({e}): apt-get install redis-server \
             (scripts/ensure-toolchain.sh does it)"
        )
    });
    // Ready when it accepts a connection.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}
