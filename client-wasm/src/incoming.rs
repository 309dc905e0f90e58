//! What each message from the server does to the call: the roster and its events,
//! our role and devices, media negotiation (handed to `media`), and the end.

use convene_protocol::signal::{ServerMessage, VideoKind};

use crate::driver::{finish, Ctx, Session};
use crate::errors::SdkError;
use crate::events::{self, Emit};
use crate::roster::{Change, Roster};

fn roster_emits(ctx: &mut Ctx, changes: Vec<Change>) -> Vec<Emit> {
    let local = ctx.shared.local_id();
    let mut emits = Vec::new();
    for c in changes {
        match c {
            Change::Joined(p) => {
                emits.push(Emit("participantJoined", events::participant(&p, &local)))
            }
            Change::Left(p) => {
                emits.extend(ctx.media.drop_remote_of(&p.id));
                if let Some(s) = ctx.shared.view.borrow_mut().session.as_mut() {
                    s.qualities.remove(&p.id);
                }
                emits.push(Emit("participantLeft", events::participant(&p, &local)));
            }
            Change::Media {
                participant,
                reason,
            } => emits.push(Emit(
                "mediaChanged",
                events::media_changed(&participant, &local, reason.as_deref()),
            )),
        }
    }
    emits
}

/// Applies a change to the roster in the view (if joined).
fn with_roster(ctx: &Ctx, f: impl FnOnce(&mut Roster) -> Vec<Change>) -> Option<Vec<Change>> {
    let mut view = ctx.shared.view.borrow_mut();
    view.session.as_mut().map(|s| f(&mut s.roster))
}

/// `trackPaused` or `trackResumed`: the server stopped or resumed a video for this
/// page's link.
fn track_event(ctx: &mut Ctx, name: &'static str, participant_id: String, kind: VideoKind) {
    let o = js_sys::Object::new();
    events::set(&o, "participantId", participant_id);
    events::set(&o, "kind", events::value(&kind));
    ctx.emit(vec![Emit(name, o.into())]);
}

