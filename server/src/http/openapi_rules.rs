//! The rules the handlers enforce, written into the generated OpenAPI document from the
//! same constants the handlers use: id patterns and lengths, numeric ranges, map sizes,
//! header formats, and the statuses every admin route may answer (429 while an address
//! is limited for wrong admin keys, 408 for a request too slow). With them, a request
//! the document allows is one the server accepts (the schema tests check that); the
//! rules it cannot state (a room's window against the current time) are described.

use serde_json::{json, Value};

use crate::api::MAX_BODY_BYTES;
use crate::http::paging::MAX_PAGE_SIZE;
use crate::http::tokens_api::{MAX_TOKEN_TTL_SECONDS, MIN_TOKEN_TTL_SECONDS};
use crate::ids::{RoomId, UserId};
use crate::rooms::settings::*;

/// `A-Z a-z 0-9 - _` (room ids) and, for user ids, also `. @ : +`.
const ROOM_ID_CHARS: &str = "A-Za-z0-9_-";
const USER_ID_CHARS: &str = "A-Za-z0-9_.@:+-";

fn room_id() -> Value {
    json!({"type": "string", "pattern": format!("^[{ROOM_ID_CHARS}]+$"),
           "minLength": 1, "maxLength": RoomId::MAX_LEN})
}

fn user_id() -> Value {
    json!({"type": "string", "pattern": format!("^[{USER_ID_CHARS}]+$"),
           "minLength": 1, "maxLength": UserId::MAX_LEN})
}

/// Sets `schema` on every parameter called `name`.
fn parameters(doc: &mut Value, name: &str, schema: &Value) {
    for_each_operation(doc, |_, op| {
        let params = op.get_mut("parameters").and_then(Value::as_array_mut);
        for p in params.into_iter().flatten() {
            if p["name"] == name {
                p["schema"] = schema.clone();
            }
        }
    });
}

fn for_each_operation(doc: &mut Value, mut f: impl FnMut(&str, &mut Value)) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        for (_, op) in item.as_object_mut().into_iter().flatten() {
            f(path, op);
        }
    }
}

/// Merges `rules` into the properties of the schema component `name`.
/// The schema at `pointer`; None (and nothing inserted) when the document has none.
fn at<'a>(doc: &'a mut Value, pointer: &str) -> Option<&'a mut serde_json::Map<String, Value>> {
    doc.pointer_mut(pointer).and_then(Value::as_object_mut)
}

fn properties(doc: &mut Value, name: &str, rules: Value) {
    for (field, extra) in rules.as_object().into_iter().flatten() {
        let pointer = format!("/components/schemas/{name}/properties/{field}");
        if let (Some(p), Some(extra)) = (at(doc, &pointer), extra.as_object()) {
            for (k, v) in extra {
                // The generated type stays: it says whether `null` is accepted.
                if k == "type" && p.contains_key("type") {
                    continue;
                }
                p.insert(k.clone(), v.clone());
            }
        }
    }
}

