//! The SeaORM adapter: one set of entities and repositories for PostgreSQL
//! (production) and SQLite (the embedded default).

pub mod archive;
mod attachments;
mod db;
pub mod entity;
mod error;
mod invites;
mod messages;
mod moderation;
mod push;
mod rooms;
mod social;
mod sql;
mod users;

pub use attachments::SqlAttachments;
pub use db::{Backend, ConnectError, Store, StoreOptions};
pub use invites::SqlInvites;
pub use messages::{SqlMessages, WriterOptions};
pub use moderation::SqlModeration;
pub use push::{SqlDevices, SqlPush};
pub use rooms::SqlRooms;
pub use social::SqlSocial;
pub use users::{SqlRefreshTokens, SqlUsers};
