//! Configuration: flags override environment variables, which override an
//! optional TOML file (`--config` / `IEUM_CONFIG`), which overrides defaults.
//! Every key is listed in README.md.

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub redis_url: Option<String>,
    pub redis_prefix: String,
    pub node_id: uuid::Uuid,
    pub presence_ttl_secs: u64,
    pub jwt_secret: JwtSecret,
    pub env: Env,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    pub login_max_failures_per_user_client: u32,
    pub login_max_failures_per_user: u32,
    pub login_max_failures_per_client: u32,
    pub login_window_secs: u64,
    pub signups_per_hour_per_client: u32,
    pub user_send_rate: u32,
    pub read_rate: u32,
    pub reaction_rate: u32,
    pub rooms_per_hour: u32,
    pub couple_code_tries_per_user: u32,
    pub couple_code_tries_per_client: u32,
    pub hash_memory_budget_mib: u32,
    pub hash_queue: usize,
    pub trust_proxy_headers: bool,
    pub trusted_proxies: Vec<crate::http::client::Network>,
    pub db_max_connections: u32,
    pub max_json_bytes: usize,
    pub shutdown_timeout_secs: u64,
    pub workers: Option<usize>,
    pub log_format: LogFormat,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub db_writers: Option<usize>,
    pub stomp_max_frame_bytes: usize,
    pub ws_preauth_max_bytes: usize,
    pub stomp_max_headers: usize,
    pub stomp_max_header_bytes: usize,
    pub stomp_heartbeat_ms: u64,
    pub stomp_partial_frame_timeout_ms: u64,
    pub stomp_connect_timeout_ms: u64,
    pub typing_interval_ms: u64,
    pub ws_outbound_queue: usize,
    pub ws_send_rate: u32,
    pub ws_max_connections: usize,
    pub ws_write_timeout_ms: u64,
    pub max_message_chars: usize,
    pub edit_window_secs: u64,
    pub delete_window_secs: u64,
    pub room_member_limit: u32,
    pub room_member_limit_max: u32,
    /// Base of the file URLs ieum serves, without a trailing slash.
    pub public_url: String,
    /// `None`: no scanner, attachments are clean with `scan: skipped`.
    pub clamd: Option<ieum_clamd::ClamdAddress>,
    /// `None`: files on the local disk.
    pub s3: Option<ieum_objects::S3Config>,
    /// `None`: attachments are kept until deleted.
    pub attachment_expiry_secs: Option<u64>,
    /// Uploads one user may begin per 10 minutes.
    pub upload_rate: u32,
    /// `None`: the attachment policy's per-type limits.
    pub upload_max_bytes: Option<u64>,
    pub upload_quota_bytes: u64,
    /// `None`: pushes are logged, not sent.
    pub fcm: Option<ieum_fcm::FcmConfig>,
    pub push: ieum_domain::push::PushPolicy,
    pub sio_ping_interval_ms: u64,
    pub sio_ping_timeout_ms: u64,
    /// `None`: the web client built into the binary.
    pub web_dir: Option<PathBuf>,
    pub allowed_origins: crate::http::origin::AllowedOrigins,
    pub audit_retention_days: u32,
    /// `None`: `/metrics` is served on `addr` with the rest.
    pub metrics_addr: Option<SocketAddr>,
    pub registration: ieum_domain::registration::Registration,
    /// Connections not signed in yet that may be open at once.
    pub ws_max_pending_handshakes: usize,
    /// Users and rooms made at start (`IEUM_SEED`).
    pub seed: Option<crate::app::Seed>,
    /// The data dir is temporary: made for this start, removed at its end.
    pub ephemeral: bool,
}

/// The longest attachment expiry: 100 years (longer overflows date arithmetic).
pub const MAX_ATTACHMENT_EXPIRY_SECS: u64 = 100 * 365 * 24 * 3600;

/// Where the token secret came from.
#[derive(Clone)]
pub enum JwtSecret {
    Configured(String),
    /// Development only: a random secret kept in the data dir so sessions survive restarts.
    DevFile(String, PathBuf),
}

impl std::fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Configured(_) => f.write_str("Configured(<redacted>)"),
            Self::DevFile(_, p) => write!(f, "DevFile({})", p.display()),
        }
    }
}

