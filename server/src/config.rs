//! Server configuration: flags, then `CONVENE_*` environment variables, then an optional
//! TOML file, then defaults. Checked once at start; every problem is one clear line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::secret::Secret;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:7880";
pub const DEFAULT_DATA_DIR: &str = "./convene-data";
pub const DEFAULT_PURGE_GRACE_DAYS: u32 = 7;
pub const DEFAULT_RESUME_GRACE_SECONDS: u64 = 15;
pub const DEFAULT_HTTP_HEADER_TIMEOUT_SECONDS: u64 = 10;
pub const DEFAULT_HTTP_REQUEST_TIMEOUT_SECONDS: u64 = 30;
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 1000;
pub const DEFAULT_ADMIN_KEY_FAILURES: u32 = 10;
/// Shortest admin key accepted from configuration.
pub const MIN_ADMIN_KEY_LEN: usize = 16;

/// The `serve` flags; each also reads its `CONVENE_*` environment variable.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (keys in snake_case).
    #[arg(long, env = "CONVENE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7880].
    #[arg(long, env = "CONVENE_LISTEN")]
    pub listen: Option<String>,
    /// Where the database and generated keys are kept [default: ./convene-data].
    #[arg(long, env = "CONVENE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Keep rooms in PostgreSQL instead of SQLite in the data dir, e.g.
    /// postgres://convene:secret@127.0.0.1:5432/convene [default: none, SQLite].
    #[arg(long, env = "CONVENE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// The admin API key (at least 16 characters). Generated into the data dir when unset.
    #[arg(long, env = "CONVENE_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// Run as one node of several on this Redis, e.g. redis://127.0.0.1:6379 (needs
    /// `--database-url` and `--admin-key`, the same on every node) [default: none, alone].
    #[arg(long, env = "CONVENE_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// This node's name among the others on Redis: letters, digits, '-', '_', '.'
    /// [default: generated at each start].
    #[arg(long, env = "CONVENE_NODE_ID")]
    pub node_id: Option<String>,
    /// Base URL of join links, e.g. https://meet.example.com [default: http://<listen>].
    #[arg(long, env = "CONVENE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Directory of the demo and admin pages [default: ./www when it holds index.html].
    #[arg(long, env = "CONVENE_WWW_DIR")]
    pub www_dir: Option<PathBuf>,
    /// Days a room is kept after its validUntil before it is purged [default: 7].
    #[arg(long, env = "CONVENE_PURGE_GRACE_DAYS")]
    pub purge_grace_days: Option<u32>,
    /// Seconds a dropped member is kept for `resume` before it leaves [default: 15].
    #[arg(long, env = "CONVENE_RESUME_GRACE_SECONDS")]
    pub resume_grace_seconds: Option<u64>,
    /// Address the media port is bound to [default: 0.0.0.0, every interface; each
    /// interface's IPv4 address is advertised to browsers].
    #[arg(long, env = "CONVENE_MEDIA_IP")]
    pub media_ip: Option<String>,
    /// The one UDP port all media uses [default: 7882; 0 lets the OS pick].
    #[arg(long, env = "CONVENE_MEDIA_PORT")]
    pub media_port: Option<u16>,
    /// Media worker threads, each with its own socket on the port [default: the number
    /// of cores].
    #[arg(long, env = "CONVENE_MEDIA_WORKERS")]
    pub media_workers: Option<usize>,
    /// Also accept AES_CM_128_HMAC_SHA1_80 SRTP from clients without AEAD_AES_128_GCM
    /// [default: false, GCM only].
    #[arg(long, env = "CONVENE_MEDIA_SRTP_FALLBACK")]
    pub media_srtp_fallback: Option<bool>,
    /// Address advertised to browsers instead of the interface addresses (NAT 1:1).
    #[arg(long, env = "CONVENE_PUBLIC_IP")]
    pub public_ip: Option<String>,
    /// STUN/TURN URLs handed to clients, comma-separated.
    #[arg(long, env = "CONVENE_ICE_SERVERS")]
    pub ice_servers: Option<String>,
    /// Username for the TURN servers.
    #[arg(long, env = "CONVENE_ICE_USERNAME")]
    pub ice_username: Option<String>,
    /// Credential for the TURN servers.
    #[arg(long, env = "CONVENE_ICE_CREDENTIAL", hide_env_values = true)]
    pub ice_credential: Option<String>,
    /// Secret shared with the TURN server (coturn: static-auth-secret): each member gets
    /// its own short-lived credential for the turn: URLs, instead of a fixed one.
    #[arg(long, env = "CONVENE_TURN_SECRET", hide_env_values = true)]
    pub turn_secret: Option<String>,
    /// Longest a minted TURN credential lasts, in seconds; it ends sooner with the
    /// room's window [default: 86400].
    #[arg(long, env = "CONVENE_TURN_TTL_SECONDS")]
    pub turn_ttl_seconds: Option<u64>,
    /// Seconds a connection has to send a request's headers; idle keep-alive connections
    /// are closed after it too [default: 10].
    #[arg(long, env = "CONVENE_HTTP_HEADER_TIMEOUT_SECONDS")]
    pub http_header_timeout_seconds: Option<u64>,
    /// Seconds a request (its body and the answer) may take [default: 30].
    #[arg(long, env = "CONVENE_HTTP_REQUEST_TIMEOUT_SECONDS")]
    pub http_request_timeout_seconds: Option<u64>,
    /// Most connections (HTTP and signaling) one IP address may hold; 0: no limit
    /// [default: 1000].
    #[arg(long, env = "CONVENE_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,
    /// Web origins whose pages may use the SDK against this server, comma-separated,
    /// e.g. https://app.example.com; `*` for any [default: *]. Admin routes never
    /// answer other origins.
    #[arg(long, env = "CONVENE_ALLOWED_ORIGINS")]
    pub allowed_origins: Option<String>,
    /// Wrong admin keys one address may send before it must wait; the allowance
    /// refills at this many per 100 s [default: 10].
    #[arg(long, env = "CONVENE_ADMIN_KEY_FAILURES")]
    pub admin_key_failures: Option<u32>,
    /// Also serve `/metrics` without the admin key on this address (IP:port), for a
    /// Prometheus on the same network [default: none; `/metrics` needs the admin key].
    #[arg(long, env = "CONVENE_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    admin_key: Option<String>,
    redis_url: Option<String>,
    node_id: Option<String>,
    public_url: Option<String>,
    www_dir: Option<PathBuf>,
    purge_grace_days: Option<u32>,
    resume_grace_seconds: Option<u64>,
    media_ip: Option<String>,
    media_port: Option<u16>,
    media_workers: Option<usize>,
    media_srtp_fallback: Option<bool>,
    public_ip: Option<String>,
    ice_servers: Option<String>,
    ice_username: Option<String>,
    ice_credential: Option<String>,
    turn_secret: Option<String>,
    turn_ttl_seconds: Option<u64>,
    http_header_timeout_seconds: Option<u64>,
    http_request_timeout_seconds: Option<u64>,
    max_connections_per_ip: Option<usize>,
    allowed_origins: Option<String>,
    admin_key_failures: Option<u32>,
    metrics_listen: Option<String>,
    webhooks: Option<Vec<WebhookConfig>>,
    webhook_retry_hours: Option<u32>,
}

