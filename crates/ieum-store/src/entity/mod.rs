//! SeaORM entities (2.0 dense format), one per table.

pub mod refresh_token;
pub mod user;
