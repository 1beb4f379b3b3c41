//! Wiring: builds the adapters named by the configuration, hands them to the
//! use cases, and mounts the HTTP routes.

use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, HttpServer, middleware::from_fn, web};
use ieum_auth::{Argon2Hasher, Argon2Params, HashBudget, JwtCodec};
use ieum_domain::attachment::{AttachmentPolicy, SizeLimits};
use ieum_domain::attachments::{AttachmentPorts, AttachmentService};
use ieum_domain::auth::{AuthPolicy, AuthService};
use ieum_domain::chat::{ChatPorts, ChatService};
use ieum_domain::couples::CoupleService;
use ieum_domain::hub::Hub;
use ieum_domain::message::MessagePolicy;
use ieum_domain::moderation::ModerationService;
use ieum_domain::ports::{
    AttachmentRepository, Clock, LocalBus, LocalPresence, ObjectStore, PushGateway, SystemClock,
    VirusScanner,
};
use ieum_domain::push::{PushPorts, PushService};
use ieum_domain::rooms::{RoomPolicy, RoomPorts, RoomService};
use ieum_domain::social::{SocialPorts, SocialService};
use ieum_domain::throttle::{Limiter, MemoryRateCounter, RateCounter, RateLimit, RateLimits};
use ieum_objects::{LocalDiskConfig, LocalDiskStore, TokenKey};

use crate::links::FileLinks;
use ieum_store::{
    Backend, SqlAttachments, SqlDevices, SqlMessages, SqlPush, SqlRefreshTokens, SqlRooms,
    SqlSocial, SqlUsers, Store, StoreOptions, WriterOptions,
};

use crate::config::Config;

mod archive;
mod jobs;
mod moderation;
mod seed;
mod storage;
use crate::http;
pub use archive::{ExportTo, export, import, open_store};
use jobs::spawn_background;
pub use moderation::admin;
use moderation::{moderation_service, prune_audit};
pub use seed::Seed;
use storage::{attachment_policy, files, object_store, scanner};

/// Every rate limit from the configuration, counted in Redis when there is
/// one (so a user's limit holds across nodes), else in this node's memory.
fn limiter(config: &Config, clock: Arc<SystemClock>) -> Result<Limiter, BoxError> {
    use chrono::Duration as Span;
    let defaults = RateLimits::default();
    let login_window = Span::seconds(config.login_window_secs as i64);
    let with = |limit: RateLimit, max: u32, window: Span| RateLimit {
        max,
        window,
        ..limit
    };
    let limits = RateLimits {
        login_user_client: with(
            defaults.login_user_client,
            config.login_max_failures_per_user_client,
            login_window,
        ),
        login_user: with(
            defaults.login_user,
            config.login_max_failures_per_user,
            login_window,
        ),
        login_client: with(
            defaults.login_client,
            config.login_max_failures_per_client,
            login_window,
        ),
        signup_client: with(
            defaults.signup_client,
            config.signups_per_hour_per_client,
            Span::hours(1),
        ),
        send_user: with(defaults.send_user, config.user_send_rate, Span::seconds(1)),
        read_user: with(defaults.read_user, config.read_rate, Span::seconds(1)),
        reaction_user: with(
            defaults.reaction_user,
            config.reaction_rate,
            Span::seconds(1),
        ),
        room_create_user: with(
            defaults.room_create_user,
            config.rooms_per_hour,
            Span::hours(1),
        ),
        couple_code_user: with(
            defaults.couple_code_user,
            config.couple_code_tries_per_user,
            Span::minutes(15),
        ),
        couple_code_client: with(
            defaults.couple_code_client,
            config.couple_code_tries_per_client,
            Span::minutes(15),
        ),
    };
    let counter: Arc<dyn RateCounter> = match &config.redis_url {
        Some(url) => Arc::new(ieum_redis::RedisRateCounter::new(
            url,
            &config.redis_prefix,
        )?),
        None => Arc::new(MemoryRateCounter::new(100_000)),
    };
    Ok(Limiter::new(counter, clock, limits))
}

