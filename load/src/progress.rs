//! Progress bars on stderr, drawn by `indicatif`. On a terminal a bar redraws one line;
//! when stderr is not a terminal (a log, CI) indicatif draws nothing, so a line per 10 %
//! is printed instead and logs stay readable.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    bar: ProgressBar,
    label: String,
    started: Instant,
    /// The last tenth printed (when not a terminal).
    tenth: AtomicU64,
    tty: bool,
}

impl Progress {
    pub fn new(label: &str, total: usize) -> Self {
        let total = total.max(1) as u64;
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("  {msg} [{bar:30}] {pos}/{len} {elapsed_precise}")
                .expect("a valid template")
                .progress_chars("#>-"),
        );
        bar.set_message(label.to_string());
        let p = Self {
            bar,
            label: label.to_string(),
            started: Instant::now(),
            tenth: AtomicU64::new(u64::MAX),
            tty: std::io::stderr().is_terminal(),
        };
        p.log_line();
        p
    }

    pub fn inc(&self) {
        self.bar.inc(1);
        self.log_line();
    }

    /// Ends the bar's line.
    pub fn finish(&self) {
        self.bar.finish();
    }

    fn log_line(&self) {
        if self.tty {
            return;
        }
        let (done, total) = (self.bar.position(), self.bar.length().unwrap_or(1).max(1));
        let tenth = done * 10 / total;
        if self.tenth.swap(tenth, Ordering::Relaxed) != tenth {
            eprintln!(
                "  {} {:>3}% ({done}/{total}) {:.1}s",
                self.label,
                tenth * 10,
                self.started.elapsed().as_secs_f64()
            );
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
