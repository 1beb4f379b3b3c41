//! `/files/{token}`: the embedded object store's presigned URLs, served by
//! ieum itself. The token (an expiring HMAC grant, see ieum-objects) is the
//! only credential: no bearer token is asked for, as with S3's presigned URLs.
//!
//! A PUT's body is read only after the token allows it, and goes to disk
//! chunk by chunk (the store's `PutWriter`), so no upload sits in memory; a
//! body growing past the bound length is refused at that chunk, and the
//! store keeps the bytes only when the length and type are exact. A GET
//! answers the object as the token says (detected type, disposition), with a
//! single `Range` and a cache lifetime that never outlives the token.

use std::io::{self, Read, Seek, SeekFrom};

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use futures_util::StreamExt;
use ieum_domain::attachment::TransferMethod;
use ieum_objects::{TokenError, TransferError, content_disposition};

use crate::app::AppState;
use crate::http::errors::problem_response;

/// How much of a file one read of a download takes.
const CHUNK_BYTES: u64 = 64 * 1024;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/files/{token}", web::put().to(put))
        .route("/files/{token}", web::get().to(get));
}

async fn put(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
    mut payload: web::Payload,
) -> HttpResponse {
    let store = &state.files.store;
    let now = Utc::now();
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let length = match store.authorize_put(&token, content_type, now) {
        Ok(length) => length,
        Err(error) => return transfer_problem(&error),
    };
    if let Some(declared) = content_length(&req).filter(|declared| *declared > length) {
        return transfer_problem(&TransferError::WrongLength {
            expected: length,
            got: declared,
        });
    }
    let mut writer = match store.begin_put(&token, content_type, now).await {
        Ok(writer) => writer,
        Err(error) => return transfer_problem(&error),
    };
    while let Some(chunk) = payload.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(error) => {
                return problem_response(
                    StatusCode::BAD_REQUEST,
                    "invalid_body",
                    format!("the upload could not be read: {error}"),
                );
            }
        };
        if let Err(error) = writer.write(chunk.to_vec()).await {
            return transfer_problem(&error);
        }
    }
    match writer.finish().await {
        Ok(()) => HttpResponse::Ok().finish(),
        Err(error) => transfer_problem(&error),
    }
}

async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> HttpResponse {
    let now = Utc::now();
    let grant = match state
        .files
        .token_key
        .verify(&token, TransferMethod::Get, now)
    {
        Ok(grant) => grant,
        Err(error) => return transfer_problem(&TransferError::Token(error)),
    };
    let download = match state.files.store.open_get(&token, now).await {
        Ok(download) => download,
        Err(error) => return transfer_problem(&error),
    };
    let total = download.length;
    let (status, start, length) = match requested_range(&req, total) {
        Range::Whole => (StatusCode::OK, 0, total),
        Range::Part { first, last } => (StatusCode::PARTIAL_CONTENT, first, last - first + 1),
        Range::Unsatisfiable => {
            let mut res = problem_response(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("the file has {total} bytes"),
            );
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{total}")) {
                res.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return res;
        }
    };
    let max_age = (grant.expires_at - now).num_seconds().max(0);
    let mut res = HttpResponse::build(status);
    res.insert_header((header::CONTENT_TYPE, download.content_type.as_str()))
        .insert_header((
            header::CONTENT_DISPOSITION,
            content_disposition(download.disposition, &download.file_name),
        ))
        .insert_header((header::CACHE_CONTROL, format!("private, max-age={max_age}")))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    if status == StatusCode::PARTIAL_CONTENT {
        res.insert_header((
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{total}", start + length - 1),
        ));
    }
    res.no_chunking(length)
        .streaming(file_stream(download.file, start, length))
}

/// `length` bytes of `file` from `start`, read off the async workers.
fn file_stream(
    file: std::fs::File,
    start: u64,
    length: u64,
) -> impl futures_util::Stream<Item = io::Result<web::Bytes>> {
    let first = (Some(file), start, length);
    futures_util::stream::unfold(first, |(file, offset, remaining)| async move {
        let mut file = file.filter(|_| remaining > 0)?;
        let want = remaining.min(CHUNK_BYTES);
        let read = tokio::task::spawn_blocking(move || {
            file.seek(SeekFrom::Start(offset))?;
            let mut buffer = vec![0; want as usize];
            file.read_exact(&mut buffer)?;
            Ok::<_, io::Error>((file, buffer))
        })
        .await
        .unwrap_or_else(|join| Err(io::Error::other(join)));
        match read {
            Ok((file, buffer)) => Some((
                Ok(web::Bytes::from(buffer)),
                (Some(file), offset + want, remaining - want),
            )),
            Err(error) => {
                tracing::error!(error = %error, "reading a stored file failed");
                Some((Err(error), (None, offset, 0)))
            }
        }
    })
}

