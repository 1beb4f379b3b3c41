//! Wiring: builds the adapters named by the configuration, hands them to the
//! use cases, and mounts the HTTP routes.

use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, HttpServer, middleware::from_fn, web};
use ieum_auth::{Argon2Hasher, Argon2Params, JwtCodec};
use ieum_domain::auth::{AuthPolicy, AuthService};
use ieum_domain::chat::ChatService;
use ieum_domain::couples::CoupleService;
use ieum_domain::hub::Hub;
use ieum_domain::message::MessagePolicy;
use ieum_domain::ports::{LocalBus, LocalPresence, SystemClock};
use ieum_domain::rooms::{RoomPolicy, RoomService};
use ieum_domain::social::SocialService;
use ieum_domain::throttle::ThrottleConfig;
use ieum_store::{
    Backend, SqlMessages, SqlRefreshTokens, SqlRooms, SqlSocial, SqlUsers, Store, StoreOptions,
    WriterOptions,
};

use crate::config::Config;
use crate::http;

/// Everything a request handler may reach.
#[derive(Clone)]
pub struct AppState {
    /// Set to true when the node drains (SIGTERM): sessions tell their clients
    /// to reconnect elsewhere and close.
    pub drain: Arc<tokio::sync::watch::Sender<bool>>,
    /// Set when REDIS_URL is: cross-node fan-out.
    pub bus: Option<Arc<ieum_redis::RedisBus>>,
    pub auth: Arc<AuthService>,
    pub rooms: Arc<RoomService>,
    pub chat: Arc<ChatService>,
    pub social: Arc<SocialService>,
    pub couples: Arc<CoupleService>,
    pub store: Store,
    pub config: Arc<Config>,
    /// WebSocket connections open on this node (capped by `ws_max_connections`).
    pub ws_connections: crate::ws::Connections,
}

/// Connects the database, applies migrations and builds the use cases.
pub async fn build_state(config: Config) -> Result<AppState, BoxError> {
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
    let hasher = Argon2Hasher::new(Argon2Params {
        memory_kib: config.argon2_memory_kib,
        iterations: config.argon2_iterations,
        parallelism: 1,
    })
    .map_err(BoxError::from)?;
    let window = chrono::Duration::seconds(config.login_window_secs as i64);
    let policy = AuthPolicy {
        access_ttl: chrono::Duration::seconds(config.access_token_ttl_secs as i64),
        refresh_ttl: chrono::Duration::seconds(config.refresh_token_ttl_secs as i64),
        per_username: ThrottleConfig {
            max_failures: config.login_max_failures_per_user,
            window,
            capacity: 100_000,
        },
        per_client: ThrottleConfig {
            max_failures: config.login_max_failures_per_client,
            window,
            capacity: 100_000,
        },
    };
    let clock = Arc::new(SystemClock);
    let hasher = Arc::new(hasher);
    let users = Arc::new(SqlUsers::new(store.clone()));
    let mut auth = AuthService::new(
        users.clone(),
        Arc::new(SqlRefreshTokens::new(store.clone())),
        hasher.clone(),
        Arc::new(JwtCodec::new(config.jwt_secret.bytes())),
        clock.clone(),
        policy,
    );
    if let Some(url) = &config.redis_url {
        // Login throttling counted across every node.
        let p = &config.redis_prefix;
        auth = auth.with_counters(
            Arc::new(ieum_redis::RedisFailureCounter::new(
                url,
                p,
                "login-user",
                policy.per_username,
            )?),
            Arc::new(ieum_redis::RedisFailureCounter::new(
                url,
                p,
                "login-client",
                policy.per_client,
            )?),
        );
    }
    let writers = config.db_writers.unwrap_or(match store.backend() {
        Backend::Postgres => 4,
        Backend::Sqlite => 1,
    });
    let messages = Arc::new(SqlMessages::new(
        store.clone(),
        WriterOptions {
            writers,
            ..WriterOptions::default()
        },
    ));
    let (hub, bus, presence): (_, _, Arc<dyn ieum_domain::ports::PresenceRegistry>) = match &config
        .redis_url
    {
        Some(url) => {
            let bus = ieum_redis::RedisBus::new(url, &config.redis_prefix, config.node_id)?;
            let hub = Hub::new(messages.clone(), bus.clone());
            bus.start(hub.clone());
            let presence = ieum_redis::RedisPresence::new(
                url,
                &config.redis_prefix,
                config.node_id,
                std::time::Duration::from_secs(config.presence_ttl_secs),
            )?;
            tracing::info!(node = %config.node_id, prefix = %config.redis_prefix, "multi-node mode over Redis");
            (hub, Some(bus), Arc::new(presence) as Arc<_>)
        }
        None => (
            Hub::new(messages.clone(), Arc::new(LocalBus)),
            None,
            Arc::new(LocalPresence::default()) as Arc<_>,
        ),
    };
    let room_repo = Arc::new(SqlRooms::new(store.clone()));
    let social_repo = Arc::new(SqlSocial::new(store.clone()));
    let rooms = Arc::new(RoomService::new(
        messages.clone(),
        room_repo.clone(),
        users.clone(),
        social_repo.clone(),
        hasher,
        hub.clone(),
        clock.clone(),
        RoomPolicy {
            default_member_limit: config.room_member_limit.min(config.room_member_limit_max),
            max_member_limit: config.room_member_limit_max,
        },
    ));
    let chat = ChatService::new(
        rooms.clone(),
        room_repo,
        messages,
        social_repo.clone(),
        social_repo.clone(),
        hub.clone(),
        clock.clone(),
        MessagePolicy {
            max_content_chars: config.max_message_chars,
            edit_window: chrono::Duration::seconds(config.edit_window_secs as i64),
            delete_window: chrono::Duration::seconds(config.delete_window_secs as i64),
            ..MessagePolicy::default()
        },
    );
    let social = SocialService::new(
        social_repo.clone(),
        users.clone(),
        social_repo.clone(),
        presence,
        hub,
        clock.clone(),
    );
    let social = Arc::new(social);
    // Presence heartbeats (and, with Redis, the sweep of dead nodes' users).
    let sweep = std::time::Duration::from_secs((config.presence_ttl_secs / 3).max(1));
    tokio::spawn(social.clone().run_presence_sweeper(sweep));
    let couples = CoupleService::new(social_repo, users, clock, chrono::Duration::hours(24));
    let chat = Arc::new(chat);
    // Self-destructing messages expire on time, also after a restart.
    tokio::spawn(chat.clone().run_expiry());
    Ok(AppState {
        drain: Arc::new(tokio::sync::watch::channel(false).0),
        bus,
        auth: Arc::new(auth),
        rooms,
        chat,
        social,
        couples: Arc::new(couples),
        store,
        config: Arc::new(config),
        ws_connections: Default::default(),
    })
}

