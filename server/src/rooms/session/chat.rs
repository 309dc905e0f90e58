//! Room chat: the room's switch, the size limit and each sender's allowance.

use convene_protocol::signal::{ServerMessage, MAX_CHAT_BYTES};
use convene_protocol::ErrorCode;

use super::output::Output;
use super::Session;
use crate::clock::Now;
use crate::ids::UserId;
use crate::rate::Rate;

/// Chat allowance per member: a burst of 10, refilled at 5 messages a second.
pub const CHAT_RATE: Rate = Rate::new(10.0, 5.0);

impl Session {
    pub(super) fn chat(&mut self, user: &UserId, text: String, now: Now) {
        if self.room.is_message_disabled {
            return self.refuse(
                user,
                ErrorCode::PermissionDenied,
                "messages are disabled in this room",
            );
        }
        if text.is_empty() || text.len() > MAX_CHAT_BYTES {
            return self.refuse(
                user,
                ErrorCode::InvalidParameter,
                format!("a message must be 1 to {MAX_CHAT_BYTES} bytes"),
            );
        }
        let Some(m) = self.members.get_mut(user) else {
            return;
        };
        if !m.chat.take(now.mono) {
            return self.refuse(
                user,
                ErrorCode::RateLimited,
                format!(
                    "too many messages; at most {} per second",
                    CHAT_RATE.per_second
                ),
            );
        }
        self.out.push(Output::Broadcast(ServerMessage::Message {
            from: user.to_string(),
            text,
            sent_at: now.wall.to_rfc3339(),
        }));
    }
}
