//! `surechat operator add|list|disable`: the operator directory, written straight into the
//! storage the configuration names (the SQLite file under `--data`, or `--database`), like
//! `surechat migrate`. It works with the server stopped or running: SQLite serialises the
//! writers, and the server reads the directory on every check, so a change counts at once.

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
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Print the directory: id, active or disabled, name, avatar URL (tab-separated).
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
        | OperatorCommand::Disable { server, .. } => server.clone(),
    };
    let config = server.load(None)?;
    crate::serve::runtime()?.block_on(async move {
        let store = crate::serve::open_store(&config).await?.into_store();
        match command {
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
                for o in store.operators().await? {
                    let state = if o.active { "active" } else { "disabled" };
                    let avatar = o.avatar_url.unwrap_or_default();
                    println!("{}\t{state}\t{}\t{avatar}", o.id, o.name);
                }
            }
            OperatorCommand::Disable { id, .. } => {
                let Some(mut operator) = store.operator(id.clone()).await? else {
                    anyhow::bail!("no operator `{id}` in the directory");
                };
                operator.active = false;
                store.put_operator(operator).await?;
                // Their tokens stop working now; on PostgreSQL the running nodes hear of it and
                // close the operator's connections.
                store.revoke_tokens(id.clone(), server::now_s()).await?;
                println!("disabled operator {id}");
            }
        }
        Ok(())
    })
}
