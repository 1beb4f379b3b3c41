//! The process's open-files limit. Every WebSocket connection holds a file
//! descriptor, and many systems start a service with a soft limit of 1,024
//! while allowing far more (the hard limit): left alone, a node would refuse
//! connections at about a thousand. Like most servers, ieum raises its soft
//! limit to the hard limit at start and says what it got.

/// The open-files limit around start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    /// The soft limit the process was started with.
    pub before: u64,
    /// The soft limit now.
    pub now: u64,
    /// The hard limit: only a privileged process (CAP_SYS_RESOURCE) can raise it.
    pub hard: u64,
}

/// Below this soft limit the start log warns: a chat node should hold
/// thousands of connections.
pub const LOW_OPEN_FILES: u64 = 8192;

/// Raises the soft open-files limit to the hard limit.
#[cfg(unix)]
pub fn raise_open_files() -> std::io::Result<OpenFiles> {
    let (before, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    let now = rlimit::increase_nofile_limit(u64::MAX)?;
    Ok(OpenFiles { before, now, hard })
}

/// Raises the soft open-files limit to the hard limit.
#[cfg(not(unix))]
pub fn raise_open_files() -> std::io::Result<OpenFiles> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "no open-files limit on this platform",
    ))
}

/// Logs what [`raise_open_files`] got, with a warning when it is low.
pub fn raise_and_report() {
    match raise_open_files() {
        Ok(f) => {
            tracing::info!(
                limit = f.now,
                started_with = f.before,
                hard = f.hard,
                "open files"
            );
            if f.now < LOW_OPEN_FILES {
                tracing::warn!(
                    limit = f.now,
                    "every WebSocket connection is an open file, so this node holds fewer than \
                     this many; raise the hard limit (systemd LimitNOFILE=, ulimit -Hn, or the \
                     container runtime's nofile ulimit)"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not raise the open-files limit"),
    }
}

/// The default cap on WebSocket connections (`IEUM_WS_MAX_CONNECTIONS`): the
/// open-files limit less a reserve, so that a full node can still open its
/// database connections, read files and answer HTTP. Past the open-files limit
/// every one of those would fail, for every user of the node.
pub fn default_max_connections() -> usize {
    #[cfg(unix)]
    let soft = rlimit::getrlimit(rlimit::Resource::NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024);
    #[cfg(not(unix))]
    let soft: u64 = 16_384;
    let soft = soft.min(usize::MAX as u64) as usize;
    soft.saturating_sub(1024).max(soft / 2)
}
