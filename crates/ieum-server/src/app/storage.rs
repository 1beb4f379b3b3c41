//! Where files live and how they are checked: the local disk or S3, the
//! optional clamd scanner, and the attachment policy from the configuration.

use super::*;

/// The local-disk store under `{data_dir}/files`. Its token secret is
/// HMAC-SHA256(JWT secret, a fixed label): as strong as the JWT secret (which
/// production refuses in a development form), yet a leaked file token says
/// nothing about it.
pub(super) fn files(config: &Config, clock: Arc<SystemClock>) -> Result<Files, BoxError> {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(config.jwt_secret.bytes())
        .map_err(|e| format!("file token secret: {e}"))?;
    mac.update(FILE_TOKEN_LABEL);
    let token_key = TokenKey::new(&mac.finalize().into_bytes())?;
    let clock: Arc<dyn Clock> = clock;
    let store = LocalDiskStore::open(
        LocalDiskConfig {
            root: config.data_dir.join("files"),
            public_base: config.public_url.clone(),
            token_key: token_key.clone(),
        },
        clock,
    )?;
    Ok(Files { store, token_key })
}

/// S3 when `IEUM_S3_BUCKET` names a bucket; the local disk otherwise.
pub(super) fn object_store(
    config: &Config,
    files: &Files,
) -> Result<Arc<dyn ObjectStore>, BoxError> {
    match &config.s3 {
        Some(s3) => Ok(Arc::new(ieum_objects::S3Store::connect(s3.clone())?)),
        None => Ok(Arc::new(files.store.clone())),
    }
}

/// clamd when `IEUM_CLAMD_URL` names one; none: `scan: skipped`. It takes
/// streams as large as the largest upload allowed: a smaller limit would
/// refuse, and so delete, files that were accepted.
pub(super) fn scanner(
    config: &Config,
    policy: &AttachmentPolicy,
) -> Result<Option<Arc<dyn VirusScanner>>, BoxError> {
    let Some(address) = &config.clamd else {
        return Ok(None);
    };
    let limits = &policy.max_bytes;
    let largest = [
        limits.image,
        limits.video,
        limits.document,
        limits.archive,
        limits.text,
    ]
    .into_iter()
    .max()
    .unwrap_or_default();
    tracing::info!(clamd = %address, max_stream_bytes = largest, "uploads are scanned by clamd");
    let scanner = ieum_clamd::ClamdScanner::new(ieum_clamd::ClamdConfig {
        max_stream_bytes: largest,
        ..ieum_clamd::ClamdConfig::new(address.clone())
    })?;
    Ok(Some(Arc::new(scanner)))
}

/// The default policy with the configured size limit and quota.
pub(super) fn attachment_policy(config: &Config) -> AttachmentPolicy {
    let defaults = AttachmentPolicy::default();
    let max_bytes = match config.upload_max_bytes {
        Some(max) => SizeLimits {
            image: max,
            video: max,
            document: max,
            archive: max,
            text: max.min(defaults.max_bytes.text),
        },
        None => defaults.max_bytes,
    };
    AttachmentPolicy {
        max_bytes,
        quota_bytes: config.upload_quota_bytes,
        upload_rate: RateLimit::new(
            "upload-u",
            "upload_rate_limited",
            config.upload_rate,
            chrono::Duration::minutes(10),
        ),
        expires_after: config
            .attachment_expiry_secs
            .map(|secs| chrono::Duration::seconds(secs as i64)),
        ..defaults
    }
}