/// What a `Range` header asks of a `total`-byte file.
#[derive(Debug, PartialEq, Eq)]
enum Range {
    /// No header, or one this server ignores (several ranges, other units,
    /// bad syntax), as RFC 9110 allows: the whole file.
    Whole,
    Part {
        first: u64,
        last: u64,
    },
    Unsatisfiable,
}

fn requested_range(req: &HttpRequest, total: u64) -> Range {
    match req
        .headers()
        .get(header::RANGE)
        .and_then(|value| value.to_str().ok())
    {
        Some(value) => parse_range(value, total),
        None => Range::Whole,
    }
}

/// One `bytes=first-last`, `bytes=first-` or `bytes=-suffix`.
fn parse_range(value: &str, total: u64) -> Range {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Range::Whole;
    };
    if spec.contains(',') {
        return Range::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Range::Whole;
    };
    let number = |text: &str| text.trim().parse::<u64>().ok();
    match (first.trim().is_empty(), last.trim().is_empty()) {
        // A suffix: the last `n` bytes.
        (true, false) => match number(last) {
            Some(0) => Range::Unsatisfiable,
            Some(suffix) if total > 0 => Range::Part {
                first: total.saturating_sub(suffix),
                last: total - 1,
            },
            Some(_) => Range::Unsatisfiable,
            None => Range::Whole,
        },
        (false, open_ended) => {
            let Some(first) = number(first) else {
                return Range::Whole;
            };
            let last = if open_ended {
                None
            } else {
                match number(last) {
                    Some(last) if last >= first => Some(last),
                    _ => return Range::Whole,
                }
            };
            if first >= total {
                return Range::Unsatisfiable;
            }
            Range::Part {
                first,
                last: last.map_or(total - 1, |last| last.min(total - 1)),
            }
        }
        (true, true) => Range::Whole,
    }
}

fn content_length(req: &HttpRequest) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The status and code of a refused transfer, as problem+json.
fn transfer_problem(error: &TransferError) -> HttpResponse {
    let (status, code) = match error {
        TransferError::Token(TokenError::Expired(_)) => (StatusCode::GONE, "expired"),
        TransferError::Token(_) | TransferError::Key(_) => (StatusCode::FORBIDDEN, "bad_token"),
        TransferError::WrongContentType { .. } => {
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_type")
        }
        TransferError::WrongLength { expected, got } if got > expected => {
            (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
        }
        TransferError::WrongLength { .. } => (StatusCode::BAD_REQUEST, "size_mismatch"),
        // The token was genuine, the object is gone (expired or deleted).
        TransferError::Missing => (StatusCode::GONE, "gone"),
        // The upload directory's disk is full: nothing was kept (the staged
        // file goes), and the same PUT succeeds once space is freed.
        TransferError::Io(io_error)
            if matches!(
                io_error.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            ) =>
        {
            tracing::error!(error = %io_error, "the upload directory's disk is full");
            return problem_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_full",
                "the server's disk is full; try again later".into(),
            );
        }
        TransferError::Io(io_error) => {
            tracing::error!(error = %io_error, "object store failed");
            return problem_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the file could not be stored or read".into(),
            );
        }
    };
    problem_response(status, code, error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_range_of_each_form() {
        assert_eq!(
            parse_range("bytes=0-3", 10),
            Range::Part { first: 0, last: 3 }
        );
        assert_eq!(
            parse_range("bytes=4-", 10),
            Range::Part { first: 4, last: 9 }
        );
        assert_eq!(
            parse_range("bytes=-3", 10),
            Range::Part { first: 7, last: 9 }
        );
        assert_eq!(
            parse_range("bytes=5-100", 10),
            Range::Part { first: 5, last: 9 }
        );
    }

    #[test]
    fn ranges_past_the_end_are_unsatisfiable_and_odd_ones_ignored() {
        assert_eq!(parse_range("bytes=10-12", 10), Range::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 10), Range::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,4-5", 10), Range::Whole);
        assert_eq!(parse_range("bytes=5-2", 10), Range::Whole);
        assert_eq!(parse_range("items=0-1", 10), Range::Whole);
    }
}