/// Everything a request handler may reach.
#[derive(Clone)]
pub struct AppState {
    /// Set to true when the node drains (SIGTERM): sessions tell their clients
    /// to reconnect elsewhere and close.
    pub drain: Arc<tokio::sync::watch::Sender<bool>>,
    /// Set when REDIS_URL is: cross-node fan-out.
    pub bus: Option<Arc<ieum_redis::RedisBus>>,
    pub auth: Arc<AuthService>,
    pub moderation: Arc<ModerationService>,
    pub rooms: Arc<RoomService>,
    pub chat: Arc<ChatService>,
    pub social: Arc<SocialService>,
    pub couples: Arc<CoupleService>,
    pub store: Store,
    pub config: Arc<Config>,
    /// WebSocket connections open on this node (capped by `ws_max_connections`).
    pub ws_connections: crate::ws::Connections,
    /// STOMP connections open but not signed in yet (capped by
    /// `ws_max_pending_handshakes`): a node behind on handshakes says so.
    pub ws_pending: crate::ws::Connections,
    /// The node's long-lived tasks, stopped on shutdown.
    pub background: Background,
    pub attachments: Arc<AttachmentService>,
    /// Devices, mutes and push preferences; its worker sends the outbox.
    pub push: Arc<PushService>,
    /// The Socket.IO sessions this node holds.
    pub sio: crate::sio::Registry,
    /// SockJS sessions carried by HTTP requests on this node.
    pub sockjs: crate::ws::sockjs::Registry,
    /// SSE tickets (keyed from the JWT secret).
    pub tickets: crate::sse::ticket::Tickets,
    /// The rate limits (shared by every node with Redis): SSE tickets are
    /// counted here to be good once.
    pub limiter: Arc<Limiter>,
    /// The embedded object store, whose presigned URLs ieum serves at `/files/{token}`.
    pub files: Files,
    /// Stable links to messages' files (`/media/...`).
    pub links: FileLinks,
}

/// Whether a transport's deliveries can be proven read (a ping the client
/// answers): only then does the session record proofs for pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proofs {
    Answered,
    /// SSE: nothing comes back, so nothing spares a push.
    None,
}

impl AppState {
    /// A session core for one real-time connection, whatever its transport,
    /// with the configured per-connection limits.
    pub fn open_session(
        &self,
        proofs: Proofs,
        transport: &'static str,
    ) -> (
        ieum_domain::session::Session,
        ieum_domain::hub::MailboxReceiver,
    ) {
        let c = &self.config;
        ieum_domain::session::Session::new(
            ieum_domain::session::SessionServices {
                auth: self.auth.clone(),
                rooms: self.rooms.clone(),
                chat: self.chat.clone(),
                social: self.social.clone(),
                push: (proofs == Proofs::Answered).then(|| self.push.clone()),
            },
            ieum_domain::session::SessionPolicy {
                send_rate: c.ws_send_rate,
                typing_interval: Duration::from_millis(c.typing_interval_ms),
                outbound_queue: c.ws_outbound_queue,
                transport,
            },
        )
    }
}

/// The local-disk store and the key of its tokens (the download handler reads
/// a token's expiry to bound how long a client may cache the file).
#[derive(Clone)]
pub struct Files {
    pub store: LocalDiskStore,
    pub token_key: TokenKey,
}

/// Long-lived tasks the node started, stopped on shutdown before the store
/// closes (a task still holding a database connection while the runtime goes
/// away is what panicked at shutdown).
#[derive(Clone, Default)]
pub struct Background(Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>);

impl Background {
    /// Spawns `task` in its own span and keeps its handle.
    pub fn spawn(
        &self,
        name: &'static str,
        task: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        use tracing::Instrument;
        let handle = tokio::spawn(task.instrument(tracing::info_span!("task", name)));
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(handle);
    }

    /// Stops every task and waits until each has ended.
    pub async fn stop(&self) {
        let handles: Vec<_> =
            std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()));
        for handle in &handles {
            handle.abort();
        }
        for handle in handles {
            let _ = handle.await;
        }
    }
}

