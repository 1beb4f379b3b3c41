//! `IEUM_SEED`: users and rooms made before the first request, so that a
//! client team's test (a testcontainer) starts with accounts it knows. The
//! file's shape is documented in docs/TESTING-WITH-IEUM.md.
//!
//! A seed is applied once: when its first user does not exist yet. A server
//! restarted on the same data skips it (and says so). Everything a seed can
//! get wrong on its own (names, passwords, roles, room ids and shapes) is
//! checked before anything is written, so a mistake stops the start with
//! nothing half made.

use std::collections::HashMap;

use ieum_domain::auth::Principal;
use ieum_domain::moderation::{Actor, ServerRole};
use ieum_domain::ports::UserRepository;
use ieum_domain::room::{Visibility, check_client_room_id};
use ieum_domain::rooms::{CreateRoom, JoinRequest};
use ieum_domain::user::{check_password, normalize_display_name, normalize_username};
use serde::Deserialize;

use super::{AppState, BoxError};

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    #[serde(default)]
    pub users: Vec<SeedUser>,
    #[serde(default)]
    pub rooms: Vec<SeedRoom>,
}

#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SeedUser {
    pub username: String,
    pub password: String,
    pub display_name: Option<String>,
    /// A server role: admin or moderator.
    pub role: Option<String>,
}

