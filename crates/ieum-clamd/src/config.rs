//! Where clamd listens and the limits of one scan.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// A clamd setting that cannot work: a configuration error, found at start.
#[derive(Debug, thiserror::Error)]
#[error("clamd: {0}")]
pub struct BadClamdConfig(String);

/// Where clamd listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClamdAddress {
    /// `host:port` (an IPv6 host in brackets), resolved at each connect.
    Tcp(String),
    /// The path of clamd's `LocalSocket`.
    Unix(PathBuf),
}

impl FromStr for ClamdAddress {
    type Err = BadClamdConfig;

    /// `tcp://host:port` or `unix:///absolute/path`.
    fn from_str(url: &str) -> Result<Self, Self::Err> {
        if let Some(authority) = url.strip_prefix("tcp://") {
            let authority = authority.strip_suffix('/').unwrap_or(authority);
            let bad = || {
                BadClamdConfig(format!(
                    "{url:?}: expected tcp://host:port (an IPv6 host in brackets)"
                ))
            };
            let (host, port) = authority.rsplit_once(':').ok_or_else(bad)?;
            let bracketed = host.starts_with('[') && host.ends_with(']');
            if host.is_empty() || authority.contains('/') || (host.contains(':') && !bracketed) {
                return Err(bad());
            }
            match port.parse::<u16>() {
                Ok(port) if port > 0 => Ok(Self::Tcp(authority.to_owned())),
                _ => Err(bad()),
            }
        } else if let Some(path) = url.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(BadClamdConfig(format!(
                    "{url:?}: a unix socket needs an absolute path (unix:///run/clamav/clamd.ctl)"
                )));
            }
            Ok(Self::Unix(PathBuf::from(path)))
        } else {
            Err(BadClamdConfig(format!(
                "{url:?}: expected tcp://host:port or unix:///path"
            )))
        }
    }
}

impl fmt::Display for ClamdAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(authority) => write!(f, "tcp://{authority}"),
            Self::Unix(path) => write!(f, "unix://{}", path.display()),
        }
    }
}

/// How to reach clamd and the limits of one scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClamdConfig {
    pub address: ClamdAddress,
    /// How long opening the connection may take. A clamd that is down answers
    /// `Unavailable` within this.
    pub connect_timeout: Duration,
    /// How long one scan (or ping) may take, from connecting to the verdict.
    pub scan_timeout: Duration,
    /// The largest object sent. A larger one is refused before connecting
    /// (`too_large`). Keep it at or below clamd's `StreamMaxLength`, which
    /// clamd enforces by refusing the stream after it was sent.
    pub max_stream_bytes: u64,
    /// Bytes per `INSTREAM` chunk; also the size of the write buffer.
    pub chunk_bytes: u32,
}

impl ClamdConfig {
    /// The defaults: 2 s to connect, 60 s per scan, 64 KiB chunks and 25 MiB
    /// per object, the `StreamMaxLength` of Debian's clamd.conf (clamd's own
    /// default is 100M).
    pub fn new(address: ClamdAddress) -> Self {
        Self {
            address,
            connect_timeout: Duration::from_secs(2),
            scan_timeout: Duration::from_secs(60),
            max_stream_bytes: 25 * 1024 * 1024,
            chunk_bytes: 64 * 1024,
        }
    }

    pub(crate) fn check(&self) -> Result<(), BadClamdConfig> {
        let zero = |setting: &str| BadClamdConfig(format!("{setting} must be above zero"));
        if self.connect_timeout.is_zero() {
            return Err(zero("the connect timeout"));
        }
        if self.scan_timeout.is_zero() {
            return Err(zero("the scan timeout"));
        }
        if self.max_stream_bytes == 0 {
            return Err(zero("the stream limit"));
        }
        if self.chunk_bytes == 0 {
            return Err(zero("the chunk size"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<ClamdAddress, BadClamdConfig> {
        url.parse()
    }

    #[test]
    fn tcp_urls_keep_host_and_port() {
        let address = parse("tcp://127.0.0.1:3310").unwrap();
        assert_eq!(address, ClamdAddress::Tcp("127.0.0.1:3310".into()));
        assert_eq!(address.to_string(), "tcp://127.0.0.1:3310");
        assert_eq!(
            parse("tcp://clamav.internal:3310/").unwrap(),
            ClamdAddress::Tcp("clamav.internal:3310".into())
        );
    }

    #[test]
    fn ipv6_hosts_need_brackets() {
        assert_eq!(
            parse("tcp://[::1]:3310").unwrap(),
            ClamdAddress::Tcp("[::1]:3310".into())
        );
        assert!(parse("tcp://::1:3310").is_err());
    }

    #[test]
    fn tcp_urls_without_a_usable_port_are_refused() {
        for url in [
            "tcp://localhost",
            "tcp://localhost:",
            "tcp://localhost:0",
            "tcp://localhost:99999",
            "tcp://:3310",
            "tcp://localhost:3310/path",
        ] {
            assert!(parse(url).is_err(), "{url}");
        }
    }

    #[test]
    fn unix_urls_take_an_absolute_path() {
        let address = parse("unix:///run/clamav/clamd.ctl").unwrap();
        assert_eq!(address, ClamdAddress::Unix("/run/clamav/clamd.ctl".into()));
        assert_eq!(address.to_string(), "unix:///run/clamav/clamd.ctl");
        assert!(parse("unix://run/clamav/clamd.ctl").is_err());
    }

    #[test]
    fn other_schemes_are_refused_with_the_expected_forms() {
        let error = parse("http://127.0.0.1:3310").unwrap_err().to_string();
        assert!(error.contains("tcp://host:port or unix:///path"), "{error}");
        assert!(parse("127.0.0.1:3310").is_err());
    }

    #[test]
    fn zero_limits_are_configuration_errors() {
        let address = ClamdAddress::Tcp("127.0.0.1:3310".into());
        assert!(ClamdConfig::new(address.clone()).check().is_ok());
        let zero_chunk = ClamdConfig {
            chunk_bytes: 0,
            ..ClamdConfig::new(address.clone())
        };
        assert!(zero_chunk.check().is_err());
        let zero_limit = ClamdConfig {
            max_stream_bytes: 0,
            ..ClamdConfig::new(address.clone())
        };
        assert!(zero_limit.check().is_err());
        let zero_timeout = ClamdConfig {
            scan_timeout: Duration::ZERO,
            ..ClamdConfig::new(address)
        };
        assert!(zero_timeout.check().is_err());
    }
}
