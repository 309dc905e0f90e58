//! Who sends what: each member's audio, video and screen switches, the role that limits
//! them (one check, `Role::may_publish`), mutes by moderators, and the gates that tell
//! the relay what it may forward.

use convene_protocol::signal::ServerMessage;
use convene_protocol::ErrorCode;

use super::output::{MediaCommand, Output};
use super::Session;
use crate::ids::UserId;
use crate::model::event::EventType;
use crate::model::{MediaKind, MediaSet, Role};
use crate::sfu::port::MediaEvent;

impl Session {
    /// `setMedia` from the member itself; refused whole when the role forbids a kind.
    pub(super) fn set_media(
        &mut self,
        user: &UserId,
        audio: Option<bool>,
        video: Option<bool>,
        screen: Option<bool>,
    ) {
        let Some(m) = self.members.get(user) else {
            return;
        };
        let current = m.media;
        let asked = [
            (MediaKind::Audio, audio),
            (MediaKind::Video, video),
            (MediaKind::Screen, screen),
        ];
        if let Some((kind, _)) = asked
            .iter()
            .find(|(k, on)| *on == Some(true) && !self.may_publish(user, *k))
        {
            let why = self.publish_refusal(user, *kind);
            return self.refuse(user, ErrorCode::PermissionDenied, why);
        }
        let mut next = current;
        for (kind, on) in asked {
            if let Some(on) = on {
                next.set(kind, on);
                self.turned_off(user, kind, !on);
            }
        }
        self.update_media(user, next, None);
    }

    /// `setViewing`: whether `viewer` shows `target`'s camera and screen now, and how
    /// tall the camera. A target no longer in the room is no error (the page's view of
    /// the room lags it).
    pub(super) fn set_viewing(
        &mut self,
        viewer: &UserId,
        target: &str,
        (video, screen, video_height): (Option<bool>, Option<bool>, Option<u32>),
    ) {
        if !self.config.media {
            return;
        }
        let Some(owner) = self.members.find(target).cloned() else {
            return;
        };
        for (kind, shown) in [(MediaKind::Video, video), (MediaKind::Screen, screen)] {
            if let Some(shown) = shown {
                self.out.media(MediaCommand::SetViewing {
                    viewer: viewer.clone(),
                    owner: owner.clone(),
                    kind,
                    shown,
                });
            }
        }
        if let Some(height) = video_height {
            self.out.media(MediaCommand::FitVideo {
                viewer: viewer.clone(),
                owner,
                height,
            });
        }
    }

    fn turned_off(&mut self, user: &UserId, kind: MediaKind, off: bool) {
        if let Some(m) = self.members.get_mut(user) {
            m.turned_off.set(kind, off);
        }
    }

    /// A moderator turns another member's media off.
    pub(super) fn mute(
        &mut self,
        by: &UserId,
        target: &str,
        audio: bool,
        video: bool,
        screen: bool,
    ) {
        let allowed = self
            .members
            .get(by)
            .is_some_and(|m| m.init.role.capabilities().moderate);
        if !allowed {
            return self.refuse(
                by,
                ErrorCode::PermissionDenied,
                "only a presenter may mute others",
            );
        }
        let Some(uid) = self.members.find(target).cloned() else {
            return self.refuse(
                by,
                ErrorCode::NotInRoom,
                format!("'{target}' is not in the room"),
            );
        };
        let before = self.members.get(&uid).map(|m| m.media).unwrap_or_default();
        let after = MediaSet {
            audio: before.audio && !audio,
            video: before.video && !video,
            screen: before.screen && !screen,
        };
        for (kind, muted) in [
            (MediaKind::Audio, audio),
            (MediaKind::Video, video),
            (MediaKind::Screen, screen),
        ] {
            if muted {
                self.turned_off(&uid, kind, true);
            }
        }
        self.update_media(&uid, after, Some(format!("mutedBy:{by}")));
    }

