//! The relay's own interceptors only change what a connection reads (what it writes
//! passes untouched): each is a `ReadStep` in this one interceptor shell, so the queues
//! and the `rtc` traits are written once.

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Interceptor, StreamInfo, TaggedPacket};
use rtc::sansio::Protocol;

/// What an interceptor of the relay does to a packet it reads.
pub trait ReadStep: Send + Sync {
    /// Hands on what `msg` becomes (nothing, itself, or several packets) to `out`.
    fn read(&mut self, msg: TaggedPacket, out: &mut VecDeque<TaggedPacket>);
    fn bind_remote_stream(&mut self, _: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _: &StreamInfo) {}
}

/// An interceptor doing `S` to what it reads.
#[derive(Default)]
pub struct OnRead<S> {
    step: S,
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl<S: ReadStep + Default> OnRead<S> {
    pub fn new() -> Self {
        Self {
            step: S::default(),
            read: VecDeque::new(),
            write: VecDeque::new(),
        }
    }
}

impl<S: ReadStep> Protocol<TaggedPacket, TaggedPacket, ()> for OnRead<S> {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.step.read(msg, &mut self.read);
        Ok(())
    }
    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }
    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write.push_back(msg);
        Ok(())
    }
    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }
}

impl<S: ReadStep> Interceptor for OnRead<S> {
    fn bind_local_stream(&mut self, _: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _: &StreamInfo) {}
    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        self.step.bind_remote_stream(info);
    }
    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        self.step.unbind_remote_stream(info);
    }
}
