//! `surechat send`, `tail` and `chat`: small terminal devices built on the Rust SDK, so they
//! resend, resume and show delivery exactly as an app would.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use client::{Client, ClientOptions, ConnectionStatus, DeliveryStatus, Event};
use tokio::io::AsyncBufReadExt;

/// Options every device command takes.
#[derive(Args, Clone)]
pub struct DeviceArgs {
    /// Conversation id.
    #[arg(long)]
    conversation: String,
    /// The user's token [env SURECHAT_TOKEN].
    #[arg(long, env = "SURECHAT_TOKEN")]
    token: String,
    /// Server URL (`ws://…/v1/ws`, or the server's `http://host:port`).
    #[arg(long, default_value = "ws://127.0.0.1:8080/v1/ws")]
    server: String,
    /// Local store file: outbox and cursors survive restarts. In memory if absent.
    #[arg(long)]
    store: Option<PathBuf>,
}

impl DeviceArgs {
    fn start(&self) -> anyhow::Result<(Client, tokio::sync::mpsc::Receiver<Event>)> {
        let mut url = self.server.trim_end_matches('/').to_owned();
        if let Some(rest) = url.strip_prefix("http") {
            url = format!("ws{rest}");
        }
        if !url.ends_with("/v1/ws") {
            url.push_str("/v1/ws");
        }
        let mut options = ClientOptions::new(url, self.token.clone());
        options.store = self.store.clone();
        Ok(Client::start(options)?)
    }
}

/// `surechat send`: sends one message, waits until it is durable on the server, prints its seq.
pub async fn send(args: DeviceArgs, text: String) -> anyhow::Result<()> {
    let (client, mut events) = args.start()?;
    let id = client.send(&args.conversation, &text)?;
    while let Some(event) = events.recv().await {
        match event {
            Event::DeliveryStatus {
                id: i,
                status: DeliveryStatus::Sent { seq },
                ..
            } if i == id => {
                println!("{seq}");
                client.stop().await;
                return Ok(());
            }
            Event::DeliveryStatus {
                id: i,
                status: DeliveryStatus::Failed { code, message },
                ..
            } if i == id => {
                client.stop().await;
                bail!("message failed: {code}: {message}");
            }
            Event::ConnectionStatus(ConnectionStatus::Disconnected) => {
                bail!("disconnected: the server refused the connection")
            }
            Event::TokenExpired => bail!("the token is expired or invalid"),
            Event::ConnectionStatus(status) => eprintln!("connection: {}", status.name()),
            _ => {}
        }
    }
    bail!("the client stopped")
}

/// `surechat tail`: prints messages and receipts as they come, resuming after disconnects.
pub async fn tail(args: DeviceArgs) -> anyhow::Result<()> {
    let (_client, mut events) = args.start()?;
    let mut out = std::io::stdout().lock();
    while let Some(event) = events.recv().await {
        match event {
            Event::Message(m) if m.conversation == args.conversation => {
                writeln!(
                    out,
                    "#{} {} ({}): {}",
                    m.seq.unwrap_or(0),
                    m.sender,
                    m.role,
                    m.body
                )?;
            }
            Event::Receipt {
                conversation,
                user_id,
                delivered,
                read,
                ..
            } if conversation == args.conversation => {
                writeln!(out, "receipt {user_id} delivered={delivered} read={read}")?;
            }
            Event::ConnectionStatus(status) => eprintln!("connection: {}", status.name()),
            Event::TokenExpired => bail!("the token is expired or invalid"),
            _ => {}
        }
        out.flush()?;
    }
    Ok(())
}

fn tick(status: &DeliveryStatus) -> String {
    match status {
        DeliveryStatus::Sending => "🕓 sending".into(),
        DeliveryStatus::Sent { .. } => "✓ sent".into(),
        DeliveryStatus::Delivered => "✓✓ delivered".into(),
        DeliveryStatus::Read => "✓✓ read".into(),
        DeliveryStatus::Failed { code, .. } => format!("✗ failed ({code}) — type /retry"),
    }
}

/// `surechat chat`: an interactive terminal client. Lines typed are sent; incoming messages,
/// ticks and connection changes are printed as they happen. `/retry` retries failed messages,
/// `/read` marks the conversation read, `/quit` leaves.
pub async fn chat(args: DeviceArgs) -> anyhow::Result<()> {
    let (client, mut events) = args.start()?;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut mine: Vec<(String, String)> = Vec::new();
    eprintln!(
        "chat in {} — type a message and Enter; /retry, /read, /quit",
        args.conversation
    );
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line.context("reading the terminal")? else { break };
                match line.trim() {
                    "" => {}
                    "/quit" => break,
                    "/retry" => println!("retrying {} failed message(s)", client.retry_failed().await?),
                    "/read" => client.mark_read(&args.conversation)?,
                    text => {
                        let id = client.send(&args.conversation, text)?;
                        mine.push((id, text.chars().take(40).collect()));
                    }
                }
            }
            event = events.recv() => {
                let Some(event) = event else { break };
                match event {
                    Event::Message(m) if m.conversation == args.conversation && m.status.is_none() => {
                        println!("#{} {}: {}", m.seq.unwrap_or(0), m.sender, m.body);
                        client.mark_read(&args.conversation)?;
                    }
                    Event::DeliveryStatus { id, status, .. } => {
                        if let Some((_, text)) = mine.iter().find(|(i, _)| *i == id) {
                            println!("  [{}] {text}", tick(&status));
                        }
                    }
                    Event::Typing { user_id, active: true, .. } => eprintln!("  {user_id} is typing…"),
                    Event::ConnectionStatus(status) => eprintln!("  connection: {}", status.name()),
                    Event::TokenExpired => bail!("the token is expired or invalid"),
                    _ => {}
                }
            }
        }
    }
    client.stop().await;
    Ok(())
}
