//! What a session asks its driver to do. The session owns no socket and no channel: it
//! queues these, and the driver carries them out in order after every input.

use std::collections::{BTreeMap, VecDeque};

use convene_protocol::signal::ServerMessage;

use crate::ids::{ConnId, UserId};
use crate::model::event::NewEvent;
use crate::sfu::port::{Gates, MediaKind, MediaSignal};

#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// One frame to one connection.
    Send {
        to: ConnId,
        msg: ServerMessage,
    },
    /// One frame to every connection that keeps up (serialized once by the driver).
    Broadcast(ServerMessage),
    /// A full list to connections that fell behind; replaces what they missed.
    Resync {
        to: Vec<ConnId>,
        msg: ServerMessage,
    },
    /// This connection is no longer the member's: send `last` (if any), then close.
    Close {
        conn: ConnId,
        last: Option<ServerMessage>,
    },
    Media(MediaCommand),
    /// Something a webhook reports (a join, a leave, a track, the session's start or end).
    Event(NewEvent),
    /// Store these room attribute changes (a value, or `None` to remove); the stored
    /// room comes back as `Input::RoomUpdated`.
    SaveRoomAttributes(BTreeMap<String, Option<String>>),
    /// The session is over; nothing more will come out of it.
    Ended,
}

/// What the media relay must do (see `sfu::port::RoomMedia`).
#[derive(Debug, Clone, PartialEq)]
pub enum MediaCommand {
    Signal {
        user: UserId,
        may_publish: bool,
        signal: MediaSignal,
    },
    Subscribe(UserId),
    SetGates(UserId, Gates),
    /// The member left, or a new client replaced it: its connections go.
    RemoveMember(UserId),
    /// Whether `viewer` shows `owner`'s track of `kind` now (only what is shown is sent).
    SetViewing {
        viewer: UserId,
        owner: UserId,
        kind: MediaKind,
        shown: bool,
    },
    /// How tall `viewer` shows `owner`'s camera (device pixels): of one sent in
    /// simulcast, the smallest layer at least that tall is sent.
    FitVideo {
        viewer: UserId,
        owner: UserId,
        height: u32,
    },
}

/// The queue of outputs, drained by `Session::poll_output`.
#[derive(Debug, Default)]
pub struct Outputs(VecDeque<Output>);

impl Outputs {
    pub fn push(&mut self, o: Output) {
        self.0.push_back(o);
    }

    pub fn send(&mut self, to: Option<ConnId>, msg: ServerMessage) {
        if let Some(to) = to {
            self.push(Output::Send { to, msg });
        }
    }

    pub fn media(&mut self, cmd: MediaCommand) {
        self.push(Output::Media(cmd));
    }

    pub fn pop(&mut self) -> Option<Output> {
        self.0.pop_front()
    }
}
