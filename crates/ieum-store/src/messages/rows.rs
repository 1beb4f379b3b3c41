//! Rows into domain types, and the small statement helpers the port uses.

use ieum_domain::message::{Message, MessageFile, MessageKind};
use ieum_domain::{DomainError, DomainResult};
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::entity::message;
use crate::error::{db_err, is_unique_violation};
use crate::sql::stmt;

use super::SqlMessages;

pub(crate) fn to_message(m: message::Model) -> DomainResult<Message> {
    Ok(Message {
        kind: MessageKind::parse(&m.kind)
            .ok_or_else(|| DomainError::Internal("stored message kind is not readable".into()))?,
        id: m.id,
        room_id: m.room_id,
        seq: m.seq,
        sender_id: m.sender_id,
        sender_username: m.sender_username,
        sender_name: m.sender_name,
        sender_image: m.sender_image,
        content: m.content,
        image_url: m.image_url,
        file: None,
        client_msg_id: m.client_msg_id,
        created_at: m.created_at,
        read_at: m.read_at,
        parent_id: m.parent_id,
        reply_count: m.reply_count,
        last_reply_at: m.last_reply_at,
        edited_at: m.edited_at,
        deleted: m.deleted_at.is_some(),
        expires_at: m.expires_at,
        mentions: Vec::new(),
        reactions: Vec::new(),
    })
}

pub(super) fn get<T: sea_orm::TryGetable>(
    row: &sea_orm::QueryResult,
    col: &str,
) -> DomainResult<T> {
    row.try_get::<T>("", col)
        .map_err(|e| DomainError::Internal(format!("reading {col}: {e}")))
}

/// A statement with its values.
type Sql<'a> = (&'a str, Vec<sea_orm::Value>);

impl SqlMessages {
    /// Inserts (`on`) or deletes one row; true when something changed. An insert
    /// that meets the row already there changes nothing.
    pub(super) async fn toggle_row(
        &self,
        on: bool,
        insert: Sql<'_>,
        delete: Sql<'_>,
    ) -> DomainResult<bool> {
        let db = self.store.connection();
        let (sql, values) = if on { insert } else { delete };
        match db
            .execute_raw(stmt(db.get_database_backend(), sql, values))
            .await
        {
            Ok(r) => Ok(r.rows_affected() == 1),
            Err(e) if on && is_unique_violation(&e) => Ok(false),
            Err(e) => Err(db_err(e)),
        }
    }

    /// Fills what other tables hold of these messages: their mentions and
    /// their files.
    pub(super) async fn fill_details(&self, msgs: &mut [Message]) -> DomainResult<()> {
        self.attach_mentions(msgs).await?;
        let ids: Vec<Uuid> = msgs
            .iter()
            .filter(|m| matches!(m.kind, MessageKind::Image | MessageKind::File))
            .map(|m| m.id)
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        for (message_id, attachment) in crate::attachments::referenced_by(&self.store, &ids).await?
        {
            if let Some(m) = msgs.iter_mut().find(|m| m.id == message_id) {
                m.file = Some(MessageFile::from(&attachment));
            }
        }
        Ok(())
    }

    async fn attach_mentions(&self, msgs: &mut [Message]) -> DomainResult<()> {
        let ids: Vec<Uuid> = msgs.iter().map(|m| m.id).collect();
        if ids.is_empty() {
            return Ok(());
        }
        let db = self.store.connection();
        for chunk in ids.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let rows = db
                .query_all_raw(stmt(
                    db.get_database_backend(),
                    &format!(
                        "SELECT message_id, user_id FROM mentions WHERE message_id IN ({marks})"
                    ),
                    chunk.iter().map(|id| (*id).into()).collect(),
                ))
                .await
                .map_err(db_err)?;
            for r in rows {
                let (mid, user): (Uuid, Uuid) = (get(&r, "message_id")?, get(&r, "user_id")?);
                if let Some(m) = msgs.iter_mut().find(|m| m.id == mid) {
                    m.mentions.push(user);
                }
            }
        }
        Ok(())
    }
}
