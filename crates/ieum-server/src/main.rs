use clap::Parser;
use ieum_server::{Cli, Command, Config, telemetry};

/// mimalloc returns freed memory to the system: glibc's allocator kept the
/// 19 MiB blocks of password hashing after a burst (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.settings) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ieum: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    telemetry::init(config.log_format);
    let result = match cli.command.unwrap_or(Command::Serve) {
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
