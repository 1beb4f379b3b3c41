use clap::Parser;
use ieum_server::{Cli, Command, Config, telemetry};

/// mimalloc returns freed memory to the system: glibc's allocator kept the
/// 19 MiB blocks of password hashing after a burst (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if cli.command == Some(Command::Health) {
        // Not the whole configuration: resolving it may write to the data dir.
        let file_addr = cli
            .settings
            .config
            .as_deref()
            .and_then(|path| ieum_server::config::Settings::from_toml_file(path).ok())
            .and_then(|file| file.addr);
        return health(cli.settings.addr.or(file_addr));
    }
    let config = match Config::load(cli.settings) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ieum: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    telemetry::init(config.log_format);
    let temporary = config.ephemeral.then(|| config.data_dir.clone());
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Health => unreachable!("answered above"),
        Command::Serve => {
            ieum_server::limits::raise_and_report();
            actix_web::rt::System::new().block_on(ieum_server::run(config))
        }
        Command::Migrate => actix_web::rt::System::new().block_on(migrate(config)),
        Command::Export {
            out,
            keep,
            with_files,
        } => actix_web::rt::System::new().block_on(ieum_server::app::export(
            config,
            ieum_server::app::ExportTo {
                out,
                keep,
                with_files,
            },
        )),
        Command::Import { file } => {
            actix_web::rt::System::new().block_on(ieum_server::app::import(config, file))
        }
        Command::Admin(command) => {
            actix_web::rt::System::new().block_on(ieum_server::app::admin(config, command))
        }
    };
    if let Some(dir) = temporary
        && let Err(e) = std::fs::remove_dir_all(&dir)
    {
        eprintln!(
            "ieum: cannot remove the ephemeral data dir {}: {e}",
            dir.display()
        );
    }
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("ieum: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn migrate(config: Config) -> Result<(), ieum_server::app::BoxError> {
    let store = ieum_server::app::open_store(&config).await?;
    let pending = store.pending_migrations().await?;
    store.migrate().await?;
    tracing::info!(applied = pending.len(), ?pending, "migrations applied");
    println!("applied {} migration(s)", pending.len());
    store.close().await;
    Ok(())
}

/// `ieum health`: GET /ready on this machine's listening port, plain HTTP/1.0
/// over std (a HEALTHCHECK runs it every few seconds: no runtime to start).
fn health(addr: Option<std::net::SocketAddr>) -> std::process::ExitCode {
    use std::io::{Read, Write};
    use std::time::Duration;
    // The configured address, or this machine's own when it listens on all.
    let mut target = addr.unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 8080)));
    if target.ip().is_unspecified() {
        target.set_ip(match target {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let answer = (|| -> std::io::Result<String> {
        let mut stream = std::net::TcpStream::connect_timeout(&target, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(3)))?;
        stream.write_all(b"GET /ready HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
        let mut head = [0u8; 64];
        let n = stream.read(&mut head)?;
        Ok(String::from_utf8_lossy(&head[..n]).into_owned())
    })();
    match answer {
        Ok(head) if head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200") => {
            std::process::ExitCode::SUCCESS
        }
        Ok(head) => {
            eprintln!(
                "ieum health: {}",
                head.lines().next().unwrap_or("no answer")
            );
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("ieum health: {target}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