/// A webhook endpoint from the config file (`[[webhooks]]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// At least 16 characters; the HMAC key of the signatures.
    pub secret: String,
    /// Event types or `prefix.*`; all when absent.
    #[serde(default)]
    pub events: Vec<String>,
}

/// Checks an endpoint's url, secret and event patterns; the reason when one is bad.
pub fn check_webhook(
    url: &str,
    secret: Option<&str>,
    events: &[String],
) -> Result<(), (&'static str, String)> {
    if url.len() > 2048 || !crate::rooms::settings::http_url_ok(url) {
        return Err((
            "url",
            format!(
                "webhook url '{url}' must be http(s)://host[:port][/path], at most 2048 characters"
            ),
        ));
    }
    if let Some(s) = secret {
        if s.len() < 16 || s.len() > 256 {
            return Err((
                "secret",
                "a webhook secret must be 16 to 256 characters".into(),
            ));
        }
    }
    if let Some(bad) = events
        .iter()
        .find(|p| !crate::model::event::valid_pattern(p))
    {
        let known: Vec<&str> = crate::model::event::EventType::ALL
            .iter()
            .map(|t| t.as_str())
            .collect();
        return Err((
            "events",
            format!(
                "'{bad}' is not an event type or 'prefix.*'; the types are {}",
                known.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Which web origins may call the SDK's routes from a browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origins {
    Any,
    /// Exact origins such as `https://app.example.com` (scheme, host, optional port).
    Only(Vec<String>),
}

impl Origins {
    pub fn allows(&self, origin: &str) -> bool {
        match self {
            Origins::Any => true,
            Origins::Only(list) => list.iter().any(|o| o.eq_ignore_ascii_case(origin)),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `Some`: rooms are kept in this PostgreSQL database instead of SQLite.
    pub database_url: Option<Secret>,
    /// `None`: generated on first start and kept in `data_dir/admin.key`.
    pub admin_key: Option<Secret>,
    /// `Some`: this node works with the others on this Redis (`crate::cluster`).
    pub redis_url: Option<Secret>,
    /// `None`: generated at start.
    pub node_id: Option<crate::ids::NodeId>,
    /// `None`: `http://<bound address>`.
    pub public_url: Option<String>,
    pub www_dir: Option<PathBuf>,
    pub purge_grace: chrono::Duration,
    pub purge_interval: Duration,
    pub resume_grace: Duration,
    pub media: crate::sfu::SfuConfig,
    pub http_header_timeout: Duration,
    pub http_request_timeout: Duration,
    /// 0: no limit.
    pub max_connections_per_ip: usize,
    pub allowed_origins: Origins,
    /// Wrong admin keys per address before 429 (refilling at this many per 100 s).
    pub admin_key_failures: u32,
    /// A second listener for `/metrics` without the admin key.
    pub metrics_listen: Option<SocketAddr>,
    /// Webhook endpoints from the config file.
    pub webhooks: Vec<WebhookConfig>,
    /// How long an event is retried before it is given up.
    pub webhook_retry: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Defaults for `data_dir`, as tests and embedders want them.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().expect("default address parses"),
            data_dir: data_dir.into(),
            database_url: None,
            admin_key: None,
            redis_url: None,
            node_id: None,
            public_url: None,
            www_dir: None,
            purge_grace: chrono::Duration::days(DEFAULT_PURGE_GRACE_DAYS.into()),
            purge_interval: Duration::from_secs(3600),
            resume_grace: Duration::from_secs(DEFAULT_RESUME_GRACE_SECONDS),
            media: Default::default(),
            http_header_timeout: Duration::from_secs(DEFAULT_HTTP_HEADER_TIMEOUT_SECONDS),
            http_request_timeout: Duration::from_secs(DEFAULT_HTTP_REQUEST_TIMEOUT_SECONDS),
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            allowed_origins: Origins::Any,
            admin_key_failures: DEFAULT_ADMIN_KEY_FAILURES,
            metrics_listen: None,
            webhooks: vec![],
            webhook_retry: Duration::from_secs(24 * 3600),
        }
    }

    pub fn admin_key_path(&self) -> PathBuf {
        self.data_dir.join("admin.key")
    }

    pub fn from_args(args: ServeArgs) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let listen_text = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            ConfigError(format!(
                "listen address '{listen_text}' is not an IP:port such as 127.0.0.1:7880"
            ))
        })?;
        let data_dir = args
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database_url = args
            .database_url
            .or(file.database_url)
            .map(|url| {
                let url = url.trim();
                crate::store::parse_database_url(url)
                    .map(|_| Secret::new(url))
                    .map_err(ConfigError)
            })
            .transpose()?;
        let admin_key = match args.admin_key.or(file.admin_key) {
            Some(k) if k.trim().len() < MIN_ADMIN_KEY_LEN => {
                return Err(ConfigError(format!(
                    "the admin key must be at least {MIN_ADMIN_KEY_LEN} characters"
                )))
            }
            Some(k) => Some(Secret::new(k.trim())),
            None => None,
        };
        let redis_url = args
            .redis_url
            .or(file.redis_url)
            .map(|url| {
                let url = url.trim();
                crate::cluster::check_redis_url(url)
                    .map(|_| Secret::new(url))
                    .map_err(ConfigError)
            })
            .transpose()?;
        if redis_url.is_some() {
            if database_url.is_none() {
                return Err(ConfigError(
                    "a Redis URL needs a PostgreSQL database URL too: the nodes on one Redis \
                     must keep their rooms in one shared database (CONVENE_DATABASE_URL)"
                        .into(),
                ));
            }
            if admin_key.is_none() {
                return Err(ConfigError(
                    "a Redis URL needs an admin key too: every node must accept the same \
                     one (CONVENE_ADMIN_KEY), not one generated per node"
                        .into(),
                ));
            }
        }
        let node_id = args
            .node_id
            .or(file.node_id)
            .map(|n| {
                crate::ids::NodeId::parse(n.trim())
                    .map_err(|e| ConfigError(format!("node id '{}': {e}", n.trim())))
            })
            .transpose()?;
        let public_url = args
            .public_url
            .or(file.public_url)
            .map(|u| check_public_url(&u))
            .transpose()?;
        let www_dir = match args.www_dir.or(file.www_dir) {
            Some(d) if !d.is_dir() => {
                return Err(ConfigError(format!(
                    "www dir '{}' is not a directory",
                    d.display()
                )))
            }
            Some(d) => Some(d),
            None => Some(PathBuf::from("www")).filter(|d| d.join("index.html").is_file()),
        };
        let days = args
            .purge_grace_days
            .or(file.purge_grace_days)
            .unwrap_or(DEFAULT_PURGE_GRACE_DAYS);
        if days > 3650 {
            return Err(ConfigError("purge grace may be at most 3650 days".into()));
        }
        let resume = args
            .resume_grace_seconds
            .or(file.resume_grace_seconds)
            .unwrap_or(DEFAULT_RESUME_GRACE_SECONDS);
        if resume > 600 {
            return Err(ConfigError(
                "resume grace may be at most 600 seconds".into(),
            ));
        }
        let srtp_fallback = args
            .media_srtp_fallback
            .or(file.media_srtp_fallback)
            .unwrap_or(false);
        let mut media = media_config(
            args.media_ip.or(file.media_ip),
            args.media_port.or(file.media_port),
            args.media_workers.or(file.media_workers),
            args.public_ip.or(file.public_ip),
        )?;
        media.ice = ice_config(
            args.ice_servers.or(file.ice_servers),
            args.ice_username.or(file.ice_username),
            args.ice_credential.or(file.ice_credential),
            args.turn_secret.or(file.turn_secret),
            args.turn_ttl_seconds.or(file.turn_ttl_seconds),
        )?;
        media.srtp_fallback = srtp_fallback;
        let seconds = |what: &str, v: Option<u64>, default: u64| match v.unwrap_or(default) {
            s @ 1..=3600 => Ok(Duration::from_secs(s)),
            s => Err(ConfigError(format!(
                "{what} must be between 1 and 3600 seconds, not {s}"
            ))),
        };
        let http_header_timeout = seconds(
            "the HTTP header timeout",
            args.http_header_timeout_seconds
                .or(file.http_header_timeout_seconds),
            DEFAULT_HTTP_HEADER_TIMEOUT_SECONDS,
        )?;
        let http_request_timeout = seconds(
            "the HTTP request timeout",
            args.http_request_timeout_seconds
                .or(file.http_request_timeout_seconds),
            DEFAULT_HTTP_REQUEST_TIMEOUT_SECONDS,
        )?;
        let max_connections_per_ip = args
            .max_connections_per_ip
            .or(file.max_connections_per_ip)
            .unwrap_or(DEFAULT_MAX_CONNECTIONS_PER_IP);
        let allowed_origins = match args.allowed_origins.or(file.allowed_origins) {
            Some(list) => parse_origins(&list)?,
            None => Origins::Any,
        };
        let admin_key_failures = args
            .admin_key_failures
            .or(file.admin_key_failures)
            .unwrap_or(DEFAULT_ADMIN_KEY_FAILURES);
        if admin_key_failures == 0 {
            return Err(ConfigError("admin key failures must be at least 1".into()));
        }
        let metrics_listen = args
            .metrics_listen
            .or(file.metrics_listen)
            .map(|t| {
                t.trim().parse::<SocketAddr>().map_err(|_| {
                    ConfigError(format!(
                        "metrics listen address '{t}' is not an IP:port such as 127.0.0.1:9100"
                    ))
                })
            })
            .transpose()?;
        let webhooks = file.webhooks.unwrap_or_default();
        for w in &webhooks {
            check_webhook(&w.url, Some(&w.secret), &w.events)
                .map_err(|(_, why)| ConfigError(format!("[[webhooks]]: {why}")))?;
        }
        let retry_hours = file.webhook_retry_hours.unwrap_or(24);
        if !(1..=168).contains(&retry_hours) {
            return Err(ConfigError(
                "webhook_retry_hours must be between 1 and 168".into(),
            ));
        }
        Ok(Self {
            media,
            admin_key_failures,
            metrics_listen,
            webhooks,
            webhook_retry: Duration::from_secs(u64::from(retry_hours) * 3600),
            http_header_timeout,
            http_request_timeout,
            max_connections_per_ip,
            allowed_origins,
            listen,
            database_url,
            admin_key,
            redis_url,
            node_id,
            public_url,
            www_dir,
            purge_grace: chrono::Duration::days(days.into()),
            resume_grace: Duration::from_secs(resume),
            ..Self::new(data_dir)
        })
    }
}

fn media_config(
    ip: Option<String>,
    port: Option<u16>,
    workers: Option<usize>,
    public_ip: Option<String>,
) -> Result<crate::sfu::SfuConfig, ConfigError> {
    let parse_ip = |what: &str, v: &str| {
        v.trim().parse::<std::net::IpAddr>().map_err(|_| {
            ConfigError(format!(
                "{what} '{v}' is not an IP address such as 192.168.1.20"
            ))
        })
    };
    let bind_ip = match ip {
        Some(v) => parse_ip("media IP", &v)?,
        None => std::net::IpAddr::from([0, 0, 0, 0]),
    };
    let workers = workers.unwrap_or_else(crate::sfu::default_workers);
    if !(1..=256).contains(&workers) {
        return Err(ConfigError(format!(
            "media workers must be between 1 and 256, not {workers}"
        )));
    }
    let public_ip = public_ip.map(|v| parse_ip("public IP", &v)).transpose()?;
    Ok(crate::sfu::SfuConfig {
        bind_ip,
        port: port.unwrap_or(crate::sfu::DEFAULT_MEDIA_PORT),
        workers,
        public_ip,
        ice: Default::default(),
        consent_timeout: crate::sfu::DEFAULT_CONSENT_TIMEOUT,
        srtp_fallback: false,
    })
}

/// The ICE servers handed to clients: the URLs as they are, with either a fixed
/// username and credential or, given a TURN secret, credentials minted per member for
/// the turn:/turns: URLs (the stun: ones need none).
fn ice_config(
    ice: Option<String>,
    username: Option<String>,
    credential: Option<String>,
    turn_secret: Option<String>,
    turn_ttl_seconds: Option<u64>,
) -> Result<crate::model::ice::IceConfig, ConfigError> {
    use crate::model::ice::{IceConfig, TurnRest, DEFAULT_TURN_TTL};
    use convene_protocol::signal::IceServer;
    let urls: Vec<String> = ice
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(bad) = urls
        .iter()
        .find(|u| !(u.starts_with("stun:") || u.starts_with("turn:") || u.starts_with("turns:")))
    {
        return Err(ConfigError(format!(
            "ICE server '{bad}' must start with stun:, turn: or turns:"
        )));
    }
    let ttl = match turn_ttl_seconds {
        None => DEFAULT_TURN_TTL,
        Some(s @ 60..=604_800) => Duration::from_secs(s),
        Some(s) => {
            return Err(ConfigError(format!(
                "the TURN credential lifetime must be between 60 and 604800 seconds, not {s}"
            )))
        }
    };
    if turn_secret.is_none() && turn_ttl_seconds.is_some() {
        return Err(ConfigError(
            "a TURN credential lifetime needs a TURN secret (turn_secret) to mint credentials"
                .into(),
        ));
    }
    let Some(secret) = turn_secret.map(|s| s.trim().to_owned()) else {
        let fixed = if urls.is_empty() {
            vec![]
        } else {
            vec![IceServer {
                urls,
                username,
                credential,
            }]
        };
        return Ok(IceConfig { fixed, turn: None });
    };
    if secret.len() < 16 {
        return Err(ConfigError(
            "the TURN secret must be at least 16 characters".into(),
        ));
    }
    if username.is_some() || credential.is_some() {
        return Err(ConfigError(
            "give either a TURN secret (credentials per member) or a fixed ICE username and \
             credential, not both"
                .into(),
        ));
    }
    let (turn_urls, stun_urls): (Vec<String>, Vec<String>) =
        urls.into_iter().partition(|u| !u.starts_with("stun:"));
    if turn_urls.is_empty() {
        return Err(ConfigError(
            "a TURN secret needs turn: or turns: URLs in the ICE servers, \
             e.g. turn:turn.example.com:3478"
                .into(),
        ));
    }
    let fixed = if stun_urls.is_empty() {
        vec![]
    } else {
        vec![IceServer {
            urls: stun_urls,
            username: None,
            credential: None,
        }]
    };
    Ok(IceConfig {
        fixed,
        turn: Some(TurnRest {
            urls: turn_urls,
            secret: Secret::new(secret),
            ttl,
        }),
    })
}

fn parse_origins(list: &str) -> Result<Origins, ConfigError> {
    let items: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .collect();
    if items == ["*"] {
        return Ok(Origins::Any);
    }
    let mut out = vec![];
    for o in items {
        let host = o
            .strip_prefix("https://")
            .or_else(|| o.strip_prefix("http://"));
        match host {
            Some(h) if !h.is_empty() && !h.contains(['/', '*', ' ', '?', '#']) => {
                out.push(o.to_string())
            }
            _ => {
                return Err(ConfigError(format!(
                "allowed origin '{o}' must be a scheme and host such as https://app.example.com \
                     (no path), or * alone for any"
            )))
            }
        }
    }
    Ok(Origins::Only(out))
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| ConfigError(format!("{}: {}", path.display(), e.message())))
}

