//! The admin CLI: `convene room|invite|token|members|kick`, a client of the REST API.
//! Tables for people, `--json` for scripts; a failure is one line and exit code 1.

mod client;
mod output;
mod table;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde_json::{json, Map, Value};

use crate::config::ServeArgs;
use client::{CliError, Client};
use output::{note, say};

#[derive(Debug, Parser)]
#[command(name = "convene", version, about = "Convene: invite-only video rooms")]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Server URL for the admin commands.
    #[arg(
        long,
        global = true,
        env = "CONVENE_URL",
        default_value = "http://127.0.0.1:7880"
    )]
    pub server: String,
    /// Admin key; default: read from <data dir>/admin.key.
    #[arg(long, global = true, env = "CONVENE_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// Data dir holding admin.key, when --admin-key is not given.
    #[arg(
        long = "key-dir",
        global = true,
        env = "CONVENE_DATA_DIR",
        default_value = "./convene-data"
    )]
    pub key_dir: PathBuf,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Create, list, show, update and delete rooms.
    #[command(subcommand)]
    Room(RoomCmd),
    /// Manage a room's invite roster.
    #[command(subcommand)]
    Invite(InviteCmd),
    /// Who is in a room's call now, with their microphone, camera and screen.
    Members { room: String },
    /// Remove a user from a room's call (the invitation stays).
    Kick { room: String, user: String },
    /// Every live session with its member count.
    Sessions,
    /// Mint a join token and print the join link.
    Token {
        room: String,
        user: String,
        /// Lifetime in seconds (default 86400; never past the room's end).
        #[arg(long)]
        ttl: Option<i64>,
    },
    /// Print the admin API's OpenAPI document (the one the server serves at
    /// /v1/openapi.json); needs no server and no key.
    Openapi,
}

#[derive(Debug, Args)]
pub struct RoomFields {
    #[arg(long)]
    name: Option<String>,
    /// RFC 3339, e.g. 2026-12-01T09:00:00Z
    #[arg(long)]
    valid_from: Option<String>,
    /// RFC 3339, e.g. 2026-12-01T17:00:00Z
    #[arg(long)]
    valid_until: Option<String>,
    #[arg(long)]
    max_participants: Option<u32>,
    /// invite, closed or public
    #[arg(long)]
    join_policy: Option<String>,
    /// conference, live or voice
    #[arg(long)]
    room_type: Option<String>,
    /// The host (a user id; invited as a presenter)
    #[arg(long)]
    owner: Option<String>,
    /// Seats of a live or voice room (1-50)
    #[arg(long)]
    max_seats: Option<u32>,
    /// freeToTake or applyToTake
    #[arg(long)]
    take_seat_mode: Option<String>,
    /// List the room publicly (live rooms appear in /live)
    #[arg(long)]
    public_visible: Option<bool>,
    #[arg(long)]
    message_disabled: Option<bool>,
    #[arg(long)]
    destroy_delay: Option<u32>,
    /// key=value, repeatable
    #[arg(long = "attr")]
    attributes: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum RoomCmd {
    Create {
        /// Room id (1-64 of A-Z a-z 0-9 - _); generated when absent.
        #[arg(long)]
        id: Option<String>,
        #[command(flatten)]
        fields: RoomFields,
        /// user or user:role, repeatable
        #[arg(long = "invite")]
        invites: Vec<String>,
    },
    List,
    Show {
        room: String,
    },
    Update {
        room: String,
        #[command(flatten)]
        fields: RoomFields,
    },
    Delete {
        room: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum InviteCmd {
    Add {
        room: String,
        user: String,
        /// presenter, collaborator, attendee or consumer
        #[arg(long, default_value = "attendee")]
        role: String,
    },
    Remove {
        room: String,
        user: String,
    },
    List {
        room: String,
    },
}

pub fn run_admin(global: Global, command: Command) -> ExitCode {
    match dispatch(&global, command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            note!("convene: {e}");
            ExitCode::FAILURE
        }
    }
}

fn admin_key(global: &Global) -> Result<String, CliError> {
    if let Some(k) = &global.admin_key {
        return Ok(k.clone());
    }
    let path = global.key_dir.join("admin.key");
    std::fs::read_to_string(&path)
        .map(|s| s.trim().to_string())
        .map_err(|e| {
            CliError(format!(
                "no admin key: pass --admin-key, set CONVENE_ADMIN_KEY, or run from the server's directory ({}: {e})",
                path.display()
            ))
        })
}

fn seg(s: &str) -> String {
    // Ids are restricted to URL-safe characters by the server; anything else is
    // percent-encoded so the server can refuse it with a clear message.
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.@:+".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn fields_json(f: RoomFields) -> Result<Map<String, Value>, CliError> {
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.to_string(), v);
        }
    };
    put("name", f.name.map(Value::from));
    put("validFrom", f.valid_from.map(Value::from));
    put("validUntil", f.valid_until.map(Value::from));
    put("maxParticipants", f.max_participants.map(Value::from));
    put("joinPolicy", f.join_policy.map(Value::from));
    put("roomType", f.room_type.map(Value::from));
    put("ownerId", f.owner.map(Value::from));
    put("maxSeatCount", f.max_seats.map(Value::from));
    put("takeSeatMode", f.take_seat_mode.map(Value::from));
    put("isPublicVisible", f.public_visible.map(Value::from));
    put("isMessageDisabled", f.message_disabled.map(Value::from));
    put("destroyDelaySeconds", f.destroy_delay.map(Value::from));
    if !f.attributes.is_empty() {
        let mut attrs = Map::new();
        for a in f.attributes {
            let (k, v) = a
                .split_once('=')
                .ok_or_else(|| CliError(format!("--attr '{a}' must be key=value")))?;
            attrs.insert(k.to_string(), Value::from(v));
        }
        m.insert("attributes".into(), Value::Object(attrs));
    }
    Ok(m)
}