fn error_response(description: &str) -> Value {
    json!({"description": description,
           "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}})
}

/// Rules of a room's fields, shared by create and update.
fn room_fields() -> Value {
    // Control characters (C0, DEL, C1) are refused in names.
    let no_controls = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$";
    json!({
        "name": {"maxLength": MAX_NAME_CHARS, "pattern": no_controls},
        "coverUrl": {"maxLength": MAX_COVER_URL_BYTES, "pattern": HTTP_URL_PATTERN},
        "maxParticipants": {"minimum": 1, "maximum": MAX_PARTICIPANTS_LIMIT},
        "destroyDelaySeconds": {"minimum": 0, "maximum": MAX_DESTROY_DELAY_SECONDS},
        "announceLimit": {"minimum": 0, "maximum": MAX_ANNOUNCE_LIMIT},
        "maxSeatCount": {"minimum": 1, "maximum": MAX_SEAT_COUNT},
        "ownerId": user_id(),
        "attributes": {
            "maxProperties": MAX_ATTRIBUTES,
            "propertyNames": {"type": "string", "pattern": "^[A-Za-z0-9_.-]+$",
                              "minLength": 1, "maxLength": MAX_ATTRIBUTE_KEY_BYTES},
        },
        "validFrom": {"description": format!(
            "When the room opens (default: now); at most {} days from now.",
            crate::rooms::validity::MAX_WINDOW_DAYS)},
        "validUntil": {"description": format!(
            "When the room ends (default: validFrom + {} days): later than now and than \
             validFrom, at most {} days after validFrom.",
            crate::rooms::validity::MAX_WINDOW_DAYS, crate::rooms::validity::MAX_WINDOW_DAYS)},
    })
}

fn attribute_values(doc: &mut Value, schema: &str) {
    let pointer =
        format!("/components/schemas/{schema}/properties/attributes/additionalProperties");
    if let Some(v) = at(doc, &pointer) {
        v.insert("maxLength".into(), json!(MAX_ATTRIBUTE_VALUE_CHARS));
    }
}

fn roster_map(max: usize) -> Value {
    json!({"maxProperties": max, "propertyNames": user_id()})
}

pub fn apply(doc: &mut Value) {
    parameters(doc, "roomId", &room_id());
    parameters(doc, "userId", &user_id());
    parameters(
        doc,
        "tokenId",
        &json!({"type": "string", "pattern": "^t_[A-Za-z0-9_]+$", "maxLength": 64}),
    );
    parameters(
        doc,
        "If-Match",
        // Empty is the same as absent.
        &json!({"type": "string", "pattern": "^(\\*|\"[0-9]{1,19}\")?$"}),
    );
    parameters(
        doc,
        "Repeatability-Request-ID",
        &json!({"type": "string", "pattern": "^[\\x21-\\x7e]+$", "minLength": 1, "maxLength": 128}),
    );
    parameters(
        doc,
        "maxPageSize",
        &json!({"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE}),
    );
    parameters(
        doc,
        "skipToken",
        &json!({"type": "string", "pattern": "^[A-Za-z0-9_-]*$"}),
    );

    properties(doc, "CreateRoomRequest", room_fields());
    properties(
        doc,
        "CreateRoomRequest",
        json!({"id": room_id(), "participants": roster_map(MAX_ROSTER_CHANGES)}),
    );
    properties(doc, "UpdateRoomRequest", room_fields());
    for s in ["CreateRoomRequest", "UpdateRoomRequest"] {
        attribute_values(doc, s);
    }
    // In an update, `null` removes a user.
    let mut changes = roster_map(MAX_ROSTER_CHANGES);
    changes["additionalProperties"] = json!({"oneOf": [
        {"type": "null"}, {"$ref": "#/components/schemas/ParticipantSpec"}]});
    properties(
        doc,
        "UpdateRosterRequest",
        json!({ "participants": changes }),
    );
    // A room can be created with no body at all (every field has a default), and an
    // empty update changes nothing.
    for pointer in [
        "/paths/~1v1~1rooms/post/requestBody",
        "/paths/~1v1~1rooms~1{roomId}/patch/requestBody",
    ] {
        if let Some(body) = at(doc, pointer) {
            body.insert("required".into(), json!(false));
        }
    }
    let event_patterns: Vec<String> = crate::model::event::EventType::ALL
        .iter()
        .map(|t| t.as_str().replace('.', "\\."))
        .chain([
            "\\*".to_string(),
            "(room|roster|session|participant|track)\\.\\*".into(),
        ])
        .collect();
    properties(
        doc,
        "CreateWebhookRequest",
        json!({
            "url": {"pattern": HTTP_URL_PATTERN, "maxLength": 2048},
            "secret": {"minLength": 16, "maxLength": 256},
            "events": {"items": {"type": "string",
                                 "pattern": format!("^({})$", event_patterns.join("|"))}},
        }),
    );
    properties(
        doc,
        "GuestTokenRequest",
        json!({"displayName": {
            "minLength": 1,
            "maxLength": crate::http::live_api::MAX_DISPLAY_NAME,
            "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$",
        }}),
    );
    parameters(
        doc,
        "webhookId",
        &json!({"type": "string", "minLength": 1, "maxLength": 128}),
    );
    properties(
        doc,
        "MintTokenRequest",
        json!({"userId": user_id(),
               "ttlSeconds": {"minimum": MIN_TOKEN_TTL_SECONDS, "maximum": MAX_TOKEN_TTL_SECONDS}}),
    );

    // Statuses any admin route may answer, whatever it does.
    for_each_operation(doc, |_, op| {
        let admin = op["security"].to_string().contains("adminKey");
        let has_body = op.get("requestBody").is_some();
        let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
            return;
        };
        let mut add = |code: &str, what: &str| {
            responses
                .entry(code.to_string())
                .or_insert_with(|| error_response(what));
        };
        add("408", "RequestTimeout: the request took too long to arrive");
        if has_body {
            add(
                "413",
                &format!("PayloadTooLarge: the body is over {MAX_BODY_BYTES} bytes"),
            );
        }
        if admin {
            add(
                "429",
                "RateLimited: too many wrong admin keys from this address; see Retry-After",
            );
        }
    });
    if let Some(info) = at(doc, "/info") {
        let mut desc = info
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        desc.push_str(&format!(
            " Rosters hold at most {MAX_ROSTER_SIZE} users; a request changes at most {MAX_ROSTER_CHANGES}."
        ));
        info.insert("description".into(), Value::String(desc));
    }
}