/// Mounts every route and the shared extractor settings.
pub fn configure(state: AppState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        let json_limit = state.config.max_json_bytes;
        cfg.app_data(web::Data::new(state))
            .app_data(http::errors::json_config(json_limit))
            .app_data(http::errors::path_config())
            .app_data(http::errors::query_config())
            .configure(http::health::routes)
            .configure(http::auth::routes)
            .configure(http::me::routes)
            .configure(http::rooms::routes)
            .configure(http::history::routes)
            .configure(http::social::routes)
            .configure(http::messages::routes)
            .configure(http::contracts::routes)
            .configure(crate::ws::routes)
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
    App::new()
        .wrap(from_fn(http::request_id::middleware))
        .configure(configure(state))
        .default_service(web::to(http::errors::not_found))
}

/// Serves until SIGINT or SIGTERM, then drains in-flight requests.
pub async fn run(config: Config) -> Result<(), BoxError> {
    let addr = config.addr;
    let workers = config.workers;
    let shutdown = config.shutdown_timeout_secs;
    let max_ws = config.ws_max_connections;
    let state = build_state(config).await?;
    let store = state.store.clone();
    let drain = state.drain.clone();
    let mut server = HttpServer::new(move || app(state.clone()))
        .disable_signals()
        .shutdown_timeout(shutdown)
        .client_request_timeout(Duration::from_secs(30));
    if let Some(w) = workers {
        server = server.workers(w);
    }
    let server = server
        .bind(addr)
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    for a in server.addrs() {
        tracing::info!(
            addr = %a,
            ws_max_connections = max_ws,
            "ieum listening; open http://{a}/"
        );
    }
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        wait_for_signal().await;
        tracing::info!("draining: closing sessions, finishing in-flight requests");
        let _ = drain.send(true);
        handle.stop(true).await;
    });
    server.await?;
    tracing::info!("stopped; closing the database");
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