pub async fn on_server(ctx: &mut Ctx, msg: ServerMessage) {
    match msg {
        ServerMessage::Joined {
            me,
            room,
            participants,
            audience_count,
            capabilities,
            ice_servers,
            resume,
            resumed,
            seats,
            ..
        } => {
            let role = me.role.clone();
            let changes = {
                let mut view = ctx.shared.view.borrow_mut();
                let changes = match view.session.as_mut() {
                    Some(s) => s.roster.replace(Some(me), participants, audience_count),
                    None => {
                        view.session = Some(Session {
                            roster: Roster::new(me, participants, audience_count),
                            room: room.clone(),
                            role: role.clone(),
                            caps: capabilities,
                            resume: resume.clone(),
                            ice_servers: ice_servers.clone(),
                            seats: vec![],
                            applications: vec![],
                            active_speakers: vec![],
                            qualities: Default::default(),
                        });
                        Vec::new()
                    }
                };
                let s = view.session.as_mut().expect("set above");
                // The server tells the grades as they stand right after `joined`.
                s.qualities.clear();
                s.room = room;
                s.role = role;
                s.caps = capabilities;
                s.resume = resume;
                s.ice_servers = ice_servers;
                s.seats = seats;
                changes
            };
            let restart = ctx.call.joined(resumed);
            ctx.sync_phase();
            let mut emits = roster_emits(ctx, changes);
            emits.push(Emit(
                "stateChanged",
                events::state_changed("connected", None),
            ));
            if restart {
                emits.extend(crate::media::restart(ctx));
            }
            if let Some(w) = ctx.waiter.take() {
                let _ = w.send(Ok(()));
            }
            ctx.emit(emits);
        }
        ServerMessage::ParticipantsChanged {
            added,
            removed,
            updated,
            audience_count,
        } => {
            let Some(changes) = with_roster(ctx, |r| {
                r.apply_delta(added, removed, updated, audience_count)
            }) else {
                return;
            };
            let emits = roster_emits(ctx, changes);
            ctx.emit(emits);
        }
        ServerMessage::Snapshot {
            participants,
            audience_count,
        } => {
            let Some(changes) = with_roster(ctx, |r| r.replace(None, participants, audience_count))
            else {
                return;
            };
            let emits = roster_emits(ctx, changes);
            ctx.emit(emits);
        }
        ServerMessage::MediaChanged {
            participant_id,
            audio,
            video,
            screen,
            reason,
        } => {
            let forced = reason.is_some() && participant_id == ctx.shared.local_id();
            let Some(changes) = with_roster(ctx, |r| {
                r.apply_media(&participant_id, audio, video, screen, reason)
            }) else {
                return;
            };
            if forced {
                // Muted by a presenter or a role change: the devices follow, so what
                // the page shows matches what others get.
                crate::local_tracks::follow_forced(ctx, audio, video, screen).await;
            }
            let emits = roster_emits(ctx, changes);
            ctx.emit(emits);
        }
        ServerMessage::CapabilitiesChanged { role, capabilities } => {
            if let Some(s) = ctx.shared.view.borrow_mut().session.as_mut() {
                s.role = role.clone();
                s.caps = capabilities;
            }
            crate::local_tracks::follow_capabilities(ctx, capabilities).await;
            let o = js_sys::Object::new();
            events::set(&o, "role", role.as_str());
            events::set(&o, "capabilities", events::value(&capabilities));
            ctx.emit(vec![Emit("capabilitiesChanged", o.into())]);
        }
        ServerMessage::Message {
            from,
            text,
            sent_at,
        } => {
            let o = js_sys::Object::new();
            events::set(&o, "from", from.as_str());
            events::set(&o, "text", text.as_str());
            events::set(&o, "sentAt", sent_at.as_str());
            ctx.emit(vec![Emit("message", o.into())]);
        }
        ServerMessage::Offer { pc, sdp } => crate::media::on_offer(ctx, pc, &sdp).await,
        ServerMessage::Answer { pc, sdp } => crate::media::on_answer(ctx, pc, &sdp).await,
        ServerMessage::Candidate {
            pc,
            candidate,
            sdp_mid,
            sdp_m_line_index,
        } => crate::media::on_candidate(ctx, pc, &candidate, sdp_mid, sdp_m_line_index).await,
        ServerMessage::Left { reason } => {
            let reason = serde_json::to_value(reason)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| "removed".into());
            finish(ctx, &reason, None);
        }
        ServerMessage::Error { error } => {
            let e = SdkError::from(error);
            ctx.emit(vec![Emit("error", e.to_js())]);
        }
        ServerMessage::Audience { participants, next } => {
            if let Some(w) = ctx.audience_waiters.pop_front() {
                let _ = w.send((participants, next));
            }
        }
        ServerMessage::ActiveSpeakersChanged { speakers } => {
            if let Some(s) = ctx.shared.view.borrow_mut().session.as_mut() {
                s.active_speakers = speakers.clone();
            }
            let o = js_sys::Object::new();
            events::set(&o, "speakers", events::value(&speakers));
            ctx.emit(vec![Emit("activeSpeakersChanged", o.into())]);
        }
        ServerMessage::ConnectionQualityChanged {
            participant_id,
            quality,
        } => {
            let changed = ctx
                .shared
                .view
                .borrow_mut()
                .session
                .as_mut()
                .is_some_and(|s| {
                    s.qualities.insert(participant_id.clone(), quality) != Some(quality)
                });
            if changed {
                let o = js_sys::Object::new();
                events::set(&o, "participantId", participant_id);
                events::set(&o, "quality", events::value(&quality));
                ctx.emit(vec![Emit("connectionQualityChanged", o.into())]);
            }
        }
        ServerMessage::TrackPaused {
            participant_id,
            kind,
        } => track_event(ctx, "trackPaused", participant_id, kind),
        ServerMessage::TrackResumed {
            participant_id,
            kind,
        } => track_event(ctx, "trackResumed", participant_id, kind),
        ServerMessage::CameraDemand { max_height } => {
            crate::media::camera_demand(ctx, max_height);
        }
        ServerMessage::SeatsChanged { seats } => {
            if let Some(s) = ctx.shared.view.borrow_mut().session.as_mut() {
                s.seats = seats.clone();
            }
            let o = js_sys::Object::new();
            events::set(&o, "seats", events::value(&seats));
            ctx.emit(vec![Emit("seatsChanged", o.into())]);
        }
        ServerMessage::SeatApplications { applications } => {
            if let Some(s) = ctx.shared.view.borrow_mut().session.as_mut() {
                s.applications = applications.clone();
            }
            let o = js_sys::Object::new();
            events::set(&o, "applications", events::value(&applications));
            ctx.emit(vec![Emit("seatApplicationsChanged", o.into())]);
        }
        ServerMessage::SeatApplicationEnded { outcome } => {
            let o = js_sys::Object::new();
            events::set(&o, "outcome", events::value(&outcome));
            ctx.emit(vec![Emit("seatApplicationEnded", o.into())]);
        }
        ServerMessage::RoomEnding {
            valid_until,
            seconds_left,
        } => {
            if let Some(s) = ctx.shared.view.borrow_mut().session.as_mut() {
                s.room.valid_until = valid_until.clone();
            }
            let o = js_sys::Object::new();
            events::set(&o, "validUntil", valid_until.as_str());
            events::set(&o, "secondsLeft", seconds_left as f64);
            ctx.emit(vec![Emit("roomEnding", o.into())]);
        }
        ServerMessage::RoomAttributesChanged { changed } => {
            let all = {
                let mut view = ctx.shared.view.borrow_mut();
                let Some(s) = view.session.as_mut() else {
                    return;
                };
                for (k, v) in &changed {
                    match v {
                        Some(v) => s.room.attributes.insert(k.clone(), v.clone()),
                        None => s.room.attributes.remove(k),
                    };
                }
                s.room.attributes.clone()
            };
            let o = js_sys::Object::new();
            events::set(&o, "changed", events::value(&changed));
            events::set(&o, "attributes", events::value(&all));
            ctx.emit(vec![Emit("roomAttributesChanged", o.into())]);
        }
        ServerMessage::MemberAttributesChanged {
            participant_id,
            attributes,
        } => {
            let local = ctx.shared.local_id();
            let updated = with_roster(ctx, |r| {
                r.set_attributes(&participant_id, attributes.clone())
                    .into_iter()
                    .map(|p| Change::Media {
                        participant: p,
                        reason: None,
                    })
                    .collect()
            });
            let o = js_sys::Object::new();
            events::set(&o, "participantId", participant_id.as_str());
            events::set(&o, "attributes", events::value(&attributes));
            if let Some(Change::Media { participant, .. }) = updated.and_then(|mut c| c.pop()) {
                events::set(&o, "participant", events::participant(&participant, &local));
            }
            ctx.emit(vec![Emit("memberAttributesChanged", o.into())]);
        }
        ServerMessage::Pong { .. } => {}
    }
}
