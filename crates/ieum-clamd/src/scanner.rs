//! The connection to clamd: `zINSTREAM` and `zPING`, bounded in time and size.

use std::io;
use std::time::Duration;

use async_trait::async_trait;
use ieum_domain::ports::{ScanVerdict, VirusScanner};
use ieum_domain::{DomainError, DomainResult};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};

use crate::config::{BadClamdConfig, ClamdAddress, ClamdConfig};
use crate::reply::{ScanReply, Unrecognized, is_pong, parse_scan_reply};

/// The longest reply read. clamd's are one short line; a longer one is not
/// clamd talking.
const MAX_REPLY_BYTES: usize = 4096;

/// Scans objects with clamd. Each call opens its own connection, so one
/// scanner is shared by every task.
#[derive(Debug, Clone)]
pub struct ClamdScanner {
    config: ClamdConfig,
}

/// What went wrong talking to clamd; [`DomainError`] is chosen from it.
#[derive(Debug, thiserror::Error)]
enum ClamdError {
    #[error(
        "an object of {size} bytes is over the scanner's limit of {limit} bytes; nothing was sent"
    )]
    TooLarge { size: u64, limit: u64 },
    #[error("clamd at {address} refused the stream: it is over clamd's StreamMaxLength")]
    OverStreamMaxLength { address: ClamdAddress },
    #[error("cannot connect to clamd at {address}: {source}")]
    Connect {
        address: ClamdAddress,
        source: io::Error,
    },
    #[error("clamd at {address} did not accept a connection within {timeout:?}")]
    ConnectTimedOut {
        address: ClamdAddress,
        timeout: Duration,
    },
    #[error("clamd at {address} did not answer within {timeout:?}")]
    TimedOut {
        address: ClamdAddress,
        timeout: Duration,
    },
    #[error("talking to clamd at {address}: {source}")]
    Io {
        address: ClamdAddress,
        source: io::Error,
    },
    #[error("clamd at {address} could not scan: {reason}")]
    Failed {
        address: ClamdAddress,
        reason: String,
    },
    #[error("something other than clamd answered at {address}: {source}")]
    Unrecognized {
        address: ClamdAddress,
        source: Unrecognized,
    },
}

impl From<ClamdError> for DomainError {
    fn from(error: ClamdError) -> Self {
        match error {
            ClamdError::TooLarge { .. } | ClamdError::OverStreamMaxLength { .. } => {
                ieum_domain::error::named::too_large(error.to_string())
            }
            // A wrong address or protocol: waiting will not fix it.
            ClamdError::Unrecognized { .. } => DomainError::Internal(error.to_string()),
            // Down, hung, or busy: the object waits and is scanned again.
            ClamdError::Connect { .. }
            | ClamdError::ConnectTimedOut { .. }
            | ClamdError::TimedOut { .. }
            | ClamdError::Io { .. }
            | ClamdError::Failed { .. } => DomainError::Unavailable(error.to_string()),
        }
    }
}

/// A connected socket, TCP or unix.
trait Duplex: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Duplex for T {}

impl ClamdScanner {
    pub fn new(config: ClamdConfig) -> Result<Self, BadClamdConfig> {
        config.check()?;
        Ok(Self { config })
    }

    /// Readiness: clamd answers `PING` within the scan timeout. `Unavailable`
    /// when it does not.
    pub async fn ping(&self) -> DomainResult<()> {
        let reply = self
            .within_scan_timeout(async {
                let mut connection = self.connect().await?;
                connection.write_all(b"zPING\0").await?;
                connection.flush().await?;
                Ok::<_, ExchangeError>(read_reply(&mut connection).await?)
            })
            .await?;
        if !is_pong(&reply) {
            let reply = String::from_utf8_lossy(&reply).into_owned();
            return Err(self.unrecognized(Unrecognized(reply)).into());
        }
        Ok(())
    }