fn check_public_url(url: &str) -> Result<String, ConfigError> {
    let trimmed = url.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => {
            Ok(trimmed.to_string())
        }
        _ => Err(ConfigError(format!(
            "public URL '{url}' must be an http:// or https:// URL such as https://meet.example.com"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = Config::from_args(ServeArgs::default()).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert!(c.admin_key.is_none());
    }

    #[test]
    fn bad_values_are_explained() {
        let bad = |args: ServeArgs| Config::from_args(args).unwrap_err().to_string();
        assert!(bad(ServeArgs {
            listen: Some("nope".into()),
            ..Default::default()
        })
        .contains("IP:port"));
        assert!(bad(ServeArgs {
            admin_key: Some("short".into()),
            ..Default::default()
        })
        .contains("16"));
        assert!(bad(ServeArgs {
            public_url: Some("ftp://x".into()),
            ..Default::default()
        })
        .contains("http"));
        assert!(bad(ServeArgs {
            media_workers: Some(0),
            ..Default::default()
        })
        .contains("between 1 and 256"));
        assert!(bad(ServeArgs {
            ice_servers: Some("http://x".into()),
            ..Default::default()
        })
        .contains("stun:"));
        assert!(bad(ServeArgs {
            media_ip: Some("lan".into()),
            ..Default::default()
        })
        .contains("not an IP address"));
        assert!(bad(ServeArgs {
            http_header_timeout_seconds: Some(0),
            ..Default::default()
        })
        .contains("between 1 and 3600"));
        assert!(bad(ServeArgs {
            allowed_origins: Some("https://a.example/app".into()),
            ..Default::default()
        })
        .contains("no path"));
        assert!(bad(ServeArgs {
            database_url: Some("mysql://u:pw@db/convene".into()),
            ..Default::default()
        })
        .contains("postgres://"));
        let unparsable = bad(ServeArgs {
            database_url: Some("postgres://u:hunter2@db:notaport/convene".into()),
            ..Default::default()
        });
        assert!(unparsable.contains("does not parse"), "{unparsable}");
        assert!(!unparsable.contains("hunter2"), "{unparsable}");
        let c = Config::from_args(ServeArgs {
            database_url: Some(" postgres://u:pw@db:5432/convene ".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            c.database_url.map(|u| u.expose().to_string()),
            Some("postgres://u:pw@db:5432/convene".into())
        );
    }

    #[test]
    fn a_redis_url_needs_a_shared_database_and_admin_key() {
        let bad = |a: ServeArgs| Config::from_args(a).unwrap_err().0;
        let db = || Some("postgres://u:pw@db:5432/convene".to_string());
        let key = || Some("0123456789abcdef-key".to_string());
        let redis = || Some("redis://:s3cret@10.0.0.5:6379/2".to_string());
        let no_db = bad(ServeArgs {
            redis_url: redis(),
            admin_key: key(),
            ..Default::default()
        });
        assert!(no_db.contains("CONVENE_DATABASE_URL"), "{no_db}");
        let no_key = bad(ServeArgs {
            redis_url: redis(),
            database_url: db(),
            ..Default::default()
        });
        assert!(no_key.contains("CONVENE_ADMIN_KEY"), "{no_key}");
        for (url, says) in [
            ("rediss://10.0.0.5:6379", "TLS"),
            ("http://10.0.0.5:6379", "redis://"),
            ("redis://:s3cret@10.0.0.5:notaport", "not valid"),
        ] {
            let why = bad(ServeArgs {
                redis_url: Some(url.into()),
                database_url: db(),
                admin_key: key(),
                ..Default::default()
            });
            assert!(why.contains(says), "{url}: {why}");
            assert!(!why.contains("s3cret"), "{why}");
        }
        let why = bad(ServeArgs {
            node_id: Some("node 1".into()),
            ..Default::default()
        });
        assert!(why.contains("node id"), "{why}");
        let c = Config::from_args(ServeArgs {
            redis_url: redis(),
            database_url: db(),
            admin_key: key(),
            node_id: Some(" eu-1.a ".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.node_id.unwrap().as_str(), "eu-1.a");
        assert!(c.redis_url.is_some());
    }

    #[test]
    fn a_turn_secret_mints_credentials_for_the_turn_urls() {
        let c = Config::from_args(ServeArgs {
            ice_servers: Some("stun:127.0.0.1:3478, turn:127.0.0.1:3478".into()),
            turn_secret: Some("0123456789abcdef".into()),
            turn_ttl_seconds: Some(600),
            ..Default::default()
        })
        .unwrap();
        let turn = c.media.ice.turn.as_ref().expect("minted TURN");
        assert_eq!(turn.urls, ["turn:127.0.0.1:3478"]);
        assert_eq!(turn.ttl, Duration::from_secs(600));
        assert_eq!(c.media.ice.fixed[0].urls, ["stun:127.0.0.1:3478"]);
        let bad = |args: ServeArgs| Config::from_args(args).unwrap_err().to_string();
        let with = |secret: &str, urls: &str| ServeArgs {
            ice_servers: Some(urls.into()),
            turn_secret: Some(secret.into()),
            ..Default::default()
        };
        assert!(bad(with("short", "turn:t:3478")).contains("at least 16"));
        assert!(bad(with("0123456789abcdef", "stun:s:3478")).contains("needs turn:"));
        assert!(bad(ServeArgs {
            ice_credential: Some("fixed".into()),
            ..with("0123456789abcdef", "turn:t:3478")
        })
        .contains("not both"));
        assert!(bad(ServeArgs {
            turn_ttl_seconds: Some(5),
            ..with("0123456789abcdef", "turn:t:3478")
        })
        .contains("between 60 and 604800"));
        assert!(bad(ServeArgs {
            ice_servers: Some("turn:t:3478".into()),
            turn_ttl_seconds: Some(600),
            ..Default::default()
        })
        .contains("needs a TURN secret"));
        let fixed = Config::from_args(ServeArgs {
            ice_servers: Some("turn:t:3478".into()),
            ice_username: Some("u".into()),
            ice_credential: Some("p".into()),
            ..Default::default()
        })
        .unwrap();
        assert!(fixed.media.ice.turn.is_none());
        assert_eq!(fixed.media.ice.fixed[0].username.as_deref(), Some("u"));
    }

    #[test]
    fn origins_are_any_or_an_exact_list() {
        let c = Config::from_args(ServeArgs::default()).unwrap();
        assert_eq!(c.allowed_origins, Origins::Any);
        assert_eq!(c.max_connections_per_ip, 1000);
        let c = Config::from_args(ServeArgs {
            allowed_origins: Some("https://a.example, http://localhost:3000".into()),
            max_connections_per_ip: Some(0),
            ..Default::default()
        })
        .unwrap();
        assert!(c.allowed_origins.allows("https://a.example"));
        assert!(c.allowed_origins.allows("http://localhost:3000"));
        assert!(!c.allowed_origins.allows("https://evil.example"));
        assert!(!c.allowed_origins.allows("https://a.example.evil"));
        assert_eq!(c.max_connections_per_ip, 0);
    }

    #[test]
    fn media_serves_every_interface_on_one_port_by_default() {
        let c = Config::from_args(ServeArgs::default()).unwrap();
        assert!(c.media.bind_ip.is_unspecified());
        assert_eq!(c.media.port, 7882);
        assert!(c.media.workers >= 1);
        let c = Config::from_args(ServeArgs {
            media_ip: Some("127.0.0.2".into()),
            media_port: Some(40000),
            media_workers: Some(3),
            ice_servers: Some("stun:stun.example.com:3478, turn:turn.example.com".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.media.bind_ip.to_string(), "127.0.0.2");
        assert_eq!((c.media.port, c.media.workers), (40000, 3));
        assert_eq!(c.media.ice.fixed[0].urls.len(), 2);
    }

    #[test]
    fn file_fills_what_flags_leave() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\npublic_url = \"https://m.example/\"\n",
        )
        .unwrap();
        let c = Config::from_args(ServeArgs {
            config: Some(path.clone()),
            listen: Some("127.0.0.1:9001".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.listen.port(), 9001);
        assert_eq!(c.public_url.as_deref(), Some("https://m.example"));
        std::fs::write(&path, "colour = 1\n").unwrap();
        let e = Config::from_args(ServeArgs {
            config: Some(path),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
    }

    #[test]
    fn webhook_urls_are_what_the_document_says() {
        for ok in [
            "http://127.0.0.1:8080/hook",
            "https://hooks.example.com/a?b=c",
            "http://h",
        ] {
            assert!(check_webhook(ok, None, &[]).is_ok(), "{ok}");
        }
        for bad in [
            "ftp://h/x",
            "http://",
            "http://[::1]/x",
            "http://h:99999/",
            "http://h x/",
            "http://-h/",
        ] {
            assert!(check_webhook(bad, None, &[]).is_err(), "{bad}");
        }
    }
}
