//! Every setting as flags, environment variables and TOML keys, each
//! optional so that the layers merge ([`Settings::over`]); `Config::resolve`
//! turns them into the resolved [`super::Config`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Env {
    #[default]
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Every setting, each optional so that layers can be merged.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// TOML file with any of these settings (snake_case keys).
    #[arg(long, env = "IEUM_CONFIG", global = true)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "IEUM_ADDR", global = true)]
    pub addr: Option<SocketAddr>,
    /// Directory for the SQLite database and the development secret.
    #[arg(long, env = "IEUM_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// postgres://... switches to PostgreSQL; default sqlite under the data dir.
    #[arg(long, env = "DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// redis://... for multi-node fan-out, presence and shared rate limits.
    #[arg(long, env = "REDIS_URL", global = true)]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key and channel (several deployments may share a Redis).
    #[arg(long, env = "IEUM_REDIS_PREFIX", global = true)]
    pub redis_prefix: Option<String>,
    /// This node's id in Redis (default: a new one per start).
    #[arg(long, env = "IEUM_NODE_ID", global = true)]
    pub node_id: Option<uuid::Uuid>,
    /// A node that stops refreshing its presence is gone after this long.
    #[arg(long, env = "IEUM_PRESENCE_TTL_SECS", global = true)]
    pub presence_ttl_secs: Option<u64>,
    /// HS256 secret for tokens (at least 32 bytes). Required in production.
    #[arg(long, env = "IEUM_JWT_SECRET", hide_env_values = true, global = true)]
    pub jwt_secret: Option<String>,
    /// development or production.
    #[arg(long = "env", env = "IEUM_ENV", value_enum, global = true)]
    pub env: Option<Env>,
    #[arg(long, env = "IEUM_ACCESS_TOKEN_TTL_SECS", global = true)]
    pub access_token_ttl_secs: Option<u64>,
    #[arg(long, env = "IEUM_REFRESH_TOKEN_TTL_SECS", global = true)]
    pub refresh_token_ttl_secs: Option<u64>,
    /// Login attempts for one account from one client address per window.
    #[arg(long, env = "IEUM_LOGIN_MAX_FAILURES_PER_USER_CLIENT", global = true)]
    pub login_max_failures_per_user_client: Option<u32>,
    /// Login attempts for one account from all addresses per window (a ceiling).
    #[arg(long, env = "IEUM_LOGIN_MAX_FAILURES_PER_USER", global = true)]
    pub login_max_failures_per_user: Option<u32>,
    #[arg(long, env = "IEUM_LOGIN_MAX_FAILURES_PER_CLIENT", global = true)]
    pub login_max_failures_per_client: Option<u32>,
    #[arg(long, env = "IEUM_LOGIN_WINDOW_SECS", global = true)]
    pub login_window_secs: Option<u64>,
    /// Accounts one client address may make per hour.
    #[arg(long, env = "IEUM_SIGNUPS_PER_HOUR_PER_CLIENT", global = true)]
    pub signups_per_hour_per_client: Option<u32>,
    /// Messages one user may send per second, over all connections and nodes.
    #[arg(long, env = "IEUM_USER_SEND_RATE", global = true)]
    pub user_send_rate: Option<u32>,
    /// Read receipts one user may send per second.
    #[arg(long, env = "IEUM_READ_RATE", global = true)]
    pub read_rate: Option<u32>,
    /// Reactions one user may add or remove per second.
    #[arg(long, env = "IEUM_REACTION_RATE", global = true)]
    pub reaction_rate: Option<u32>,
    /// Rooms one user may create per hour (contract A's auto-created ones too).
    #[arg(long, env = "IEUM_ROOMS_PER_HOUR", global = true)]
    pub rooms_per_hour: Option<u32>,
    /// Couple invite codes one user may try per 15 minutes.
    #[arg(long, env = "IEUM_COUPLE_CODE_TRIES_PER_USER", global = true)]
    pub couple_code_tries_per_user: Option<u32>,
    /// Couple invite codes one client address may try per 15 minutes.
    #[arg(long, env = "IEUM_COUPLE_CODE_TRIES_PER_CLIENT", global = true)]
    pub couple_code_tries_per_client: Option<u32>,
    /// Memory password hashing may hold at once; with the argon2 memory cost it
    /// sets how many hashes run in parallel.
    #[arg(long, env = "IEUM_HASH_MEMORY_BUDGET_MIB", global = true)]
    pub hash_memory_budget_mib: Option<u32>,
    /// Hash requests that may wait for a slot; the next one gets 503 at once.
    #[arg(long, env = "IEUM_HASH_QUEUE", global = true)]
    pub hash_queue: Option<usize>,
    /// Take the client address from X-Forwarded-For (behind a proxy).
    #[arg(long, env = "IEUM_TRUST_PROXY_HEADERS", global = true)]
    pub trust_proxy_headers: Option<bool>,
    /// Proxies whose X-Forwarded-For entries are believed (comma-separated
    /// addresses or CIDR networks); default: loopback and private networks.
    #[arg(long, env = "IEUM_TRUSTED_PROXIES", global = true)]
    pub trusted_proxies: Option<String>,
    #[arg(long, env = "IEUM_DB_MAX_CONNECTIONS", global = true)]
    pub db_max_connections: Option<u32>,
    #[arg(long, env = "IEUM_MAX_JSON_BYTES", global = true)]
    pub max_json_bytes: Option<usize>,
    #[arg(long, env = "IEUM_SHUTDOWN_TIMEOUT_SECS", global = true)]
    pub shutdown_timeout_secs: Option<u64>,
    #[arg(long, env = "IEUM_WORKERS", global = true)]
    pub workers: Option<usize>,
    #[arg(long, env = "IEUM_LOG_FORMAT", value_enum, global = true)]
    pub log_format: Option<LogFormat>,
    #[arg(long, env = "IEUM_ARGON2_MEMORY_KIB", global = true)]
    pub argon2_memory_kib: Option<u32>,
    #[arg(long, env = "IEUM_ARGON2_ITERATIONS", global = true)]
    pub argon2_iterations: Option<u32>,
    /// Message writer tasks (group commit); default 4 on PostgreSQL, 1 on SQLite.
    #[arg(long, env = "IEUM_DB_WRITERS", global = true)]
    pub db_writers: Option<usize>,
    /// Largest STOMP frame (command, headers and body).
    #[arg(long, env = "IEUM_STOMP_MAX_FRAME_BYTES", global = true)]
    pub stomp_max_frame_bytes: Option<usize>,
    /// Largest WebSocket frame or message before CONNECT succeeds.
    #[arg(long, env = "IEUM_WS_PREAUTH_MAX_BYTES", global = true)]
    pub ws_preauth_max_bytes: Option<usize>,
    #[arg(long, env = "IEUM_STOMP_MAX_HEADERS", global = true)]
    pub stomp_max_headers: Option<usize>,
    #[arg(long, env = "IEUM_STOMP_MAX_HEADER_BYTES", global = true)]
    pub stomp_max_header_bytes: Option<usize>,
    /// Heart-beat the server offers both ways (ms); 0 disables.
    #[arg(long, env = "IEUM_STOMP_HEARTBEAT_MS", global = true)]
    pub stomp_heartbeat_ms: Option<u64>,
    /// A frame not completed (no NUL) within this long is an error.
    #[arg(long, env = "IEUM_STOMP_PARTIAL_FRAME_TIMEOUT_MS", global = true)]
    pub stomp_partial_frame_timeout_ms: Option<u64>,
    /// A connection that has not sent CONNECT within this long is closed.
    #[arg(long, env = "IEUM_STOMP_CONNECT_TIMEOUT_MS", global = true)]
    pub stomp_connect_timeout_ms: Option<u64>,
    /// One connection's typing notices for a room: at most one per interval.
    #[arg(long, env = "IEUM_TYPING_INTERVAL_MS", global = true)]
    pub typing_interval_ms: Option<u64>,
    /// Outbound queue per connection; a consumer that falls this far behind is dropped.
    #[arg(long, env = "IEUM_WS_OUTBOUND_QUEUE", global = true)]
    pub ws_outbound_queue: Option<usize>,
    /// A write the client does not take within this long closes the connection.
    #[arg(long, env = "IEUM_WS_WRITE_TIMEOUT_MS", global = true)]
    pub ws_write_timeout_ms: Option<u64>,
    /// Sends per second per connection (burst twice that).
    #[arg(long, env = "IEUM_WS_SEND_RATE", global = true)]
    pub ws_send_rate: Option<u32>,
    /// Most WebSocket connections this node holds; the next handshake gets 503.
    /// Default: the open-files limit less a reserve for the database and files.
    #[arg(long, env = "IEUM_WS_MAX_CONNECTIONS", global = true)]
    pub ws_max_connections: Option<usize>,
    /// Authors may edit a message for this long after sending.
    #[arg(long, env = "IEUM_EDIT_WINDOW_SECS", global = true)]
    pub edit_window_secs: Option<u64>,
    /// Authors may delete a message for this long after sending (admins always).
    #[arg(long, env = "IEUM_DELETE_WINDOW_SECS", global = true)]
    pub delete_window_secs: Option<u64>,
    /// Longest message content in characters.
    #[arg(long, env = "IEUM_MAX_MESSAGE_CHARS", global = true)]
    pub max_message_chars: Option<usize>,
    /// Default member limit of a new room, and the most a room may set.
    #[arg(long, env = "IEUM_ROOM_MEMBER_LIMIT", global = true)]
    pub room_member_limit: Option<u32>,
    #[arg(long, env = "IEUM_ROOM_MEMBER_LIMIT_MAX", global = true)]
    pub room_member_limit_max: Option<u32>,
    /// ieum's public base URL, for the upload and download URLs it hands out
    /// (default: `http://{addr}`).
    #[arg(long, env = "IEUM_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// clamd to scan uploads with, `tcp://host:port` or `unix:///path`; none:
    /// attachments are clean with `scan: skipped`.
    #[arg(long, env = "IEUM_CLAMD_URL", global = true)]
    pub clamd_url: Option<String>,
    /// Largest upload in bytes, whatever its type (text files stay at 1 MiB at most).
    #[arg(long, env = "IEUM_UPLOAD_MAX_BYTES", global = true)]
    pub upload_max_bytes: Option<u64>,
    /// Bytes one user may hold in uploads.
    #[arg(long, env = "IEUM_UPLOAD_QUOTA_BYTES", global = true)]
    pub upload_quota_bytes: Option<u64>,
    /// Uploads one user may begin per 10 minutes.
    #[arg(long, env = "IEUM_UPLOAD_RATE", global = true)]
    pub upload_rate: Option<u32>,
    /// Attachments expire (their bytes are deleted, their links answer 410)
    /// this many seconds after upload; none or 0: kept until deleted.
    #[arg(long, env = "IEUM_ATTACHMENT_EXPIRY_SECS", global = true)]
    pub attachment_expiry_secs: Option<u64>,
    /// Files go to this S3 bucket instead of the local disk. Credentials come
    /// from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    /// AWS_SESSION_TOKEN, or AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN).
    #[arg(long, env = "IEUM_S3_BUCKET", global = true)]
    pub s3_bucket: Option<String>,
    /// The S3 endpoint (MinIO, R2, ...); default AWS's for the region.
    #[arg(long, env = "IEUM_S3_ENDPOINT", global = true)]
    pub s3_endpoint: Option<String>,
    #[arg(long, env = "IEUM_S3_REGION", global = true)]
    pub s3_region: Option<String>,
    /// Path-style URLs (`host/bucket/key`), as MinIO wants.
    #[arg(long, env = "IEUM_S3_PATH_STYLE", global = true)]
    pub s3_path_style: Option<bool>,
    /// The endpoint clients reach, when not the one ieum uses: presigned
    /// URLs name it.
    #[arg(long, env = "IEUM_S3_PUBLIC_ENDPOINT", global = true)]
    pub s3_public_endpoint: Option<String>,
    /// A static S3 key (with IEUM_S3_SECRET_ACCESS_KEY) over the
    /// environment's credentials.
    #[arg(long, env = "IEUM_S3_ACCESS_KEY_ID", global = true)]
    pub s3_access_key_id: Option<String>,
    #[arg(
        long,
        env = "IEUM_S3_SECRET_ACCESS_KEY",
        global = true,
        hide_env_values = true
    )]
    pub s3_secret_access_key: Option<String>,
    /// A Firebase service account's JSON key file: pushes go out through
    /// FCM. None (and no IEUM_FCM_CREDENTIALS): pushes are logged.
    #[arg(long, env = "IEUM_FCM_CREDENTIALS_FILE", global = true)]
    pub fcm_credentials_file: Option<PathBuf>,
    /// The same JSON key, inline (a Kubernetes Secret as an environment variable).
    #[arg(
        long,
        env = "IEUM_FCM_CREDENTIALS",
        global = true,
        hide_env_values = true
    )]
    pub fcm_credentials: Option<String>,
    /// FCM's base URL (default `https://fcm.googleapis.com`).
    #[arg(long, env = "IEUM_FCM_ENDPOINT", global = true)]
    pub fcm_endpoint: Option<String>,
    /// The OAuth2 token endpoint (default: the key's `token_uri`).
    #[arg(long, env = "IEUM_FCM_TOKEN_URI", global = true)]
    pub fcm_token_uri: Option<String>,
    /// How long a device has to receive a message before it is pushed.
    #[arg(long, env = "IEUM_PUSH_GRACE_MS", global = true)]
    pub push_grace_ms: Option<u64>,
    /// At most one push per room and device within this window.
    #[arg(long, env = "IEUM_PUSH_COALESCE_SECS", global = true)]
    pub push_coalesce_secs: Option<u64>,
    /// A node that claimed a push and died: another sends it after this long.
    #[arg(long, env = "IEUM_PUSH_LEASE_SECS", global = true)]
    pub push_lease_secs: Option<u64>,
    /// Sends of one push before it is given up.
    #[arg(long, env = "IEUM_PUSH_MAX_ATTEMPTS", global = true)]
    pub push_max_attempts: Option<u32>,
    /// The longest wait between retries (without a Retry-After).
    #[arg(long, env = "IEUM_PUSH_RETRY_MAX_SECS", global = true)]
    pub push_retry_max_secs: Option<u64>,
    /// How often each node looks for due pushes.
    #[arg(long, env = "IEUM_PUSH_POLL_MS", global = true)]
    pub push_poll_ms: Option<u64>,
    /// Socket.IO: the server pings each session this often...
    #[arg(long, env = "IEUM_SIO_PING_INTERVAL_MS", global = true)]
    pub sio_ping_interval_ms: Option<u64>,
    /// ...and ends one whose pong is this late.
    #[arg(long, env = "IEUM_SIO_PING_TIMEOUT_MS", global = true)]
    pub sio_ping_timeout_ms: Option<u64>,
    /// Serve the web client from this directory instead of the copy built
    /// into the binary (for working on the client without rebuilding).
    #[arg(long, env = "IEUM_WEB_DIR", global = true)]
    pub web_dir: Option<PathBuf>,
    /// Web origins besides ieum's own that may call the API and open
    /// real-time connections: comma-separated `scheme://host[:port]`, or `*`.
    #[arg(long, env = "IEUM_ALLOWED_ORIGINS", global = true)]
    pub allowed_origins: Option<String>,
    /// Days an audit entry is kept (0: forever).
    #[arg(long, env = "IEUM_AUDIT_RETENTION_DAYS", global = true)]
    pub audit_retention_days: Option<u32>,
    /// Serve `/metrics` on this address only (not on the public one).
    #[arg(long, env = "IEUM_METRICS_ADDR", global = true)]
    pub metrics_addr: Option<SocketAddr>,
    /// Who may sign up: open, invite (a code an admin made) or closed.
    #[arg(long, env = "IEUM_REGISTRATION", global = true)]
    pub registration: Option<String>,
    /// STOMP connections (WebSocket, SockJS) that may wait for their CONNECT
    /// to finish at once; an upgrade past it answers 503 with Retry-After.
    #[arg(long, env = "IEUM_WS_MAX_PENDING_HANDSHAKES", global = true)]
    pub ws_max_pending_handshakes: Option<usize>,
    /// Users and rooms to make at start (a JSON file, or the JSON itself).
    #[arg(long, env = "IEUM_SEED", global = true)]
    pub seed: Option<String>,
    /// Keep the embedded database and files in a new temporary directory,
    /// removed when the server stops: every start is a clean one.
    #[arg(long, env = "IEUM_EPHEMERAL", global = true)]
    pub ephemeral: Option<bool>,
}