/// Without the password: a configuration may be logged.
impl std::fmt::Debug for SeedUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeedUser")
            .field("username", &self.username)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A password in a seed: printed as `…` by Debug (a configuration may be logged).
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Redacted(pub String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("…")
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SeedKind {
    #[default]
    Group,
    Direct,
    Couple,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SeedRoom {
    #[serde(rename = "type", default)]
    pub kind: SeedKind,
    /// A group's id (the contracts' client-chosen ids); a UUID when absent.
    pub id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    /// public (default) or private.
    pub visibility: Option<String>,
    /// A group's password, which its members are joined with.
    pub password: Option<Redacted>,
    /// A group's owner.
    pub owner: Option<String>,
    /// A group's other members; a direct room's or a couple's two users.
    #[serde(default)]
    pub members: Vec<String>,
}

impl Seed {
    /// `IEUM_SEED`: the JSON itself when it starts with `{`, else a file's path.
    pub fn load(value: &str) -> Result<Seed, String> {
        let text = if value.trim_start().starts_with('{') {
            value.to_owned()
        } else {
            std::fs::read_to_string(value).map_err(|e| format!("IEUM_SEED {value}: {e}"))?
        };
        let seed: Seed = serde_json::from_str(text.trim_start_matches('\u{feff}'))
            .map_err(|e| format!("IEUM_SEED is not a seed: {e}"))?;
        seed.check()?;
        Ok(seed)
    }

    /// Every user and room is one the use cases will take, and every room
    /// names users of the seed, with the members its type needs.
    fn check(&self) -> Result<(), String> {
        let said = |e: ieum_domain::error::DomainError| e.public_message();
        for (i, u) in self.users.iter().enumerate() {
            let at = format!("IEUM_SEED users[{i}]");
            let name = normalize_username(&u.username).map_err(|e| format!("{at}: {}", said(e)))?;
            check_password(&u.password).map_err(|e| format!("{at}: {}", said(e)))?;
            normalize_display_name(u.display_name.as_deref().unwrap_or(&name))
                .map_err(|e| format!("{at}: {}", said(e)))?;
            if let Some(role) = &u.role {
                ServerRole::parse(role).map_err(|e| format!("{at}: {}", said(e)))?;
            }
            if self.users[..i]
                .iter()
                .any(|other| other.username.trim().eq_ignore_ascii_case(&name))
            {
                return Err(format!("{at}: {name:?} is named twice"));
            }
        }
        let known = |name: &String| {
            self.users
                .iter()
                .any(|u| u.username.trim().eq_ignore_ascii_case(name.trim()))
        };
        for (i, room) in self.rooms.iter().enumerate() {
            let at = format!("IEUM_SEED rooms[{i}]");
            let named = room.owner.iter().chain(&room.members);
            if let Some(stranger) = named.into_iter().find(|n| !known(n)) {
                return Err(format!("{at}: {stranger:?} is not one of the seed's users"));
            }
            match room.kind {
                SeedKind::Group if room.owner.is_none() || room.name.is_none() => {
                    return Err(format!("{at}: a group needs a name and an owner"));
                }
                SeedKind::Direct | SeedKind::Couple if room.members.len() != 2 => {
                    return Err(format!("{at}: a direct room or a couple has two members"));
                }
                _ => {}
            }
            if let Some(v) = &room.visibility
                && Visibility::parse(v).is_none()
            {
                return Err(format!("{at}: visibility is public or private, not {v:?}"));
            }
            if let Some(id) = &room.id {
                check_client_room_id(id).map_err(|e| format!("{at}: {}", said(e)))?;
            }
        }
        Ok(())
    }
}

/// Makes the seed's users and rooms through the use cases, unless its first
/// user exists already.
pub async fn apply(state: &AppState, seed: &Seed) -> Result<(), BoxError> {
    let Some(first) = seed.users.first() else {
        return Ok(());
    };
    let users = ieum_store::SqlUsers::new(state.store.clone());
    let first_name = first.username.trim().to_ascii_lowercase();
    if users.find_credentials(&first_name).await?.is_some() {
        tracing::info!(user = %first_name, "seed skipped: its first user exists already");
        return Ok(());
    }
    let mut people: HashMap<String, Principal> = HashMap::new();
    for u in &seed.users {
        let user = state
            .auth
            .provision(&u.username, &u.password, u.display_name.as_deref())
            .await
            .map_err(|e| format!("seed user {:?}: {}", u.username, e.public_message()))?;
        if let Some(role) = &u.role {
            let role = ServerRole::parse(role).map_err(|e| e.public_message())?;
            state
                .moderation
                .grant(&Actor::server(), &user.username, role)
                .await
                .map_err(|e| e.public_message())?;
        }
        people.insert(
            user.username.clone(),
            Principal {
                user_id: user.id,
                username: user.username,
            },
        );
    }
    let who = |name: &str| people[&name.trim().to_ascii_lowercase()].clone();
    for room in &seed.rooms {
        // What the file could not say wrong (a rate limit, the database) can
        // still stop a seed part-way: say how to start clean.
        let id = seed_room(state, room, &who).await.map_err(|e| {
            format!(
                "seed room {:?}: {e}; the seed stopped part-way and is not tried again on \
                 this data: start on an empty database (a new container, IEUM_EPHEMERAL)",
                room.name.as_ref().or(room.id.as_ref())
            )
        })?;
        tracing::info!(room = %id, kind = ?room.kind, "seed room made");
    }
    tracing::info!(
        users = seed.users.len(),
        rooms = seed.rooms.len(),
        "seed applied"
    );
    Ok(())
}

async fn seed_room(
    state: &AppState,
    room: &SeedRoom,
    who: &impl Fn(&str) -> Principal,
) -> Result<String, String> {
    let public = |e: ieum_domain::error::DomainError| e.public_message();
    match room.kind {
        SeedKind::Direct => {
            let (a, b) = (who(&room.members[0]), who(&room.members[1]));
            let made = state
                .rooms
                .open_direct(&a, b.user_id)
                .await
                .map_err(public)?;
            Ok(made.id)
        }
        SeedKind::Couple => {
            let (a, b) = (who(&room.members[0]), who(&room.members[1]));
            let (code, _) = state.couples.invite(&a).await.map_err(public)?;
            let (couple, _) = state
                .couples
                .join(&b, &code, "seed")
                .await
                .map_err(public)?;
            Ok(couple.id.to_string())
        }
        SeedKind::Group => {
            let owner = who(room.owner.as_deref().unwrap_or_default());
            let made = state
                .rooms
                .create_group(
                    &owner,
                    CreateRoom {
                        id: room.id.clone(),
                        name: room.name.clone().unwrap_or_default(),
                        description: room.description.clone(),
                        visibility: room.visibility.as_deref().and_then(Visibility::parse),
                        password: room.password.as_ref().map(|p| p.0.clone()),
                        ..Default::default()
                    },
                )
                .await
                .map_err(public)?;
            let invite_code = match made.visibility {
                Visibility::Private => Some(
                    state
                        .rooms
                        .rotate_invite_code(&owner, &made.id)
                        .await
                        .map_err(public)?,
                ),
                Visibility::Public => None,
            };
            for member in &room.members {
                let join = JoinRequest {
                    password: room.password.as_ref().map(|p| p.0.clone()),
                    invite_code: invite_code.clone(),
                };
                state
                    .rooms
                    .join(&who(member), &made.id, join)
                    .await
                    .map_err(public)?;
            }
            Ok(made.id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_reads_inline_and_names_its_mistakes() {
        let seed = Seed::load(
            r#"{"users":[{"username":"alice","password":"alicepass","role":"admin"},
                {"username":"bob","password":"bobpass1"}],
               "rooms":[{"id":"general","name":"General","owner":"alice","members":["bob"]},
                {"type":"couple","members":["Alice","bob"]}]}"#,
        )
        .unwrap();
        assert_eq!(seed.users.len(), 2);
        assert_eq!(seed.rooms[1].kind, SeedKind::Couple);
        let stranger = Seed::load(
            r#"{"users":[{"username":"alice","password":"alicepass"}],
               "rooms":[{"name":"x","owner":"alice","members":["carol"]}]}"#,
        )
        .unwrap_err();
        assert!(stranger.contains("\"carol\""), "{stranger}");
        let couple = Seed::load(
            r#"{"users":[{"username":"alice","password":"alicepass"}],
               "rooms":[{"type":"direct","members":["alice"]}]}"#,
        )
        .unwrap_err();
        assert!(couple.contains("two members"), "{couple}");
        let unknown = Seed::load(r#"{"users":[],"groups":[]}"#).unwrap_err();
        assert!(unknown.contains("groups"), "{unknown}");
        let role =
            Seed::load(r#"{"users":[{"username":"alice","password":"alicepass","role":"boss"}]}"#)
                .unwrap_err();
        assert!(role.starts_with("IEUM_SEED users[0]"), "{role}");
        let weak = Seed::load(
            r#"{"users":[{"username":"alice","password":"alicepass"},{"username":"bob","password":"short"}]}"#,
        )
        .unwrap_err();
        assert!(weak.starts_with("IEUM_SEED users[1]"), "{weak}");
        let twice = Seed::load(
            r#"{"users":[{"username":"alice","password":"alicepass"},{"username":"Alice","password":"alicepass"}]}"#,
        )
        .unwrap_err();
        assert!(twice.contains("twice"), "{twice}");
        let bad_id = Seed::load(
            r#"{"users":[{"username":"alice","password":"alicepass"}],
               "rooms":[{"id":"a b/c","name":"x","owner":"alice"}]}"#,
        )
        .unwrap_err();
        assert!(bad_id.starts_with("IEUM_SEED rooms[0]"), "{bad_id}");
        let secret = Seed::load(
            r#"{"users":[{"username":"alice","password":"alicepass"}],
               "rooms":[{"name":"x","owner":"alice","password":"roompass"}]}"#,
        )
        .unwrap();
        let shown = format!("{seed:?} {secret:?}");
        assert!(
            !shown.contains("alicepass") && !shown.contains("roompass"),
            "{shown}"
        );
        let missing = Seed::load("/nonexistent/seed.json").unwrap_err();
        assert!(missing.contains("/nonexistent/seed.json"), "{missing}");
    }
}
