//! `surechat`: one binary for the server and its tools.
//!
//! Run with: `cargo run --bin surechat -- demo`

mod bench;
mod chaos;
mod demo;
mod devices;
mod operator;
mod proxy;
mod rlimit;
mod serve;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use protocol::Role;
use server::Config;

/// `surechat --version`: the release and the protocol versions it speaks, so an operator can tell
/// which SDK versions can talk to it.
fn version() -> &'static str {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION.get_or_init(|| {
        let spoken: Vec<String> = protocol::PROTOCOL_VERSIONS
            .iter()
            .map(u32::to_string)
            .collect();
        format!(
            "{} (protocol {})",
            env!("CARGO_PKG_VERSION"),
            spoken.join(", ")
        )
    })
}

#[derive(Parser)]
#[command(
    name = "surechat",
    version = version(),
    about = "Real-time chat where no message is lost, duplicated or reordered"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServerArgs),
    /// Run the server with a ready booking, one client and one operator, and print how to connect.
    Demo(ServerArgs),
    /// Mint a user token (JWT, HS256) with the server's secret, for development.
    Token(TokenArgs),
    /// The operator directory (add, list, disable), in the storage the configuration names.
    #[command(subcommand)]
    Operator(operator::OperatorCommand),
    /// Send one message; waits until it is durable on the server and prints its seq.
    ///
    /// With --attach, the files are uploaded first (resuming after any cut; progress on stderr)
    /// and the message names them; the text may then be omitted.
    Send {
        #[command(flatten)]
        device: devices::DeviceArgs,
        /// The message text.
        text: Option<String>,
        /// A file to attach (repeat for several, at most 10). The server decides its type from
        /// the content: JPEG, PNG, GIF, WebP and PDF by default.
        #[arg(long = "attach", value_name = "PATH")]
        attach: Vec<PathBuf>,
    },
    /// Print a conversation's messages and receipts as they come; resumes after disconnects.
    Tail(devices::DeviceArgs),
    /// Interactive terminal chat that shows delivery ticks live.
    Chat(devices::DeviceArgs),
    /// A TCP proxy that breaks the network on command (drop, stall, latency, throttle, refuse).
    Proxy(proxy::ProxyArgs),
    /// Client/operator pairs under random faults, then a check of the delivery contract.
    ///
    /// Faults, drawn from the seed: connections dropped, stalled (half-open), slowed (latency,
    /// jitter) and throttled; bursts of bad frames injected into a device's own connection between
    /// its own frames (errors, and a 4429 close past the allowance); server nodes SIGKILLed and
    /// SIGTERMed, then restarted; clients restarted from their local outboxes. With --refusals the
    /// server also refuses sends: a low send rate limit (rate_limited) and storage that refuses
    /// writes for a while (unavailable): a held SQLite write lock, or terminated PostgreSQL
    /// connections.
    ///
    /// Then the faults stop, the run waits for convergence and checks: every message that entered
    /// an outbox is stored exactly once and held once by every device in seq order; FIFO per
    /// sender (for any two messages A before B of one outbox in one conversation, both stored,
    /// seq(A) < seq(B)); every status converged. Exits non-zero on any violation.
    Chaos(chaos::ChaosArgs),
    /// Load generator: throughput, latency, idle connections, reconnect storm, raw ceiling.
    Bench(bench::BenchArgs),
    /// Copy a single SQLite node's data to PostgreSQL, keeping every seq, epoch and cursor.
    Migrate {
        /// The source: `sqlite:PATH` (a data directory or its surechat.db).
        #[arg(long)]
        from: String,
        /// The target: a PostgreSQL connection string.
        #[arg(long)]
        to: String,
    },
}

/// Settings shared by the commands that need the server's configuration. Flags override
/// `SURECHAT_*` environment variables, which override the config file, which overrides defaults.
#[derive(Args, Clone)]
struct ServerArgs {
    /// Address to listen on [default: 127.0.0.1:8080; env SURECHAT_LISTEN].
    #[arg(long)]
    listen: Option<String>,
    /// Data directory [default: ./surechat-data (demo: ./surechat-demo-data); env SURECHAT_DATA].
    #[arg(long)]
    data: Option<PathBuf>,
    /// TOML config file (keys as in docs/configuration.md).
    #[arg(long)]
    config: Option<PathBuf>,
    /// PostgreSQL connection string; SQLite under --data when absent [env SURECHAT_DATABASE].
    #[arg(long)]
    database: Option<String>,
}

#[derive(Args)]
struct TokenArgs {
    /// User id (the `sub` claim).
    #[arg(long)]
    user: String,
    /// Role: client or operator.
    #[arg(long)]
    role: String,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 86_400)]
    ttl: u64,
    #[command(flatten)]
    server: ServerArgs,
}

impl ServerArgs {
    /// The configuration: defaults, then the file, then the environment, then flags.
    fn load(&self, default_data: Option<&str>) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let (Some(data), None) = (default_data, &self.config) {
            config.data = PathBuf::from(data);
            // The demo runs on a developer's machine, whose webhook receivers are local.
            config.webhook_allow_private = true;
        }
        config.apply_env(std::env::vars())?;
        if let Some(listen) = &self.listen {
            config.set("listen", listen)?;
        }
        if let Some(data) = &self.data {
            config.data = data.clone();
        }
        if let Some(database) = &self.database {
            config.set("database", database)?;
        }
        config.validate()?;
        config
            .resolve_secrets()
            .with_context(|| format!("cannot keep secrets in {}", config.data.display()))?;
        Ok(config)
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::serve(args.load(None)?),
        Command::Demo(args) => demo::demo(args.load(Some("./surechat-demo-data"))?),
        Command::Send {
            device,
            text,
            attach,
        } => serve::runtime()?.block_on(devices::send(device, text, attach)),
        Command::Tail(device) => serve::runtime()?.block_on(devices::tail(device)),
        Command::Chat(device) => serve::runtime()?.block_on(devices::chat(device)),
        Command::Operator(command) => operator::run(command),
        Command::Proxy(args) => proxy::run(args),
        Command::Chaos(args) => chaos::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Migrate { from, to } => {
            let path = from
                .strip_prefix("sqlite:")
                .context("--from must be sqlite:PATH")?;
            let report = serve::runtime()?.block_on(server::store::migrate::sqlite_to_postgres(
                std::path::Path::new(path),
                &to,
            ))?;
            println!(
                "copied {} conversations, {} participants, {} messages, {} uploads; every seq verified",
                report.conversations, report.participants, report.messages, report.uploads
            );
            Ok(())
        }
        Command::Token(args) => {
            let role = Role::parse(&args.role).context("--role must be `client` or `operator`")?;
            let ttl_max = protocol::limits::TOKEN_TTL_S_MAX;
            if args.ttl == 0 || args.ttl > ttl_max {
                anyhow::bail!("--ttl must be between 1 and {ttl_max} seconds");
            }
            protocol::ids::check_user_id(&args.user)
                .map_err(|_| anyhow::anyhow!("invalid --user"))?;
            let config = args.server.load(None)?;
            let auth = server::auth::Auth::new(
                config.jwt_secret.as_deref().expect("resolved"),
                config.admin_key.as_deref().expect("resolved"),
            );
            println!("{}", auth.mint(&args.user, role, server::now_s(), args.ttl));
            Ok(())
        }
    }
}
