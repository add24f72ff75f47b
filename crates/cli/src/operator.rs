//! `surechat operator add|list|disable|reset`: the operator directory and the operators'
//! sign-in accounts, written straight into the storage the configuration names (the SQLite file
//! under `--data`, or `--database`), like `surechat migrate`. It works with the server stopped
//! or running: SQLite serialises the writers, and the server reads the directory and accounts on
//! every check, so a change counts at once. This is how the first admin is made.

use clap::Subcommand;
use protocol::api::PutOperator;

use crate::ServerArgs;

/// The subcommands.
#[derive(Subcommand)]
pub enum OperatorCommand {
    /// Add an operator, or update one (name, avatar) and make it active again.
    Add {
        /// User id (the `sub` of the operator's tokens).
        id: String,
        /// The name clients and other operators see.
        #[arg(long)]
        name: String,
        /// A picture of the operator (http(s) URL).
        #[arg(long)]
        avatar_url: Option<String>,
        /// Give the operator a console sign-in with this email.
        #[arg(long)]
        email: Option<String>,
        /// The account's role: `agent` works conversations, `admin` also manages operators,
        /// webhooks and settings.
        #[arg(long, default_value = "agent", requires = "email")]
        role: String,
        /// Read the account's password from the first line of standard input (never from
        /// the command line, where other users of the machine could see it).
        #[arg(long, requires = "email")]
        password_stdin: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Print a link to set a new password (emailed too when SMTP is configured).
    Reset {
        /// User id.
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Print the directory: id, active or disabled, name, avatar URL, and for operators who can
    /// sign in their email and role (tab-separated).
    List {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Disable an operator: their tokens are refused and they can no longer be assigned.
    Disable {
        /// User id.
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// Runs one subcommand.
pub fn run(command: OperatorCommand) -> anyhow::Result<()> {
    let server = match &command {
        OperatorCommand::Add { server, .. }
        | OperatorCommand::List { server }
        | OperatorCommand::Reset { server, .. }
        | OperatorCommand::Disable { server, .. } => server.clone(),
    };
    let mut config = server.load(None)?;
    config.resolve_secrets()?;
    crate::serve::runtime()?.block_on(async move {
        let store = crate::serve::open_store(&config).await?.into_store();
        // The same rules as the HTTP API (password policy, audit log), on the same storage.
        let app = server::AppState::new(
            config,
            store.clone(),
            tokio_util::sync::CancellationToken::new(),
        );
        match command {
            OperatorCommand::Add {
                id,
                name,
                avatar_url,
                email: Some(email),
                role,
                password_stdin,
                ..
            } => {
                let role = server::store::accounts::AccountRole::parse(&role)
                    .ok_or_else(|| anyhow::anyhow!("--role must be `agent` or `admin`"))?;
                let password = if password_stdin {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    Some(line.trim_end_matches(['\r', '\n']).to_owned())
                } else {
                    None
                };
                let body = server::signin::admin::PutAccount {
                    email,
                    name,
                    role,
                    active: Some(true),
                    password,
                    avatar_url,
                };
                let (view, created) = server::signin::admin::upsert(&app, "cli", id, body)
                    .await
                    .map_err(|err| anyhow::anyhow!("{}", err.detail))?;
                let what = if created { "added" } else { "updated" };
                println!(
                    "{what} operator {} ({}) with {} sign-in as {}",
                    view["operator_id"].as_str().unwrap_or_default(),
                    view["name"].as_str().unwrap_or_default(),
                    view["role"].as_str().unwrap_or_default(),
                    view["email"].as_str().unwrap_or_default(),
                );
            }
            OperatorCommand::Reset { id, .. } => {
                let Some(account) = store.account(id.clone()).await? else {
                    anyhow::bail!("operator `{id}` has no sign-in account (add one with --email)");
                };
                let (link, emailed) = server::signin::admin::send_reset(&app, &account)
                    .await
                    .map_err(|err| anyhow::anyhow!("{}", err.detail))?;
                if emailed {
                    println!("emailed a reset link to {}", account.email);
                }
                println!("{link}");
            }
            OperatorCommand::Add {
                id,
                name,
                avatar_url,
                ..
            } => {
                let body = PutOperator {
                    name,
                    avatar_url,
                    active: Some(true),
                };
                let operator = server::directory::entry(id, body)
                    .map_err(|(code, detail)| anyhow::anyhow!("{detail} ({code})"))?;
                let created = store.put_operator(operator.clone()).await?;
                let what = if created { "added" } else { "updated" };
                println!("{what} operator {} ({})", operator.id, operator.name);
            }
            OperatorCommand::List { .. } => {
                let accounts = store.accounts().await?;
                for o in store.operators().await? {
                    let state = if o.active { "active" } else { "disabled" };
                    let avatar = o.avatar_url.unwrap_or_default();
                    // Two more columns for operators who can sign in (the first four are as
                    // they always were, for scripts that read them).
                    let account = accounts
                        .iter()
                        .find(|a| a.operator_id == o.id)
                        .map(|a| format!("\t{}\t{}", a.email, a.role.as_str()))
                        .unwrap_or_default();
                    println!("{}\t{state}\t{}\t{avatar}{account}", o.id, o.name);
                }
            }
            OperatorCommand::Disable { id, .. } => {
                let Some(mut operator) = store.operator(id.clone()).await? else {
                    anyhow::bail!("no operator `{id}` in the directory");
                };
                let was = operator.active;
                operator.active = false;
                store.put_operator(operator).await?;
                // Their tokens stop working now (on PostgreSQL the running nodes hear of it and
                // close the operator's connections) and their console sessions end.
                server::directory::set_active(&app, "cli", &id, Some(was), false)
                    .await
                    .map_err(|err| anyhow::anyhow!("{}", err.detail))?;
                println!("disabled operator {id}");
            }
        }
        Ok(())
    })
}