    /// What the relay reports.
    pub(super) fn media_event(&mut self, ev: MediaEvent) {
        match ev {
            MediaEvent::Send { to, msg } => self.send_to(&to, *msg),
            // The relay saw a member start or stop sending a track: its status follows,
            // as far as its role allows (a forbidden track is never forwarded nor shown),
            // and a track starting does not undo the member's own "off".
            MediaEvent::Published { member, kind, on } => {
                let Some(m) = self.members.get(&member) else {
                    return;
                };
                let current = m.media;
                if !self.may_publish(&member, kind) || (on && m.turned_off.get(kind)) {
                    return;
                }
                let mut next = current;
                next.set(kind, on);
                self.update_media(&member, next, None);
            }
            MediaEvent::AudioLevel { member, dbov } => self.audio_level(&member, dbov),
            MediaEvent::LinkQuality { member, pc, window } => {
                self.link_quality(&member, pc, window)
            }
            // Between nodes' relays: the driver's business.
            MediaEvent::Relay { .. } => {}
        }
    }

    /// The admin changed a member's role: tell it its new rights, and stop what the new
    /// role may not publish.
    pub(super) fn change_role(&mut self, user: &UserId, role: Role) {
        let Some(m) = self.members.get_mut(user) else {
            return;
        };
        if m.init.role == role {
            return;
        }
        m.init.role = role;
        if role.publishes() {
            // Members who may publish are always announced.
            self.members.announce(user);
        }
        self.rights_changed(user, "roleChanged");
        self.members.touch(user);
    }

    /// A new client (a reload, another tab) replaced the member's old one: its media
    /// starts off, others see that, and the relay drops the old connections so the new
    /// offer and subscribe start afresh.
    pub(super) fn replace_client(&mut self, user: &UserId) {
        let media = self.members.get(user).map(|m| m.media).unwrap_or_default();
        if let Some(m) = self.members.get_mut(user) {
            // The new client starts afresh: what it publishes is on.
            m.turned_off = MediaSet::default();
        }
        if media != MediaSet::default() {
            if let Some(m) = self.members.get_mut(user) {
                m.media = MediaSet::default();
            }
            self.gates_dirty.insert(user.clone());
            self.members.touch(user);
        }
        self.out.media(MediaCommand::RemoveMember(user.clone()));
    }

    /// Sets a member's media; when it changed, everyone is told and the gates follow.
    pub(super) fn update_media(&mut self, user: &UserId, next: MediaSet, reason: Option<String>) {
        let Some(m) = self.members.get_mut(user) else {
            return;
        };
        if m.media == next {
            return;
        }
        let before = m.media;
        m.media = next;
        if !next.audio {
            self.speakers.forget(user);
        }
        if self.seats.seat_of(user).is_some() {
            self.seats_dirty = true;
        }
        for kind in MediaKind::ALL {
            if before.get(kind) != next.get(kind) {
                self.report_track(user, kind, next.get(kind));
            }
        }
        self.gates_dirty.insert(user.clone());
        self.out
            .push(Output::Broadcast(ServerMessage::MediaChanged {
                participant_id: user.to_string(),
                audio: next.audio,
                video: next.video,
                screen: next.screen,
                reason,
            }));
    }

    /// A member's track started or stopped, for webhooks.
    pub(super) fn report_track(&mut self, user: &UserId, kind: MediaKind, on: bool) {
        let event = if on {
            EventType::TrackPublished
        } else {
            EventType::TrackUnpublished
        };
        self.report(
            event,
            serde_json::json!({ "userId": user.as_str(), "kind": kind.as_str() }),
        );
    }

    /// Which of each changed member's tracks may be forwarded now: its role allows the
    /// kind and its own switch for it is on.
    pub(super) fn emit_gates(&mut self) {
        for user in std::mem::take(&mut self.gates_dirty) {
            if let Some(m) = self.members.get(&user) {
                let gates = m.media.limited_to(|k| self.may_publish(&user, k));
                self.out.media(MediaCommand::SetGates(user, gates));
            }
        }
    }
}
