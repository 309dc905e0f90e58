//! A progress bar on stderr. On a terminal it redraws one line (at most every 100 ms);
//! in a log (stderr not a terminal) it prints a line per 10%, so logs stay readable.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

pub struct Progress {
    label: String,
    total: usize,
    done: AtomicUsize,
    started: Instant,
    /// Milliseconds since `started` of the last redraw (terminal) or the last tenth printed.
    last: AtomicU64,
    tty: bool,
}

impl Progress {
    pub fn new(label: &str, total: usize) -> Self {
        let p = Self {
            label: label.to_string(),
            total: total.max(1),
            done: AtomicUsize::new(0),
            started: Instant::now(),
            last: AtomicU64::new(0),
            tty: std::io::stderr().is_terminal(),
        };
        p.draw(0, true);
        p
    }

    pub fn inc(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        self.draw(done, done == self.total);
    }

    /// Ends the bar's line (a terminal bar otherwise leaves the cursor on it).
    pub fn finish(&self) {
        let done = self.done.load(Ordering::Relaxed);
        if self.tty {
            self.draw(done, true);
            eprintln!();
        }
    }

    fn draw(&self, done: usize, force: bool) {
        let elapsed = self.started.elapsed();
        if self.tty {
            let now = elapsed.as_millis() as u64;
            let last = self.last.load(Ordering::Relaxed);
            if !force && now < last + 100 {
                return;
            }
            self.last.store(now, Ordering::Relaxed);
            const WIDTH: usize = 30;
            let filled = done * WIDTH / self.total;
            let mut err = std::io::stderr().lock();
            let _ = write!(
                err,
                "\r  {} [{}{}] {done}/{} {:.1}s",
                self.label,
                "#".repeat(filled),
                " ".repeat(WIDTH - filled),
                self.total,
                elapsed.as_secs_f64()
            );
            let _ = err.flush();
        } else {
            let tenth = (done * 10 / self.total) as u64;
            if self.last.swap(tenth, Ordering::Relaxed) != tenth || (force && done == 0) {
                eprintln!(
                    "  {} {:>3}% ({done}/{}) {:.1}s",
                    self.label,
                    tenth * 10,
                    self.total,
                    elapsed.as_secs_f64()
                );
            }
        }
    }
}

/// A bar that ticks once a second through a measurement window of `seconds`.
pub async fn countdown(label: &str, seconds: u64) {
    let p = Progress::new(label, seconds as usize);
    for _ in 0..seconds {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        p.inc();
    }
    p.finish();
}