/// Connects the database, applies migrations and builds the use cases.
pub async fn build_state(config: Config) -> Result<AppState, BoxError> {
    // Before anything records a metric: what comes earlier is lost.
    http::metrics::handle();
    crate::config::private_dir(&config.data_dir)?;
    crate::config::private_database_file(&config.database_url)?;
    let store = Store::connect(
        &config.database_url,
        &StoreOptions {
            max_connections: config.db_max_connections,
            ..StoreOptions::default()
        },
    )
    .await?;
    store.migrate().await?;
    if let Some(warning) = store.search_locale_warning().await? {
        tracing::warn!("{warning}");
    }
    let clock = Arc::new(SystemClock);
    let limiter = Arc::new(limiter(&config, clock.clone())?);
    let hasher = Arc::new(hasher(&config)?);
    let users = Arc::new(SqlUsers::new(store.clone()));
    let auth = auth_service(
        &config,
        &store,
        users.clone(),
        hasher.clone(),
        clock.clone(),
    )
    .with_limiter(limiter.clone());
    let messages = Arc::new(SqlMessages::new(
        store.clone(),
        WriterOptions {
            writers: config.db_writers.unwrap_or(match store.backend() {
                Backend::Postgres => 4,
                Backend::Sqlite => 1,
            }),
            ..WriterOptions::default()
        },
    ));
    let background = Background::default();
    let fan_out = fan_out(&config, messages.clone())?;
    let moderation = Arc::new(
        moderation_service(&store, users.clone(), clock.clone())
            .with_hub(fan_out.hub.clone())
            .with_content(messages.clone(), Arc::new(SqlRooms::new(store.clone()))),
    );
    let auth = auth
        .with_hub(fan_out.hub.clone())
        .with_moderation(moderation.clone());
    let room_repo = Arc::new(SqlRooms::new(store.clone()));
    let social_repo = Arc::new(SqlSocial::new(store.clone()));
    let rooms = Arc::new(
        RoomService::new(
            RoomPorts {
                messages: messages.clone(),
                rooms: room_repo.clone(),
                users: users.clone(),
                social: social_repo.clone(),
                couples: social_repo.clone(),
                hasher,
                hub: fan_out.hub.clone(),
                clock: clock.clone(),
            },
            RoomPolicy {
                default_member_limit: config.room_member_limit.min(config.room_member_limit_max),
                max_member_limit: config.room_member_limit_max,
            },
        )
        .with_limiter(limiter.clone())
        .with_audit(moderation.clone()),
    );
    let attachment_repo: Arc<dyn AttachmentRepository> =
        Arc::new(SqlAttachments::new(store.clone()));
    let files = files(&config, clock.clone())?;
    let policy = attachment_policy(&config);
    let attachments = Arc::new(
        AttachmentService::new(
            AttachmentPorts {
                attachments: attachment_repo.clone(),
                store: object_store(&config, &files)?,
                rooms: rooms.clone(),
                scanner: scanner(&config, &policy)?,
                images: Arc::new(ieum_images::ImageCrateProcessor::default()),
                clock: clock.clone(),
            },
            policy,
        )
        .with_limiter(limiter.clone()),
    );
    let push = Arc::new(PushService::new(
        PushPorts {
            devices: Arc::new(SqlDevices::new(store.clone())),
            outbox: Arc::new(SqlPush::new(store.clone())),
            rooms: room_repo.clone(),
            messages: messages.clone(),
            social: social_repo.clone(),
            gateway: push_gateway(&config)?,
            tokens: Arc::new(SqlRefreshTokens::new(store.clone())),
            clock: clock.clone(),
        },
        config.push,
    ));
    let chat = ChatService::new(
        ChatPorts {
            rooms: rooms.clone(),
            room_repo,
            messages,
            receipts: social_repo.clone(),
            social: social_repo.clone(),
            hub: fan_out.hub.clone(),
            clock: clock.clone(),
        },
        MessagePolicy {
            max_content_chars: config.max_message_chars,
            edit_window: chrono::Duration::seconds(config.edit_window_secs as i64),
            delete_window: chrono::Duration::seconds(config.delete_window_secs as i64),
            ..MessagePolicy::default()
        },
    )
    .with_limiter(limiter.clone())
    .with_attachments(attachments.clone())
    .with_push(push.clone());
    let social = Arc::new(SocialService::new(SocialPorts {
        social: social_repo.clone(),
        users: users.clone(),
        receipts: social_repo.clone(),
        presence: fan_out.presence,
        hub: fan_out.hub,
        clock: clock.clone(),
    }));
    let couples = CoupleService::new(
        social_repo,
        users,
        rooms.clone(),
        clock.clone(),
        chrono::Duration::hours(24),
    )
    .with_limiter(limiter.clone());
    let chat = Arc::new(chat);
    spawn_background(&background, &config, &social, &chat, &attachments);
    background.spawn(
        "audit-retention",
        prune_audit(moderation.clone(), config.audit_retention_days),
    );
    background.spawn("push", push.clone().run_worker());
    background.spawn("push-planner", push.clone().run_planner());
    let config_public_url = config.public_url.clone();
    let config_secret = config.jwt_secret.bytes().to_vec();
    Ok(AppState {
        drain: Arc::new(tokio::sync::watch::channel(false).0),
        bus: fan_out.bus,
        auth: Arc::new(auth),
        moderation,
        rooms,
        chat,
        social,
        couples: Arc::new(couples),
        store,
        config: Arc::new(config),
        ws_connections: Default::default(),
        ws_pending: Default::default(),
        background,
        attachments,
        push,
        sio: Default::default(),
        sockjs: Default::default(),
        tickets: crate::sse::ticket::Tickets::new(config_secret.as_slice()),
        limiter,
        links: FileLinks::new(&config_public_url, config_secret.as_slice()),
        files,
    })
}

