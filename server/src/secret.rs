//! Secrets (the admin key, the token signing key) whose `Debug` never prints them,
//! created on first start and kept in the data directory.

use std::fmt;
use std::io::Write;
use std::path::Path;

use subtle::ConstantTimeEq;

#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares in constant time so a caller cannot learn the key byte by byte from timing.
    pub fn matches(&self, candidate: &str) -> bool {
        self.0.as_bytes().ct_eq(candidate.as_bytes()).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Reads the secret kept at `path`, or writes a new random one there (mode 0600).
/// Returns whether it was created, so the caller can tell the admin once.
pub fn load_or_create(path: &Path, prefix: &str) -> std::io::Result<(Secret, bool)> {
    match std::fs::read_to_string(path) {
        Ok(s) if !s.trim().is_empty() => return Ok((Secret::new(s.trim()), false)),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let value = format!("{prefix}{}", crate::ids::random_token(40));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(value.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    Ok((Secret::new(value), true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(s.matches("hunter2"));
        assert!(!s.matches("hunter3"));
        assert!(!s.matches(""));
    }

    #[test]
    fn created_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let (a, created) = load_or_create(&path, "ck_").unwrap();
        assert!(created);
        let (b, created) = load_or_create(&path, "ck_").unwrap();
        assert!(!created);
        assert_eq!(a.expose(), b.expose());
        assert!(a.expose().starts_with("ck_"));
    }
}