    async fn instream(&self, bytes: &[u8]) -> Result<ScanVerdict, ClamdError> {
        let size = bytes.len() as u64;
        let limit = self.config.max_stream_bytes;
        if size > limit {
            return Err(ClamdError::TooLarge { size, limit });
        }
        let reply = self
            .within_scan_timeout(async {
                let mut connection = self.connect().await?;
                let sent = send_stream(&mut connection, bytes, self.config.chunk_bytes).await;
                // Over its StreamMaxLength clamd answers and closes before the
                // stream ends, which can fail our write: its reply still
                // explains more than the broken pipe does.
                let reply = read_reply(&mut connection).await;
                match (sent, reply) {
                    (_, Ok(reply)) if !reply.is_empty() => Ok(reply),
                    (Err(error), _) | (Ok(()), Err(error)) => Err(ExchangeError::Io(error)),
                    (Ok(()), Ok(_)) => Err(ExchangeError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "closed without a verdict",
                    ))),
                }
            })
            .await?;
        match parse_scan_reply(&reply).map_err(|error| self.unrecognized(error))? {
            ScanReply::Clean => Ok(ScanVerdict::Clean),
            ScanReply::Found { signature } => Ok(ScanVerdict::Infected { signature }),
            ScanReply::OverStreamMaxLength => {
                tracing::warn!(
                    clamd = %self.config.address,
                    max_stream_bytes = limit,
                    size,
                    "clamd's StreamMaxLength is below the configured stream limit"
                );
                Err(ClamdError::OverStreamMaxLength {
                    address: self.config.address.clone(),
                })
            }
            ScanReply::Failed { reason } => Err(ClamdError::Failed {
                address: self.config.address.clone(),
                reason,
            }),
        }
    }

    async fn connect(&self) -> Result<Box<dyn Duplex>, ClamdError> {
        let address = &self.config.address;
        let timeout = self.config.connect_timeout;
        match tokio::time::timeout(timeout, open(address)).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(source)) => Err(ClamdError::Connect {
                address: address.clone(),
                source,
            }),
            Err(_) => Err(ClamdError::ConnectTimedOut {
                address: address.clone(),
                timeout,
            }),
        }
    }

    /// Runs one exchange under the whole-scan timeout; IO errors name the
    /// address.
    async fn within_scan_timeout<T>(
        &self,
        exchange: impl Future<Output = Result<T, ExchangeError>>,
    ) -> Result<T, ClamdError> {
        let address = &self.config.address;
        let timeout = self.config.scan_timeout;
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(ExchangeError::Clamd(error))) => Err(error),
            Ok(Err(ExchangeError::Io(source))) => Err(ClamdError::Io {
                address: address.clone(),
                source,
            }),
            Err(_) => Err(ClamdError::TimedOut {
                address: address.clone(),
                timeout,
            }),
        }
    }

    fn unrecognized(&self, source: Unrecognized) -> ClamdError {
        ClamdError::Unrecognized {
            address: self.config.address.clone(),
            source,
        }
    }
}

#[async_trait]
impl VirusScanner for ClamdScanner {
    async fn scan(&self, bytes: &[u8]) -> DomainResult<ScanVerdict> {
        Ok(self.instream(bytes).await?)
    }
}

/// An exchange fails either while connecting (already a [`ClamdError`]) or
/// on the open socket.
enum ExchangeError {
    Clamd(ClamdError),
    Io(io::Error),
}

impl From<ClamdError> for ExchangeError {
    fn from(error: ClamdError) -> Self {
        Self::Clamd(error)
    }
}

impl From<io::Error> for ExchangeError {
    fn from(error: io::Error) -> Self {
        Self::Io(error)
    }
}

async fn open(address: &ClamdAddress) -> io::Result<Box<dyn Duplex>> {
    match address {
        ClamdAddress::Tcp(authority) => {
            let stream = tokio::net::TcpStream::connect(authority.as_str()).await?;
            // The last chunk and the terminator must not wait for an ACK.
            stream.set_nodelay(true)?;
            Ok(Box::new(stream))
        }
        #[cfg(unix)]
        ClamdAddress::Unix(path) => Ok(Box::new(tokio::net::UnixStream::connect(path).await?)),
        #[cfg(not(unix))]
        ClamdAddress::Unix(_) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "unix sockets need a unix system",
        )),
    }
}

/// `zINSTREAM\0`, then each chunk behind its 4-byte big-endian length, then a
/// zero length. The buffer holds one chunk and its length, so each chunk goes
/// out in one write and the object is never copied whole.
async fn send_stream(
    connection: &mut dyn Duplex,
    bytes: &[u8],
    chunk_bytes: u32,
) -> io::Result<()> {
    let chunk_bytes = chunk_bytes as usize;
    let mut writer = BufWriter::with_capacity(chunk_bytes + 4, connection);
    writer.write_all(b"zINSTREAM\0").await?;
    for chunk in bytes.chunks(chunk_bytes) {
        // At most `chunk_bytes`, itself a u32.
        let length = chunk.len() as u32;
        writer.write_all(&length.to_be_bytes()).await?;
        writer.write_all(chunk).await?;
    }
    writer.write_all(&0u32.to_be_bytes()).await?;
    writer.flush().await
}

/// Reads up to the NUL that ends a `z` reply, or to the end of the stream.
async fn read_reply(connection: &mut dyn Duplex) -> io::Result<Vec<u8>> {
    let mut reply = Vec::with_capacity(64);
    let mut buffer = [0u8; 512];
    loop {
        let read = connection.read(&mut buffer).await?;
        if read == 0 {
            return Ok(reply);
        }
        reply.extend_from_slice(&buffer[..read]);
        if let Some(end) = reply.iter().position(|&byte| byte == 0) {
            reply.truncate(end);
            return Ok(reply);
        }
        if reply.len() > MAX_REPLY_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a reply longer than {MAX_REPLY_BYTES} bytes"),
            ));
        }
    }
}