/// FCM when a service account key is configured, else the log.
fn push_gateway(config: &Config) -> Result<Arc<dyn PushGateway>, BoxError> {
    match &config.fcm {
        Some(fcm) => {
            tracing::info!(project = %fcm.account.project_id, "pushes go out through FCM");
            Ok(Arc::new(ieum_fcm::FcmGateway::new(fcm.clone())?))
        }
        None => {
            tracing::info!("no FCM credentials: pushes are logged, not sent");
            Ok(Arc::new(ieum_fcm::LogGateway))
        }
    }
}

/// The label the file token secret is derived under; changing it voids every
/// upload and download URL handed out.
const FILE_TOKEN_LABEL: &[u8] = b"ieum files token v1";

/// argon2id with its admission budget.
fn hasher(config: &Config) -> Result<Argon2Hasher, BoxError> {
    let hasher = Argon2Hasher::with_budget(
        Argon2Params {
            memory_kib: config.argon2_memory_kib,
            iterations: config.argon2_iterations,
            parallelism: 1,
        },
        HashBudget {
            memory_mib: config.hash_memory_budget_mib,
            queue: config.hash_queue,
        },
    )
    .map_err(BoxError::from)?;
    tracing::info!(
        parallel = hasher.parallel(),
        queue = config.hash_queue,
        "password hashing admission"
    );
    Ok(hasher)
}

fn auth_service(
    config: &Config,
    store: &Store,
    users: Arc<SqlUsers>,
    hasher: Arc<Argon2Hasher>,
    clock: Arc<SystemClock>,
) -> AuthService {
    AuthService::new(
        users,
        Arc::new(SqlRefreshTokens::new(store.clone())),
        hasher,
        Arc::new(JwtCodec::new(config.jwt_secret.bytes())),
        clock,
        AuthPolicy {
            access_ttl: chrono::Duration::seconds(config.access_token_ttl_secs as i64),
            refresh_ttl: chrono::Duration::seconds(config.refresh_token_ttl_secs as i64),
        },
    )
    .with_registration(
        config.registration,
        Arc::new(ieum_store::SqlInvites::new(store.clone())),
    )
}

/// How events reach subscribers: this process only, or every node over Redis.
struct FanOut {
    hub: Arc<Hub>,
    bus: Option<Arc<ieum_redis::RedisBus>>,
    presence: Arc<dyn ieum_domain::ports::PresenceRegistry>,
}

fn fan_out(config: &Config, messages: Arc<SqlMessages>) -> Result<FanOut, BoxError> {
    let Some(url) = &config.redis_url else {
        return Ok(FanOut {
            hub: Hub::new(messages, Arc::new(LocalBus)),
            bus: None,
            presence: Arc::new(LocalPresence::default()),
        });
    };
    let bus = ieum_redis::RedisBus::new(url, &config.redis_prefix, config.node_id)?;
    let hub = Hub::new(messages, bus.clone());
    bus.start(hub.clone());
    let presence = ieum_redis::RedisPresence::new(
        url,
        &config.redis_prefix,
        config.node_id,
        std::time::Duration::from_secs(config.presence_ttl_secs),
    )?;
    tracing::info!(node = %config.node_id, prefix = %config.redis_prefix, "multi-node mode over Redis");
    Ok(FanOut {
        hub,
        bus: Some(bus),
        presence: Arc::new(presence),
    })
}

/// Mounts every route and the shared extractor settings.
pub fn configure(state: AppState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        let json_limit = state.config.max_json_bytes;
        if state.config.metrics_addr.is_none() {
            cfg.configure(http::metrics::routes);
        }
        cfg.app_data(web::Data::new(state))
            .app_data(http::errors::json_config(json_limit))
            .app_data(http::errors::path_config())
            .app_data(http::errors::query_config())
            .configure(http::health::routes)
            .configure(http::admin::routes)
            .configure(http::auth::routes)
            .configure(http::me::routes)
            .configure(http::rooms::routes)
            .configure(http::history::routes)
            .configure(http::social::routes)
            .configure(http::push::routes)
            .configure(http::messages::routes)
            .configure(http::contracts::routes)
            .configure(http::uploads::routes)
            .configure(http::files::routes)
            .configure(crate::ws::routes)
            .configure(crate::sio::routes)
            .configure(crate::jsonws::routes)
            .configure(crate::sse::routes)
            .configure(http::web_client::routes);
    }
}

