//! The S3-compatible object store: AWS S3, MinIO, R2, s3s and friends.
//!
//! Two crates, each for what it does best (docs/ARCHITECTURE.md says why):
//! `object_store` (Apache Arrow's) talks to the bucket: puts, reads and
//! deletes, retries, and credentials from the environment (`AWS_ACCESS_KEY_ID`
//! and friends, a web identity token on Kubernetes with
//! `AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_ARN`, ECS and EC2 metadata).
//! `rusty-s3` (sans-IO) presigns the URLs clients use, with the credential
//! `object_store` holds at that moment: unlike `object_store`'s signer it
//! signs `Content-Length`, so a presigned PUT is refused by the storage
//! itself when the body is longer or shorter than declared.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::{Duration, Utc};
use ieum_domain::attachment::{PresignedRequest, ServeAs, TransferMethod};
use ieum_domain::ports::{Fetched, ObjectStore};
use ieum_domain::{DomainError, DomainResult};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, ObjectStore as _, ObjectStoreExt, PutOptions, PutPayload,
};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

use crate::content_disposition;

/// Where the bucket is. Credentials come from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    /// `https://s3.{region}.amazonaws.com` when `None`.
    pub endpoint: Option<String>,
    pub region: String,
    /// `https://host/bucket/key` instead of `https://bucket.host/key`
    /// (MinIO and most self-hosted servers want it).
    pub path_style: bool,
    /// The endpoint clients reach, when it is not the one ieum uses (a
    /// cluster-internal service name): presigned URLs name it.
    pub public_endpoint: Option<String>,
    /// A static key, over whatever the environment holds; `None`: the
    /// environment's credentials (keys, web identity, instance metadata).
    pub access_key: Option<AccessKey>,
}

/// An access key id and its secret.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessKey {
    pub id: String,
    pub secret: String,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Why the S3 store could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum S3SetupError {
    #[error("S3 endpoint {endpoint:?}: {reason}")]
    Endpoint { endpoint: String, reason: String },
    #[error("S3 client: {0}")]
    Client(#[from] object_store::Error),
}

/// The [`ObjectStore`] port over an S3 bucket.
#[derive(Clone)]
pub struct S3Store {
    client: Arc<AmazonS3>,
    /// The bucket as clients reach it, for presigning.
    public: Bucket,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store")
            .field("bucket", &self.public.name())
            .finish_non_exhaustive()
    }
}

