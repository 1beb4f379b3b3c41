//! The native protocol's JSON shapes, one view per shape, built from the
//! domain's types field by field. The domain has no serde: renaming a domain
//! field changes a conversion here, never what clients read. Documented in
//! docs/PROTOCOL.md; `tests.rs` pins the JSON.
//!
//! The client contracts' fixed shapes (A, B, C) are in `crate::wire`, beside
//! the event bodies that use them.

mod attachment;
mod message;
mod room;
mod user;

#[cfg(test)]
mod tests;

pub(crate) use attachment::{AttachmentJson, AttachmentUrls, UploadJson};
pub(crate) use message::{FileJson, MessageJson, ReactionJson};
pub(crate) use room::{
    HistoryVisibilityName, MemberJson, PinPolicyName, RoleName, RoomJson, RoomSummaryJson,
    VisibilityName,
};
pub(crate) use user::{MeJson, PresenceJson, UserJson, friend_state_name};
