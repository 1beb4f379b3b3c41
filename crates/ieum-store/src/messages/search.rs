//! Search in both dialects (PostgreSQL's trigram GIN index, SQLite's FTS5)
//! and the PostgreSQL index's background flush.

use ieum_domain::message::SearchQuery;
use sea_orm::ConnectionTrait;

use crate::Store;

/// Moves the trigram index's pending list into the index proper, off the send
/// path. A GIN index with `fastupdate` collects new entries in a pending list
/// and the insert that finds the list over `gin_pending_list_limit` merges it,
/// which stalled that one send (and every send queued behind its writer) for
/// tens of milliseconds every few seconds under load. The migration raises the
/// limit to 16 MB, so the insert-time merge stays a safety valve, and this task
/// merges the list every interval on a connection of the shared pool. One node
/// at a time does it (an advisory lock); the others skip their turn.
pub(super) async fn flush_search_index(store: Store, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let sql = "SELECT CASE WHEN pg_try_advisory_xact_lock(7234012002) \
                   THEN gin_clean_pending_list('idx_messages_content_trgm') END AS pages";
        if let Err(e) = store
            .connection()
            .execute_unprepared(&format!("BEGIN; {sql}; COMMIT"))
            .await
        {
            tracing::debug!(error = %e, "search index flush failed");
        }
    }
}

/// The filters every search applies to a message row `m`.
fn common_filters(q: &SearchQuery, sql: &mut String, values: &mut Vec<sea_orm::Value>) {
    sql.push_str(" AND m.deleted_at IS NULL AND (m.expires_at IS NULL OR m.expires_at > ?) AND m.kind <> 'SYSTEM'");
    values.push(q.now.into());
    if let Some(sender) = q.sender_id {
        sql.push_str(" AND m.sender_id = ?");
        values.push(sender.into());
    }
    if let Some(from) = q.from {
        sql.push_str(" AND m.created_at >= ?");
        values.push(from.into());
    }
    if let Some(to) = q.to {
        sql.push_str(" AND m.created_at < ?");
        values.push(to.into());
    }
    if let Some((at, id)) = q.before {
        sql.push_str(" AND (m.created_at < ? OR (m.created_at = ? AND m.id < ?))");
        values.extend([at.into(), at.into(), id.into()]);
    }
}

/// PostgreSQL: one bitmap over the user's readable rooms ANDed with one over
/// the pg_trgm GIN index (three characters or more), so the work follows the
/// matches in the user's rooms, not the table's size. Someone who left a room
/// under `until_leave` reads it up to the seq at which they left.
pub(super) fn search_sql_postgres(q: &SearchQuery) -> (String, Vec<sea_orm::Value>) {
    let readable = "FROM room_members rm JOIN rooms r ON r.id = rm.room_id WHERE rm.user_id = ? \
        AND (rm.state = 'active' OR (rm.state = 'left' AND r.history_visibility IN ('all', 'until_leave')))";
    let mut values: Vec<sea_orm::Value> = vec![q.user_id.into()];
    let mut sql = format!(
        "SELECT m.* FROM messages m WHERE m.room_id = ANY (ARRAY(SELECT rm.room_id {readable}"
    );
    if let Some(room) = &q.room_id {
        sql.push_str(" AND rm.room_id = ?");
        values.push(room.as_str().into());
    }
    sql.push_str(&format!(
        ")) AND m.seq <= COALESCE((SELECT CASE WHEN rm.state = 'active' OR r.history_visibility = 'all' \
         THEN NULL ELSE COALESCE(rm.left_seq, 0) END {readable} AND rm.room_id = m.room_id), m.seq)"
    ));
    values.push(q.user_id.into());
    common_filters(q, &mut sql, &mut values);
    sql.push_str(
        " AND m.content ILIKE ? ESCAPE '\\' ORDER BY m.created_at DESC, m.id DESC LIMIT ?",
    );
    values.push(format!("%{}%", escape_like(&q.text)).into());
    values.push(i64::from(q.limit.max(1)).into());
    (sql, values)
}

/// SQLite: the trigram FTS5 index finds substrings of three characters or
/// more; shorter ones are a LIKE within the user's rooms.
pub(super) fn search_sql_sqlite(q: &SearchQuery) -> (String, Vec<sea_orm::Value>) {
    let mut sql = String::from(
        "SELECT m.* FROM messages m \
         JOIN room_members rm ON rm.room_id = m.room_id AND rm.user_id = ? \
         JOIN rooms r ON r.id = m.room_id \
         WHERE (rm.state = 'active' OR (rm.state = 'left' AND (r.history_visibility = 'all' \
              OR (r.history_visibility = 'until_leave' AND m.seq <= COALESCE(rm.left_seq, 0)))))",
    );
    let mut values: Vec<sea_orm::Value> = vec![q.user_id.into()];
    if let Some(room) = &q.room_id {
        sql.push_str(" AND m.room_id = ?");
        values.push(room.as_str().into());
    }
    common_filters(q, &mut sql, &mut values);
    if q.text.chars().count() >= 3 {
        sql.push_str(" AND m.rowid IN (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?)");
        values.push(format!("\"{}\"", q.text.replace('"', "\"\"")).into());
    } else {
        sql.push_str(" AND m.content LIKE ? ESCAPE '\\'");
        values.push(format!("%{}%", escape_like(&q.text)).into());
    }
    sql.push_str(" ORDER BY m.created_at DESC, m.id DESC LIMIT ?");
    values.push(i64::from(q.limit.max(1)).into());
    (sql, values)
}

/// `%`, `_` and `\` are text, not patterns.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
