//! The command line: `ieum [serve]`, `migrate`, `admin ...`, `export`,
//! `import`, each with every setting of [`Settings`].

use clap::{Parser, Subcommand};

use super::Settings;

#[derive(Debug, Parser)]
#[command(name = "ieum", version, about = "ieum: a real-time chat server")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Clone, Subcommand, PartialEq, Eq)]
pub enum Command {
    /// Serve HTTP and WebSocket (the default).
    Serve,
    /// Apply pending database migrations, then exit.
    Migrate,
    /// Asks the server on this machine (IEUM_ADDR's port) whether it is
    /// ready: exit status 0 when `/ready` answers 200. For a container's
    /// HEALTHCHECK, which has no shell or curl to run.
    Health,
    /// Server administration from the shell.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Writes the whole database to a checksummed archive (a backup, or the
    /// way from SQLite to PostgreSQL); the server may keep running.
    Export {
        /// The archive to write (`-`: standard output), or a directory to
        /// write `ieum-<UTC time>.archive` in (a scheduled backup).
        #[arg(long)]
        out: std::path::PathBuf,
        /// With a directory: keep only the newest this many archives in it.
        #[arg(long)]
        keep: Option<usize>,
        /// Also carry every attachment's stored files (photos, uploads,
        /// thumbnails) from the local disk or S3.
        #[arg(long)]
        with_files: bool,
    },
    /// Loads an archive into the configured database, which must be empty.
    Import {
        /// An archive `ieum export` wrote.
        file: std::path::PathBuf,
    },
}

#[derive(Debug, Clone, Subcommand, PartialEq, Eq)]
pub enum AdminCommand {
    /// Gives USERNAME a server role (the first admin is made this way).
    Grant {
        username: String,
        /// admin, moderator, or member (takes the role away).
        #[arg(long, default_value = "admin")]
        role: String,
    },
    /// Makes an invite code (for IEUM_REGISTRATION=invite) and prints it.
    Invite {
        /// Sign-ups it allows (default 1).
        #[arg(long)]
        uses: Option<u32>,
        /// Hours it lasts (default a week).
        #[arg(long)]
        hours: Option<u32>,
    },
}