fn room_rows(rooms: &[Value]) -> Vec<Vec<String>> {
    rooms
        .iter()
        .map(|r| {
            vec![
                table::cell(&r["id"]),
                table::cell(&r["name"]),
                table::cell(&r["validFrom"]),
                table::cell(&r["validUntil"]),
                table::cell(&r["joinPolicy"]),
                table::cell(&r["roomType"]),
            ]
        })
        .collect()
}

const ROOM_HEADERS: [&str; 6] = ["ID", "NAME", "VALID FROM", "VALID UNTIL", "POLICY", "TYPE"];

/// Follows `nextLink` until the last page.
fn all_pages(c: &Client, first: &str) -> Result<Vec<Value>, CliError> {
    let mut out = Vec::new();
    let mut next = Some(first.to_string());
    while let Some(path) = next {
        let page = c.call("GET", &path, None)?;
        if let Some(items) = page["value"].as_array() {
            out.extend(items.iter().cloned());
        }
        next = page["nextLink"].as_str().map(str::to_owned);
    }
    Ok(out)
}

fn dispatch(global: &Global, command: Command) -> Result<(), CliError> {
    if let Command::Openapi = command {
        let doc = crate::http::openapi::document();
        say!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(());
    }
    let c = Client::new(&global.server, admin_key(global)?);
    let print_json = |v: &Value| say!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    match command {
        Command::Serve(_) | Command::Openapi => unreachable!("handled before"),
        Command::Room(RoomCmd::Create {
            id,
            fields,
            invites,
        }) => {
            let mut body = fields_json(fields)?;
            if let Some(id) = id {
                body.insert("id".into(), Value::from(id));
            }
            let mut roster = Map::new();
            for inv in invites {
                let (user, role) = inv.split_once(':').unwrap_or((&inv, "attendee"));
                roster.insert(user.to_string(), json!({ "role": role }));
            }
            if !roster.is_empty() {
                body.insert("participants".into(), Value::Object(roster));
            }
            let room = c.call("POST", "/v1/rooms", Some(&Value::Object(body)))?;
            if global.json {
                print_json(&room);
            } else {
                say!("created room {}", table::cell(&room["id"]));
                table::print(&ROOM_HEADERS, &room_rows(&[room]));
            }
        }
        Command::Room(RoomCmd::List) => {
            let rooms = all_pages(&c, "/v1/rooms?maxPageSize=1000")?;
            if global.json {
                print_json(&Value::Array(rooms));
            } else {
                table::print(&ROOM_HEADERS, &room_rows(&rooms));
            }
        }
        Command::Room(RoomCmd::Show { room }) => {
            let r = c.call("GET", &format!("/v1/rooms/{}", seg(&room)), None)?;
            if global.json {
                print_json(&r);
            } else if let Value::Object(m) = &r {
                let rows: Vec<Vec<String>> = m
                    .iter()
                    .map(|(k, v)| vec![k.clone(), table::cell(v)])
                    .collect();
                table::print(&["FIELD", "VALUE"], &rows);
            }
        }
        Command::Room(RoomCmd::Update { room, fields }) => {
            let body = Value::Object(fields_json(fields)?);
            let r = c.call("PATCH", &format!("/v1/rooms/{}", seg(&room)), Some(&body))?;
            if global.json {
                print_json(&r);
            } else {
                say!("updated room {room}");
                table::print(&ROOM_HEADERS, &room_rows(&[r]));
            }
        }
        Command::Room(RoomCmd::Delete { room }) => {
            c.call("DELETE", &format!("/v1/rooms/{}", seg(&room)), None)?;
            if global.json {
                print_json(&json!({ "deleted": room }));
            } else {
                say!("deleted room {room}");
            }
        }
        Command::Invite(cmd) => invite(&c, global, cmd)?,
        Command::Members { room } => {
            let m = c.call("GET", &format!("/v1/rooms/{}/members", seg(&room)), None)?;
            if global.json {
                print_json(&m["value"]);
            } else {
                let on = |v: &Value| {
                    if v.as_bool() == Some(true) {
                        "on"
                    } else {
                        "off"
                    }
                    .to_string()
                };
                let rows: Vec<Vec<String>> = m["value"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|p| {
                                vec![
                                    table::cell(&p["id"]),
                                    table::cell(&p["role"]),
                                    on(&p["audio"]),
                                    on(&p["video"]),
                                    on(&p["screen"]),
                                    table::cell(&p["joinedAt"]),
                                ]
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                table::print(
                    &["USER", "ROLE", "MIC", "CAMERA", "SCREEN", "JOINED AT"],
                    &rows,
                );
            }
        }
        Command::Kick { room, user } => {
            c.call(
                "DELETE",
                &format!("/v1/rooms/{}/members/{}", seg(&room), seg(&user)),
                None,
            )?;
            if global.json {
                print_json(&json!({ "removed": user }));
            } else {
                say!("{user} was removed from the call in {room}");
            }
        }
        Command::Sessions => {
            let v = c.call("GET", "/v1/sessions", None)?;
            if global.json {
                print_json(&v["value"]);
            } else {
                let rows: Vec<Vec<String>> = v["value"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|s| {
                                vec![
                                    table::cell(&s["roomId"]),
                                    table::cell(&s["sessionId"]),
                                    table::cell(&s["memberCount"]),
                                    table::cell(&s["startedAt"]),
                                ]
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                table::print(&["ROOM", "SESSION", "MEMBERS", "STARTED AT"], &rows);
            }
        }
        Command::Token { room, user, ttl } => {
            let mut body = json!({ "userId": user });
            if let Some(ttl) = ttl {
                body["ttlSeconds"] = Value::from(ttl);
            }
            let t = c.call(
                "POST",
                &format!("/v1/rooms/{}/tokens", seg(&room)),
                Some(&body),
            )?;
            if global.json {
                print_json(&t);
            } else {
                say!("{}", table::cell(&t["joinUrl"]));
                note!(
                    "({} as {}, expires {})",
                    table::cell(&t["userId"]),
                    table::cell(&t["role"]),
                    table::cell(&t["expiresAt"])
                );
            }
        }
    }
    Ok(())
}

fn invite(c: &Client, global: &Global, cmd: InviteCmd) -> Result<(), CliError> {
    let print_json = |v: &Value| say!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    match cmd {
        InviteCmd::Add { room, user, role } => {
            let body = json!({ "participants": { user.clone(): { "role": role } } });
            let r = c.call(
                "PATCH",
                &format!("/v1/rooms/{}/participants", seg(&room)),
                Some(&body),
            )?;
            if global.json {
                print_json(&r);
            } else {
                say!("{user} is invited to {room} as {role}");
            }
        }
        InviteCmd::Remove { room, user } => {
            let body = json!({ "participants": { user.clone(): null } });
            let r = c.call(
                "PATCH",
                &format!("/v1/rooms/{}/participants", seg(&room)),
                Some(&body),
            )?;
            if global.json {
                print_json(&r);
            } else if r["removed"].as_array().is_some_and(|a| !a.is_empty()) {
                say!("{user} is no longer invited to {room}");
            } else {
                say!("{user} was not invited to {room}; nothing to do");
            }
        }
        InviteCmd::List { room } => {
            let entries = all_pages(
                c,
                &format!("/v1/rooms/{}/participants?maxPageSize=1000", seg(&room)),
            )?;
            if global.json {
                print_json(&Value::Array(entries));
            } else {
                let rows: Vec<Vec<String>> = entries
                    .iter()
                    .map(|e| {
                        vec![
                            table::cell(&e["userId"]),
                            table::cell(&e["role"]),
                            table::cell(&e["invitedAt"]),
                        ]
                    })
                    .collect();
                table::print(&["USER", "ROLE", "INVITED AT"], &rows);
            }
        }
    }
    Ok(())
}