impl JwtSecret {
    pub fn bytes(&self) -> &[u8] {
        match self {
            Self::Configured(s) | Self::DevFile(s, _) => s.as_bytes(),
        }
    }
}

pub const DEV_SECRET_FILE: &str = "jwt-secret.dev";

impl Config {
    /// Reads flags and environment (and the TOML file they name).
    pub fn load(cli: Settings) -> Result<Config, ConfigError> {
        let file = match &cli.config {
            Some(path) => Settings::from_toml_file(path)?,
            None => Settings::default(),
        };
        Self::resolve(cli.over(file))
    }

    /// Applies defaults and checks the result. Production refuses a missing or
    /// development secret.
    pub fn resolve(s: Settings) -> Result<Config, ConfigError> {
        let env = s.env.unwrap_or_default();
        let ephemeral = s.ephemeral.unwrap_or(false);
        let data_dir = if ephemeral {
            if s.database_url.is_some() {
                return Err(ConfigError(
                    "IEUM_EPHEMERAL keeps the embedded SQLite database in a temporary directory: \
                     unset DATABASE_URL, or IEUM_EPHEMERAL"
                        .into(),
                ));
            }
            std::env::temp_dir().join(format!("ieum-ephemeral-{}", uuid::Uuid::new_v4().simple()))
        } else {
            s.data_dir.unwrap_or_else(|| PathBuf::from("./data"))
        };
        // An ephemeral dir made below (the dev secret) goes again if the
        // configuration is refused after all.
        let mut made = RemoveOnDrop(ephemeral.then(|| data_dir.clone()));
        let database_url = s
            .database_url
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", data_dir.join("ieum.db").display()));
        let jwt_secret = match (s.jwt_secret, env) {
            (Some(secret), Env::Production) if ieum_auth::is_development_secret(&secret) => {
                return Err(ConfigError(format!(
                    "IEUM_ENV=production refuses this IEUM_JWT_SECRET: it is shorter than {} bytes or looks like a \
                     development placeholder. Set IEUM_JWT_SECRET to a random value, e.g. `openssl rand -hex 32`.",
                    ieum_auth::MIN_SECRET_BYTES
                )));
            }
            (Some(secret), _) => JwtSecret::Configured(secret),
            (None, Env::Production) => {
                return Err(ConfigError(
                    "IEUM_ENV=production needs IEUM_JWT_SECRET: set it to a random value of at least 32 bytes, \
                     e.g. `openssl rand -hex 32`."
                        .into(),
                ));
            }
            (None, Env::Development) => dev_secret(&data_dir)?,
        };
        let positive = |name: &str, v: u64| {
            if v == 0 {
                Err(ConfigError(format!("{name} must be greater than 0")))
            } else {
                Ok(v)
            }
        };
        let addr = s.addr.unwrap_or_else(|| ([127, 0, 0, 1], 8080).into());
        let public_url = public_url(s.public_url, addr)?;
        let clamd = match s.clamd_url.filter(|url| !url.is_empty()) {
            Some(url) => Some(
                url.parse::<ieum_clamd::ClamdAddress>()
                    .map_err(|e| ConfigError(format!("IEUM_CLAMD_URL: {e}")))?,
            ),
            None => None,
        };
        let access_key = match (s.s3_access_key_id, s.s3_secret_access_key) {
            (Some(id), Some(secret)) => Some(ieum_objects::AccessKey { id, secret }),
            (None, None) => None,
            _ => {
                return Err(ConfigError(
                    "IEUM_S3_ACCESS_KEY_ID and IEUM_S3_SECRET_ACCESS_KEY go together".into(),
                ));
            }
        };
        let s3 = s
            .s3_bucket
            .filter(|bucket| !bucket.is_empty())
            .map(|bucket| ieum_objects::S3Config {
                access_key,
                bucket,
                endpoint: s.s3_endpoint.filter(|e| !e.is_empty()),
                region: s.s3_region.unwrap_or_else(|| "us-east-1".to_owned()),
                path_style: s.s3_path_style.unwrap_or(false),
                public_endpoint: s.s3_public_endpoint.filter(|e| !e.is_empty()),
            });
        let fcm = fcm(
            s.fcm_credentials_file,
            s.fcm_credentials,
            s.fcm_endpoint,
            s.fcm_token_uri,
        )?;
        let push = push_policy(
            s.push_grace_ms,
            s.push_coalesce_secs,
            s.push_lease_secs,
            s.push_max_attempts,
            s.push_retry_max_secs,
            s.push_poll_ms,
        )?;
        let allowed_origins =
            crate::http::origin::AllowedOrigins::parse(s.allowed_origins.as_deref().unwrap_or(""))
                .map_err(ConfigError)?;
        let registration = match s.registration.as_deref() {
            None | Some("") => ieum_domain::registration::Registration::Open,
            Some(text) => {
                ieum_domain::registration::Registration::parse(text).ok_or_else(|| {
                    ConfigError(format!(
                        "IEUM_REGISTRATION must be open, invite or closed, not {text:?}"
                    ))
                })?
            }
        };
        let seed = s
            .seed
            .filter(|v| !v.trim().is_empty())
            .map(|v| crate::app::Seed::load(&v))
            .transpose()
            .map_err(ConfigError)?;
        let config = Config {
            registration,
            metrics_addr: s.metrics_addr,
            audit_retention_days: s.audit_retention_days.unwrap_or(365),
            allowed_origins,
            web_dir: s.web_dir.filter(|dir| !dir.as_os_str().is_empty()),
            fcm,
            push,
            sio_ping_interval_ms: s
                .sio_ping_interval_ms
                .unwrap_or(25_000)
                .clamp(1_000, 600_000),
            sio_ping_timeout_ms: s
                .sio_ping_timeout_ms
                .unwrap_or(20_000)
                .clamp(1_000, 600_000),
            addr,
            public_url,
            clamd,
            s3,
            attachment_expiry_secs: match s.attachment_expiry_secs.filter(|secs| *secs > 0) {
                Some(secs) if secs > MAX_ATTACHMENT_EXPIRY_SECS => {
                    return Err(ConfigError(format!(
                        "attachment_expiry_secs must be at most {MAX_ATTACHMENT_EXPIRY_SECS} (100 years)"
                    )));
                }
                other => other,
            },
            upload_rate: positive("upload_rate", u64::from(s.upload_rate.unwrap_or(60)))? as u32,
            upload_max_bytes: match s.upload_max_bytes {
                Some(max) => Some(positive("upload_max_bytes", max)?),
                None => None,
            },
            upload_quota_bytes: positive(
                "upload_quota_bytes",
                s.upload_quota_bytes.unwrap_or(1024 * 1024 * 1024),
            )?,
            database_url,
            redis_url: s.redis_url.filter(|u| !u.is_empty()),
            redis_prefix: s.redis_prefix.unwrap_or_else(|| "ieum:".to_owned()),
            node_id: s.node_id.unwrap_or_else(uuid::Uuid::new_v4),
            presence_ttl_secs: s.presence_ttl_secs.unwrap_or(15).max(2),
            jwt_secret,
            env,
            access_token_ttl_secs: positive(
                "access_token_ttl_secs",
                s.access_token_ttl_secs.unwrap_or(15 * 60),
            )?,
            refresh_token_ttl_secs: positive(
                "refresh_token_ttl_secs",
                s.refresh_token_ttl_secs.unwrap_or(30 * 24 * 3600),
            )?,
            login_max_failures_per_user_client: s.login_max_failures_per_user_client.unwrap_or(5),
            login_max_failures_per_user: s.login_max_failures_per_user.unwrap_or(100),
            login_max_failures_per_client: s.login_max_failures_per_client.unwrap_or(30),
            login_window_secs: positive("login_window_secs", s.login_window_secs.unwrap_or(900))?,
            signups_per_hour_per_client: s.signups_per_hour_per_client.unwrap_or(20),
            user_send_rate: s.user_send_rate.unwrap_or(100).max(1),
            read_rate: s.read_rate.unwrap_or(20).max(1),
            reaction_rate: s.reaction_rate.unwrap_or(10).max(1),
            rooms_per_hour: s.rooms_per_hour.unwrap_or(30),
            couple_code_tries_per_user: s.couple_code_tries_per_user.unwrap_or(10),
            couple_code_tries_per_client: s.couple_code_tries_per_client.unwrap_or(30),
            hash_memory_budget_mib: s.hash_memory_budget_mib.unwrap_or(64).max(1),
            hash_queue: s.hash_queue.unwrap_or(16),
            trust_proxy_headers: s.trust_proxy_headers.unwrap_or(false),
            trusted_proxies: crate::http::client::parse_networks(
                s.trusted_proxies
                    .as_deref()
                    .unwrap_or(crate::http::client::DEFAULT_TRUSTED_PROXIES),
            )
            .map_err(ConfigError)?,
            db_max_connections: s.db_max_connections.unwrap_or(16).max(1),
            max_json_bytes: s.max_json_bytes.unwrap_or(64 * 1024),
            shutdown_timeout_secs: s.shutdown_timeout_secs.unwrap_or(30),
            workers: s.workers,
            log_format: s.log_format.unwrap_or_default(),
            argon2_memory_kib: s.argon2_memory_kib.unwrap_or(19 * 1024),
            argon2_iterations: s.argon2_iterations.unwrap_or(2),
            db_writers: s.db_writers.filter(|w| *w > 0),
            stomp_max_frame_bytes: s.stomp_max_frame_bytes.unwrap_or(64 * 1024).max(1024),
            ws_preauth_max_bytes: s.ws_preauth_max_bytes.unwrap_or(16 * 1024).max(1024),
            stomp_max_headers: s.stomp_max_headers.unwrap_or(64).max(4),
            stomp_max_header_bytes: s.stomp_max_header_bytes.unwrap_or(8 * 1024).max(256),
            stomp_heartbeat_ms: s.stomp_heartbeat_ms.unwrap_or(10_000),
            stomp_partial_frame_timeout_ms: s
                .stomp_partial_frame_timeout_ms
                .unwrap_or(5_000)
                .max(1),
            stomp_connect_timeout_ms: s.stomp_connect_timeout_ms.unwrap_or(10_000).max(1),
            typing_interval_ms: s
                .typing_interval_ms
                .unwrap_or(ieum_domain::chat::TYPING_MIN_INTERVAL_MS),
            ws_outbound_queue: s.ws_outbound_queue.unwrap_or(1024).max(1),
            ws_send_rate: s.ws_send_rate.unwrap_or(50).max(1),
            ws_max_connections: s
                .ws_max_connections
                .unwrap_or_else(crate::limits::default_max_connections)
                .max(1),
            ws_write_timeout_ms: s.ws_write_timeout_ms.unwrap_or(10_000).max(100),
            max_message_chars: s.max_message_chars.unwrap_or(4000).max(1),
            edit_window_secs: s.edit_window_secs.unwrap_or(15 * 60),
            delete_window_secs: s.delete_window_secs.unwrap_or(3600),
            room_member_limit: s.room_member_limit.unwrap_or(50).max(2),
            room_member_limit_max: s.room_member_limit_max.unwrap_or(1000).max(2),
            ws_max_pending_handshakes: s.ws_max_pending_handshakes.unwrap_or(8192).max(1),
            seed,
            ephemeral,
            data_dir,
        };
        made.0 = None;
        Ok(config)
    }
}

/// A directory removed when this drops, unless taken back out.
struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// `http(s)://host[:port][/path]` without a trailing slash; default `http://{addr}`.
fn public_url(configured: Option<String>, addr: SocketAddr) -> Result<String, ConfigError> {
    let Some(url) = configured.filter(|url| !url.is_empty()) else {
        return Ok(format!("http://{addr}"));
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') && !url.contains(['?', '#']) => {
            Ok(url.trim_end_matches('/').to_owned())
        }
        _ => Err(ConfigError(format!(
            "IEUM_PUBLIC_URL {url:?}: expected http(s)://host[:port][/path], without query or fragment"
        ))),
    }
}

mod cli;
mod files;
mod push;
mod settings;
#[cfg(test)]
mod tests;

pub use cli::{AdminCommand, Cli, Command};
use files::dev_secret;
pub use files::{private_database_file, private_dir};
use push::{fcm, push_policy};
pub use settings::{Env, LogFormat, Settings};

/// A connection URL fit for a log line: `user:password@` is left out.
pub(crate) fn without_credentials(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}
