//! Seats of a `live` or `voice` room as plain data: who sits where, which seats are
//! locked, and who has applied (in `applyToTake` rooms) until when. The session asks
//! here, then tells everyone (`seatsChanged`) and lets the seat decide who may publish.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::ids::UserId;

/// How long an application waits for an answer before it lapses.
pub const APPLICATION_TTL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seat {
    pub user: Option<UserId>,
    pub locked: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Application {
    pub index: Option<u32>,
    pub expires: Instant,
}

/// Why a seat request cannot be met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeatError {
    /// No such seat index.
    NoSuchSeat(u32),
    /// Taken, locked, or (with no index given) none free.
    Unavailable(String),
    /// Already seated (when applying or taking).
    AlreadySeated(u32),
    NotSeated,
    NoApplication,
}

#[derive(Debug, Default)]
pub struct Seats {
    seats: Vec<Seat>,
    applications: BTreeMap<UserId, Application>,
}

impl Seats {
    pub fn new(count: u32) -> Self {
        Self {
            seats: vec![Seat::default(); count as usize],
            applications: BTreeMap::new(),
        }
    }

    pub fn all(&self) -> &[Seat] {
        &self.seats
    }

    pub fn applications(&self) -> &BTreeMap<UserId, Application> {
        &self.applications
    }

    pub fn seat_of(&self, user: &UserId) -> Option<u32> {
        self.seats
            .iter()
            .position(|s| s.user.as_ref() == Some(user))
            .map(|i| i as u32)
    }

    /// Grows or shrinks to `count` seats; members on removed seats stand up (returned).
    pub fn resize(&mut self, count: u32) -> Vec<UserId> {
        let count = count as usize;
        let mut displaced = vec![];
        if count < self.seats.len() {
            displaced.extend(self.seats.drain(count..).filter_map(|s| s.user));
        } else {
            self.seats.resize(count, Seat::default());
        }
        displaced
    }

    /// The seat `index` if it can be sat on, or the first free unlocked one.
    fn free(&self, index: Option<u32>) -> Result<u32, SeatError> {
        match index {
            Some(i) => {
                let seat = self.seats.get(i as usize).ok_or(SeatError::NoSuchSeat(i))?;
                if seat.locked {
                    Err(SeatError::Unavailable(format!("seat {i} is locked")))
                } else if seat.user.is_some() {
                    Err(SeatError::Unavailable(format!("seat {i} is taken")))
                } else {
                    Ok(i)
                }
            }
            None => self
                .seats
                .iter()
                .position(|s| s.user.is_none() && !s.locked)
                .map(|i| i as u32)
                .ok_or_else(|| SeatError::Unavailable("every seat is taken or locked".into())),
        }
    }

    /// Sits `user` down; any application of its lapses.
    pub fn take(&mut self, user: &UserId, index: Option<u32>) -> Result<u32, SeatError> {
        if let Some(i) = self.seat_of(user) {
            return Err(SeatError::AlreadySeated(i));
        }
        let i = self.free(index)?;
        self.seats[i as usize].user = Some(user.clone());
        self.applications.remove(user);
        Ok(i)
    }

    /// Stands `user` up; the seat it left.
    pub fn leave(&mut self, user: &UserId) -> Option<u32> {
        let i = self.seat_of(user)?;
        self.seats[i as usize].user = None;
        Some(i)
    }

    pub fn lock(&mut self, index: u32, locked: bool) -> Result<(), SeatError> {
        let seat = self
            .seats
            .get_mut(index as usize)
            .ok_or(SeatError::NoSuchSeat(index))?;
        seat.locked = locked;
        Ok(())
    }

    /// Moves a seated member to the free seat `index`.
    pub fn move_to(&mut self, user: &UserId, index: u32) -> Result<(), SeatError> {
        let from = self.seat_of(user).ok_or(SeatError::NotSeated)?;
        if from == index {
            return Ok(());
        }
        let to = self.free(Some(index))?;
        self.seats[from as usize].user = None;
        self.seats[to as usize].user = Some(user.clone());
        Ok(())
    }

