//! `ieum-bench`: reproducible measurements. Every figure in docs/benchmarks.md
//! names the command that produced it.

use clap::{Parser, Subcommand};

mod fanout;
mod files;
mod reconnect;
mod search;
mod sio;
mod soak;
mod store;

#[derive(Parser)]
#[command(name = "ieum-bench", about = "ieum's benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Substring search over generated messages on PostgreSQL.
    Search(search::Args),
    /// Fan-out over STOMP on WebSocket, or Socket.IO: latency, loss, duplicates and order.
    Fanout(fanout::Args),
    /// Idle authenticated, subscribed connections (for memory per connection).
    Idle(fanout::IdleArgs),
    /// Messages durably stored per second (group commit vs single-row INSERTs).
    Store(store::Args),
    /// The image processor on a 12-megapixel photo: metadata strip and both thumbnails.
    Thumbnails(files::ThumbArgs),
    /// Uploads through a running server: begin, presigned PUT, complete.
    Uploads(files::UploadArgs),
    /// A long run at a fixed rate with connection churn: the server's RSS,
    /// open files and p99 every minute.
    Soak(soak::Args),
    /// A reconnect storm: every client drops at once and resumes with
    /// last-seq; handshakes per second, time until all resumed, failures.
    Reconnect(reconnect::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Every client connection is an open file: take all the hard limit allows.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("ieum-bench: could not raise the open-files limit: {e}");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let result = rt.block_on(async {
        match cli.command {
            Cmd::Search(a) => search::run(a).await,
            Cmd::Fanout(a) => fanout::run(a).await,
            Cmd::Idle(a) => fanout::idle(a).await,
            Cmd::Store(a) => store::run(a).await,
            Cmd::Thumbnails(a) => files::thumbnails(a).await.map_err(Into::into),
            Cmd::Uploads(a) => files::uploads(a).await.map_err(Into::into),
            Cmd::Soak(a) => soak::run(a).await,
            Cmd::Reconnect(a) => reconnect::run(a).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ieum-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