impl S3Store {
    /// Builds the client; nothing is sent until the first request.
    pub fn connect(config: S3Config) -> Result<Self, S3SetupError> {
        // reqwest takes the process's rustls provider; ring is the one the
        // workspace builds. Already installed (a second store): fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let endpoint = config
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", config.region));
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_virtual_hosted_style_request(!config.path_style);
        if let Some(key) = &config.access_key {
            builder = builder
                .with_access_key_id(&key.id)
                .with_secret_access_key(&key.secret);
        }
        if config.endpoint.is_some() {
            builder = builder
                .with_endpoint(&endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        let client = builder.build()?;
        let public_endpoint = config.public_endpoint.as_deref().unwrap_or(&endpoint);
        let url = public_endpoint
            .parse()
            .map_err(|e: url::ParseError| S3SetupError::Endpoint {
                endpoint: public_endpoint.to_owned(),
                reason: e.to_string(),
            })?;
        let style = if config.path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let public = Bucket::new(url, style, config.bucket, config.region).map_err(|e| {
            S3SetupError::Endpoint {
                endpoint: public_endpoint.to_owned(),
                reason: e.to_string(),
            }
        })?;
        Ok(Self {
            client: Arc::new(client),
            public,
        })
    }

    async fn credentials(&self) -> DomainResult<Credentials> {
        let credential = self
            .client
            .credentials()
            .get_credential()
            .await
            .map_err(|e| unavailable("get credentials", "", &e))?;
        Ok(match &credential.token {
            Some(token) => Credentials::new_with_token(
                credential.key_id.clone(),
                credential.secret_key.clone(),
                token.clone(),
            ),
            None => Credentials::new(credential.key_id.clone(), credential.secret_key.clone()),
        })
    }
}

fn unavailable(action: &str, key: &str, error: &dyn std::fmt::Display) -> DomainError {
    DomainError::Unavailable(format!("S3: cannot {action} {key}: {error}"))
}

/// A presigned URL's lifetime as S3 takes it: whole seconds, at least one,
/// at most the seven days SigV4 allows.
fn lifetime(expires_in: Duration) -> StdDuration {
    let secs = expires_in.num_seconds().clamp(1, 7 * 24 * 3600);
    StdDuration::from_secs(secs as u64)
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> DomainResult<()> {
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, content_type.to_owned().into());
        let options = PutOptions {
            attributes,
            ..PutOptions::default()
        };
        self.client
            .put_opts(&Path::from(key), PutPayload::from(bytes), options)
            .await
            .map(|_| ())
            .map_err(|e| unavailable("put", key, &e))
    }

    async fn get(&self, key: &str, max_bytes: u64) -> DomainResult<Fetched> {
        let location = Path::from(key);
        let meta = match self.client.head(&location).await {
            Ok(meta) => meta,
            Err(object_store::Error::NotFound { .. }) => return Ok(Fetched::Missing),
            Err(e) => return Err(unavailable("stat", key, &e)),
        };
        if meta.size > max_bytes {
            return Ok(Fetched::TooLarge { size: meta.size });
        }
        let found = match self.client.get(&location).await {
            Ok(found) => found,
            Err(object_store::Error::NotFound { .. }) => return Ok(Fetched::Missing),
            Err(e) => return Err(unavailable("get", key, &e)),
        };
        // Replaced between the HEAD and the GET: the size is checked again.
        if found.meta.size > max_bytes {
            return Ok(Fetched::TooLarge {
                size: found.meta.size,
            });
        }
        let bytes = found
            .bytes()
            .await
            .map_err(|e| unavailable("read", key, &e))?;
        Ok(Fetched::Bytes(bytes.to_vec()))
    }

    async fn delete(&self, key: &str) -> DomainResult<()> {
        match self.client.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(unavailable("delete", key, &e)),
        }
    }

    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        length: u64,
        expires_in: Duration,
    ) -> DomainResult<PresignedRequest> {
        let credentials = self.credentials().await?;
        let length_text = length.to_string();
        let mut action = self.public.put_object(Some(&credentials), key);
        let headers = action.headers_mut();
        headers.insert("content-type", content_type);
        headers.insert("content-length", Cow::Borrowed(length_text.as_str()));
        let url = action.sign(lifetime(expires_in));
        Ok(PresignedRequest {
            url: url.to_string(),
            method: TransferMethod::Put,
            headers: vec![
                ("Content-Type".to_owned(), content_type.to_owned()),
                ("Content-Length".to_owned(), length_text.clone()),
            ],
            expires_at: Utc::now() + Duration::seconds(lifetime(expires_in).as_secs() as i64),
        })
    }

    async fn presign_get(
        &self,
        key: &str,
        serve: &ServeAs,
        expires_in: Duration,
    ) -> DomainResult<PresignedRequest> {
        let credentials = self.credentials().await?;
        let disposition = content_disposition(serve.disposition, &serve.file_name);
        let mut action = self.public.get_object(Some(&credentials), key);
        let query = action.query_mut();
        query.insert("response-content-type", serve.content_type.mime());
        query.insert("response-content-disposition", disposition.as_str());
        let url = action.sign(lifetime(expires_in));
        Ok(PresignedRequest {
            url: url.to_string(),
            method: TransferMethod::Get,
            headers: Vec::new(),
            expires_at: Utc::now() + Duration::seconds(lifetime(expires_in).as_secs() as i64),
        })
    }
}
