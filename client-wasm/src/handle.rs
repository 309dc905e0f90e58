//! Another handle to the same JS object.
//!
//! web-sys's `MediaStream` and `MediaStreamTrack` have JS methods named `clone`, and
//! inherent methods win over Rust's `Clone` trait: `stream.clone()` is
//! `MediaStream.prototype.clone()`, a *new* stream holding new tracks. That made the
//! local preview a copy frozen at the moment it was read (empty at first), a
//! `trackRemoved` payload carry a different track object than its `trackAdded`, and
//! stopping a kept "clone" of a camera track leave the camera on. Code that means "the
//! same stream or track" calls `same(&x)`.

/// `Clone::clone`: the same JS object, never a JS-side copy.
pub fn same<T: Clone>(x: &T) -> T {
    Clone::clone(x)
}
