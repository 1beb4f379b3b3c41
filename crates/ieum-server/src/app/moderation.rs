//! Server moderation's wiring (issue 20): the service over the store, the
//! audit retention job, and `ieum admin ...` from the shell.

use std::sync::Arc;
use std::time::Duration;

use ieum_domain::moderation::{Actor, ModerationService, ServerRole};
use ieum_domain::ports::SystemClock;
use ieum_store::{SqlUsers, Store};

use super::BoxError;
use crate::config::{AdminCommand, Config};

pub(super) fn moderation_service(
    store: &Store,
    users: Arc<SqlUsers>,
    clock: Arc<SystemClock>,
) -> ModerationService {
    let repo = Arc::new(ieum_store::SqlModeration::new(store.clone()));
    ModerationService::new(repo.clone(), repo, users, clock)
        .with_invites(Arc::new(ieum_store::SqlInvites::new(store.clone())))
}

/// Drops audit entries past their retention, once a day (0: kept forever).
pub(super) async fn prune_audit(moderation: Arc<ModerationService>, days: u32) {
    if days == 0 {
        return;
    }
    let mut daily = tokio::time::interval(Duration::from_secs(24 * 3600));
    loop {
        daily.tick().await;
        match moderation.prune_audit(days).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, days, "audit entries past retention removed"),
            Err(e) => tracing::warn!(error = %e, "audit retention round failed"),
        }
    }
}

/// `ieum admin ...`: administration from the shell, on the configured
/// database, with no server running.
pub async fn admin(config: Config, command: AdminCommand) -> Result<(), BoxError> {
    let store = super::open_store(&config).await?;
    store.migrate().await?;
    let moderation = moderation_service(
        &store,
        Arc::new(SqlUsers::new(store.clone())),
        Arc::new(SystemClock),
    );
    let result = match command {
        AdminCommand::Grant { username, role } => {
            let role = ServerRole::parse(&role).map_err(|e| e.public_message())?;
            moderation
                .grant(&Actor::server(), &username, role)
                .await
                .map(|user| println!("{} (@{}) is now {}", user.id, user.username, role.as_str()))
                .map_err(|e| BoxError::from(e.public_message()))
        }
        AdminCommand::Invite { uses, hours } => moderation
            .create_invite(&Actor::server(), uses, hours)
            .await
            .map(|invite| {
                let until = invite
                    .expires_at
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default();
                println!(
                    "{} ({} sign-up(s), until {until})",
                    invite.code, invite.max_uses
                )
            })
            .map_err(|e| BoxError::from(e.public_message())),
    };
    store.close().await;
    result
}