/// The whole application: middleware, routes and the fallback.
pub fn app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let cors = http::origin::cors(state.config.allowed_origins.clone());
    // Outermost last: request ids, then the guard (which refuses other
    // origins before actix-cors answers their preflights), then CORS grants.
    App::new()
        .wrap(cors)
        .wrap(from_fn(http::guard::middleware))
        .wrap(from_fn(http::request_id::middleware))
        .configure(configure(state))
        .default_service(web::to(http::errors::not_found))
}

/// Serves until SIGINT or SIGTERM, then drains in-flight requests.
pub async fn run(config: Config) -> Result<(), BoxError> {
    tracing::info!(
        version = %env!("CARGO_PKG_VERSION"),
        mode = ?config.env,
        database = %crate::config::without_credentials(&config.database_url),
        fan_out = %config
            .redis_url
            .as_deref()
            .map_or("in-process".to_owned(), crate::config::without_credentials),
        data_dir = %config.data_dir.display(),
        files = config.s3.as_ref().map_or("local disk", |_| "S3"),
        registration = config.registration.as_str(),
        ws_max_connections = config.ws_max_connections,
        db_max_connections = config.db_max_connections,
        stomp_max_frame_bytes = config.stomp_max_frame_bytes,
        max_json_bytes = config.max_json_bytes,
        "ieum starting"
    );
    if let crate::config::JwtSecret::DevFile(_, path) = &config.jwt_secret {
        tracing::warn!(
            file = %path.display(),
            "signing tokens with the development secret generated in the data dir: \
             set IEUM_JWT_SECRET before anyone relies on this server (production refuses to start without it)"
        );
    }
    let addr = config.addr;
    let workers = config.workers;
    let shutdown = config.shutdown_timeout_secs;
    let max_ws = config.ws_max_connections;
    let metrics_addr = config.metrics_addr;
    let setup = match (
        config.database_url.starts_with("sqlite:"),
        config.redis_url.is_some(),
    ) {
        (true, false) => "embedded defaults: SQLite, in-process fan-out",
        (true, true) => "SQLite, fan-out over Redis",
        (false, false) => "PostgreSQL, in-process fan-out",
        (false, true) => "PostgreSQL, fan-out over Redis",
    };
    let seed = config.seed.clone();
    let state = build_state(config).await?;
    if let Some(seed) = &seed {
        seed::apply(&state, seed).await?;
    }
    let metrics_server = match metrics_addr {
        Some(at) => {
            let st = state.clone();
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(web::Data::new(st.clone()))
                    .configure(http::metrics::routes)
            })
            .workers(1)
            .disable_signals()
            .bind(at)
            .map_err(|e| format!("cannot listen for metrics on {at}: {e}"))?
            .run();
            tracing::info!(addr = %at, "metrics at http://{at}/metrics");
            let handle = server.handle();
            actix_web::rt::spawn(server);
            Some(handle)
        }
        None => None,
    };
    let store = state.store.clone();
    let background = state.background.clone();
    let drain = state.drain.clone();
    let connections = state.ws_connections.clone();
    let options = crate::wsio::listener::Options {
        workers,
        shutdown_timeout: shutdown,
        client_request_timeout: Duration::from_secs(30),
    };
    let listener =
        crate::wsio::listener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let addr = listener.local_addr()?;
    let server = crate::wsio::listener::serve(state, listener, &options)?;
    // One line a log-based wait (a testcontainer's) can match: "ieum ready".
    tracing::info!(
        addr = %addr,
        ws_max_connections = max_ws,
        "ieum ready on {addr} ({setup}); open http://{addr}/"
    );
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        wait_for_signal().await;
        tracing::info!("draining: closing sessions, finishing in-flight requests");
        let _ = drain.send(true);
        // Sessions end on their workers' runtimes, with their last database
        // writes; stopping the workers under them would drop those writes
        // half done (and sqlx panics dropping a connection off a runtime).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(shutdown);
        while connections.open() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        handle.stop(true).await;
    });
    server.await?;
    if let Some(metrics) = metrics_server {
        metrics.stop(true).await;
    }
    tracing::info!("stopped; ending background tasks and closing the database");
    background.stop().await;
    store.close().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The binary's top-level error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