macro_rules! merge_fields {
    ($hi:ident, $lo:ident; $($f:ident),+ $(,)?) => {
        Settings { config: $hi.config.or($lo.config), $($f: $hi.$f.or($lo.$f)),+ }
    };
}

impl Settings {
    /// `self` wins over `lower` field by field.
    pub fn over(self, lower: Settings) -> Settings {
        let hi = self;
        let lo = lower;
        merge_fields!(hi, lo; addr, data_dir, database_url, redis_url, jwt_secret, env,
            access_token_ttl_secs, refresh_token_ttl_secs, login_max_failures_per_user,
            login_max_failures_per_client, login_window_secs, trust_proxy_headers,
            login_max_failures_per_user_client, signups_per_hour_per_client, user_send_rate,
            read_rate, reaction_rate, rooms_per_hour, couple_code_tries_per_user,
            couple_code_tries_per_client, hash_memory_budget_mib, hash_queue, trusted_proxies,
            ws_preauth_max_bytes, typing_interval_ms,
            db_max_connections, max_json_bytes, shutdown_timeout_secs, workers, log_format,
            argon2_memory_kib, argon2_iterations, db_writers, stomp_max_frame_bytes,
            stomp_max_headers, stomp_max_header_bytes, stomp_heartbeat_ms,
            stomp_partial_frame_timeout_ms, stomp_connect_timeout_ms, ws_outbound_queue,
            ws_send_rate, ws_max_connections, max_message_chars, room_member_limit, room_member_limit_max,
            ws_write_timeout_ms, edit_window_secs, delete_window_secs, redis_prefix, node_id,
            presence_ttl_secs, public_url, clamd_url, upload_max_bytes, upload_quota_bytes,
            attachment_expiry_secs, upload_rate, s3_bucket, s3_endpoint, s3_region, s3_path_style,
            s3_public_endpoint, s3_access_key_id, s3_secret_access_key, fcm_credentials_file,
            fcm_credentials, fcm_endpoint, fcm_token_uri, push_grace_ms, push_coalesce_secs,
            push_lease_secs, push_max_attempts, push_retry_max_secs, push_poll_ms,
            sio_ping_interval_ms, sio_ping_timeout_ms, web_dir, allowed_origins, audit_retention_days,
            metrics_addr, registration, seed, ephemeral, ws_max_pending_handshakes)
    }

    pub fn from_toml_file(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))
    }
}
