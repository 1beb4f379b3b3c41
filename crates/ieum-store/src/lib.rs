//! The SeaORM adapter: one set of entities and repositories for PostgreSQL
//! (production) and SQLite (the embedded default).

mod db;
pub mod entity;
mod error;
mod users;

pub use db::{Backend, Store, StoreOptions};
pub use users::{SqlRefreshTokens, SqlUsers};
