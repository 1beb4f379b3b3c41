//! The node's background jobs: presence sweeps, message expiry, and the
//! attachment jobs (scan, expiry, sweep). Pushes have their own worker and
//! planner (spawned in `build_state`).

use std::sync::Arc;
use std::time::Duration;

use ieum_domain::attachments::{AttachmentService, JOB_BATCH};
use ieum_domain::chat::ChatService;
use ieum_domain::ports::{Clock, SystemClock};
use ieum_domain::social::SocialService;

use super::Background;
use crate::config::Config;

/// Presence heartbeats (and, with Redis, the sweep of dead nodes' users), and
/// the expiry of self-destructing messages (on time, also after a restart).
pub(super) fn spawn_background(
    background: &Background,
    config: &Config,
    social: &Arc<SocialService>,
    chat: &Arc<ChatService>,
    attachments: &Arc<AttachmentService>,
) {
    let sweep = std::time::Duration::from_secs((config.presence_ttl_secs / 3).max(1));
    background.spawn("presence", social.clone().run_presence_sweeper(sweep));
    background.spawn("expiry", chat.clone().run_expiry());
    background.spawn(
        "attachment-scan",
        attachment_job(Duration::from_secs(2), attachments.clone(), {
            let chat = chat.clone();
            move |service| {
                let chat = chat.clone();
                async move {
                    let round = service.scan_pending(JOB_BATCH).await?;
                    for attachment in &round.finished {
                        tracing::debug!(attachment = %attachment.id, state = attachment.state.as_str(), "attachment scanned");
                        // A lost event costs nothing durable (history reads the
                        // state); the others of the round are still told.
                        if let Err(error) = chat.file_changed(attachment).await {
                            tracing::warn!(attachment = %attachment.id, error = %error, "telling a room of a file change failed");
                        }
                    }
                    Ok(round.stopped_by.is_none() && round.finished.len() as u32 >= JOB_BATCH)
                }
            }
        }),
    );
    background.spawn(
        "attachment-expiry",
        attachment_job(Duration::from_secs(1), attachments.clone(), {
            let chat = chat.clone();
            move |service| {
                let chat = chat.clone();
                async move {
                    let expired = service.expire_due(SystemClock.now()).await?;
                    for attachment in &expired {
                        tracing::info!(attachment = %attachment.id, room = %attachment.room_id, "attachment expired");
                        // A lost event costs nothing durable (history reads the
                        // state); the others of the round are still told.
                        if let Err(error) = chat.file_changed(attachment).await {
                            tracing::warn!(attachment = %attachment.id, error = %error, "telling a room of a file change failed");
                        }
                    }
                    Ok(expired.len() as u32 >= JOB_BATCH)
                }
            }
        }),
    );
    background.spawn(
        "attachment-sweep",
        attachment_job(
            Duration::from_secs(600),
            attachments.clone(),
            |service| async move {
                let deleted = service.delete_unattached(SystemClock.now()).await?;
                if deleted > 0 {
                    tracing::info!(deleted, "uploads no message took were deleted");
                }
                Ok(deleted as u32 >= JOB_BATCH)
            },
        ),
    );
}

/// Runs `round` every `every`, at once again while it answers true (a full
/// batch). An error is logged and the loop goes on: the work stays in the
/// store for the next round.
async fn attachment_job<F, Fut>(every: Duration, service: Arc<AttachmentService>, round: F)
where
    F: Fn(Arc<AttachmentService>) -> Fut,
    Fut: std::future::Future<Output = Result<bool, ieum_domain::DomainError>>,
{
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        loop {
            match round(service.clone()).await {
                Ok(true) => continue,
                Ok(false) => break,
                Err(error) => {
                    tracing::warn!(error = %error, "attachment job round failed");
                    break;
                }
            }
        }
    }
}