    pub fn apply(
        &mut self,
        user: &UserId,
        index: Option<u32>,
        now: Instant,
    ) -> Result<(), SeatError> {
        if let Some(i) = self.seat_of(user) {
            return Err(SeatError::AlreadySeated(i));
        }
        if let Some(i) = index {
            self.seats.get(i as usize).ok_or(SeatError::NoSuchSeat(i))?;
        }
        self.applications.insert(
            user.clone(),
            Application {
                index,
                expires: now + APPLICATION_TTL,
            },
        );
        Ok(())
    }

    /// Withdraws `user`'s application; whether there was one.
    pub fn cancel(&mut self, user: &UserId) -> bool {
        self.applications.remove(user).is_some()
    }

    /// Seats an applicant: on the seat it asked for when that is free, else on any.
    pub fn approve(&mut self, user: &UserId) -> Result<u32, SeatError> {
        let app = *self
            .applications
            .get(user)
            .ok_or(SeatError::NoApplication)?;
        let i = self.free(app.index).or_else(|_| self.free(None))?;
        self.seats[i as usize].user = Some(user.clone());
        self.applications.remove(user);
        Ok(i)
    }

    /// Applications whose time ran out at `now`, removed.
    pub fn expire(&mut self, now: Instant) -> Vec<UserId> {
        let gone: Vec<UserId> = self
            .applications
            .iter()
            .filter(|(_, a)| a.expires <= now)
            .map(|(u, _)| u.clone())
            .collect();
        for u in &gone {
            self.applications.remove(u);
        }
        gone
    }

    pub fn next_expiry(&self) -> Option<Instant> {
        self.applications.values().map(|a| a.expires).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }

    #[test]
    fn taking_leaving_locking_and_moving() {
        let mut s = Seats::new(3);
        assert_eq!(s.take(&u("a"), None), Ok(0));
        assert_eq!(s.take(&u("a"), None), Err(SeatError::AlreadySeated(0)));
        assert!(matches!(
            s.take(&u("b"), Some(0)),
            Err(SeatError::Unavailable(_))
        ));
        assert_eq!(s.take(&u("b"), Some(9)), Err(SeatError::NoSuchSeat(9)));
        s.lock(1, true).unwrap();
        assert_eq!(s.take(&u("b"), None), Ok(2), "a locked seat is skipped");
        assert!(matches!(
            s.take(&u("c"), None),
            Err(SeatError::Unavailable(_))
        ));
        assert!(matches!(
            s.move_to(&u("a"), 1),
            Err(SeatError::Unavailable(_))
        ));
        s.lock(1, false).unwrap();
        s.move_to(&u("a"), 1).unwrap();
        assert_eq!(s.seat_of(&u("a")), Some(1));
        assert_eq!(s.leave(&u("a")), Some(1));
        assert_eq!(s.leave(&u("a")), None);
        assert_eq!(s.resize(2), vec![u("b")], "b sat on the seat that went");
        assert_eq!(s.seat_of(&u("b")), None, "b stood up");
    }

    #[test]
    fn applications_are_approved_or_lapse() {
        let t0 = Instant::now();
        let mut s = Seats::new(2);
        s.take(&u("a"), Some(1)).unwrap();
        s.apply(&u("b"), Some(1), t0).unwrap();
        s.apply(&u("c"), None, t0 + Duration::from_secs(30))
            .unwrap();
        assert_eq!(s.next_expiry(), Some(t0 + APPLICATION_TTL));
        // b asked for a taken seat: it gets the free one.
        assert_eq!(s.approve(&u("b")), Ok(0));
        assert!(matches!(s.approve(&u("c")), Err(SeatError::Unavailable(_))));
        assert_eq!(s.approve(&u("d")), Err(SeatError::NoApplication));
        assert_eq!(s.expire(t0 + APPLICATION_TTL), vec![]);
        assert_eq!(
            s.expire(t0 + APPLICATION_TTL + Duration::from_secs(30)),
            vec![u("c")]
        );
        assert_eq!(s.next_expiry(), None);
    }
}
