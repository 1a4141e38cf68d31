//! The `tessera` command: `serve`, `migrate`, `keys create`, `listen`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tessera::config::{Config, Layer};
use tessera::domain::signing::{generate_api_key, hash_api_key};
use tessera::store::NewApiKey;

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Video agents with durable webhooks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (API, worker and webhook dispatcher); applies migrations first.
    Serve(ServerArgs),
    /// Apply pending database migrations and exit.
    Migrate(ServerArgs),
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// A local webhook receiver for development: prints every webhook and checks its signatures.
    Listen(tessera::listen::ListenArgs),
    /// Write the API's contracts (openapi.json and tessera.d.ts) into a directory.
    Contracts {
        /// Where to write them.
        #[arg(long, default_value = "contracts")]
        out: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create an API key and print it alone on one line.
    Create {
        /// A label for the key.
        #[arg(long)]
        name: String,
        /// Create the key for a new user instead of the default user.
        #[arg(long)]
        new_user: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(clap::Args)]
struct ServerArgs {
    /// A TOML file with settings (keys named like the flags, with underscores).
    #[arg(long, env = "TESSERA_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    layer: Layer,
}

impl ServerArgs {
    fn resolve(self) -> anyhow::Result<Config> {
        Config::resolve(self.layer, self.config.as_deref())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => {
            let app = tessera::app::start(args.resolve()?).await?;
            app.run_until(shutdown_signal()).await;
            Ok(())
        }
        Command::Migrate(args) => {
            tessera::app::open_store(&args.resolve()?).await?;
            eprintln!("migrations applied");
            Ok(())
        }
        Command::Keys {
            command:
                KeysCommand::Create {
                    name,
                    new_user,
                    server,
                },
        } => {
            let config = server.resolve()?;
            let store = tessera::app::open_store(&config).await?;
            let now = chrono::Utc::now().timestamp_millis();
            let user_id = if new_user {
                store.create_user(now).await?
            } else {
                store.default_user(now).await?
            };
            let key = generate_api_key();
            store
                .create_api_key(NewApiKey {
                    user_id,
                    name,
                    key_hash: hash_api_key(&key),
                    created_at: now,
                })
                .await?;
            println!("{key}");
            eprintln!(
                "(created in the database at {})",
                config.database_description()
            );
            Ok(())
        }
        Command::Listen(args) => tessera::listen::run(args, shutdown_signal()).await,
        Command::Contracts { out } => {
            let written = tessera::api::contracts::write(&out)?;
            for path in written {
                println!("wrote {}", path.display());
            }
            Ok(())
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
