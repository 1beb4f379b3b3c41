//! SeaORM entities (2.0 dense format), one per table.

pub mod message;
pub mod refresh_token;
pub mod room;
pub mod room_member;
pub mod user;
