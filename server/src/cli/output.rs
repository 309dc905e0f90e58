//! Everything the CLI prints to stdout goes through here, so a closed pipe
//! (`convene room list --json | head -2`) ends the command quietly instead of
//! panicking the way `println!` does.

use std::io::{ErrorKind, Write};

/// Exit code when stdout cannot be written for a reason other than a closed pipe.
pub const EXIT_OUTPUT_FAILED: i32 = 1;

/// Prints `text` and a newline. A reader that went away ends the process with 0 (it
/// read what it wanted); any other write error ends it with one line on stderr and 1.
pub fn out_line(text: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}").and_then(|()| out.flush()) {
        exit_on(e);
    }
}

/// Prints `text` and a newline on stderr; a stderr that cannot be written is ignored
/// (there is nowhere left to say so).
pub fn err_line(text: impl std::fmt::Display) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

fn exit_on(e: std::io::Error) -> ! {
    if e.kind() == ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    // stderr may be gone too; nothing more to do then.
    let _ = writeln!(std::io::stderr(), "convene: cannot write the output: {e}");
    std::process::exit(EXIT_OUTPUT_FAILED);
}

/// `println!` for the CLI: a closed pipe or a failed write never panics.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cli::output::out_line(format_args!($($arg)*))
    };
}
pub(crate) use say;

/// `eprintln!` for the CLI: a closed stderr never panics.
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::cli::output::err_line(format_args!($($arg)*))
    };
}
pub(crate) use note;
