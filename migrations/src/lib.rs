//! ieum's schema, as SeaORM migrations that run on PostgreSQL and SQLite.
//!
//! The server applies pending migrations at start; `ieum migrate` applies them
//! alone (for a Kubernetes migration Job).

pub use sea_orm_migration::prelude::*;

mod m20261124_000001_accounts;
mod m20261124_000002_rooms_messages;
mod m20261124_000003_conversations;
mod m20261124_000004_rich_messages;
mod m20261124_000005_message_write_path;
mod m20261202_000006_user_discovery;
mod m20261202_000007_attachments;
mod m20261202_000008_attachment_purpose;
mod m20261202_000009_push;
mod m20261203_000010_moderation;
mod m20261203_000011_room_mutes;
mod m20261203_000012_reports;
mod m20261203_000013_room_closures;
mod m20261203_000014_invites;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_accounts::Migration),
            Box::new(m20261124_000002_rooms_messages::Migration),
            Box::new(m20261124_000003_conversations::Migration),
            Box::new(m20261124_000004_rich_messages::Migration),
            Box::new(m20261124_000005_message_write_path::Migration),
            Box::new(m20261202_000006_user_discovery::Migration),
            Box::new(m20261202_000007_attachments::Migration),
            Box::new(m20261202_000008_attachment_purpose::Migration),
            Box::new(m20261202_000009_push::Migration),
            Box::new(m20261203_000010_moderation::Migration),
            Box::new(m20261203_000011_room_mutes::Migration),
            Box::new(m20261203_000012_reports::Migration),
            Box::new(m20261203_000013_room_closures::Migration),
            Box::new(m20261203_000014_invites::Migration),
        ]
    }
}
