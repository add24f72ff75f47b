//! `surechat send`, `tail` and `chat`: small terminal devices built on the Rust SDK, so they
//! resend, resume, upload and show delivery exactly as an app would.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use client::{
    Attachment, ChatMessage, Client, ClientOptions, ConnectionStatus, DeliveryStatus, Event,
    OutgoingFile,
};
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

/// A size for people: bytes, KiB or MiB.
fn human_size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{:.1} KiB", bytes as f64 / KIB),
        _ => format!("{:.1} MiB", bytes as f64 / KIB / KIB),
    }
}

/// The line that shows one attachment of a message: name, type and size.
fn attachment_line(attachment: &Attachment) -> String {
    format!(
        "  📎 {} ({}, {})",
        attachment.name,
        attachment.content_type,
        human_size(attachment.size)
    )
}

/// Prints a received message and a line per attachment.
fn print_message(out: &mut impl Write, message: &ChatMessage, role: bool) -> std::io::Result<()> {
    let seq = message.seq.unwrap_or(0);
    if role {
        writeln!(
            out,
            "#{seq} {} ({}): {}",
            message.sender, message.role, message.body
        )?;
    } else {
        writeln!(out, "#{seq} {}: {}", message.sender, message.body)?;
    }
    for attachment in &message.attachments {
        writeln!(out, "{}", attachment_line(attachment))?;
    }
    Ok(())
}

fn read_file(path: &Path) -> anyhow::Result<OutgoingFile> {
    OutgoingFile::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// `surechat send`: sends one message (with files, if any), waits until it is durable on the
/// server, prints its seq.
pub async fn send(
    args: DeviceArgs,
    text: Option<String>,
    attach: Vec<PathBuf>,
) -> anyhow::Result<()> {
    if text.is_none() && attach.is_empty() {
        bail!("give a text, or files with --attach");
    }
    let files = attach
        .iter()
        .map(|path| read_file(path))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (client, mut events) = args.start()?;
    let text = text.unwrap_or_default();
    let id = if files.is_empty() {
        client.send(&args.conversation, &text)?
    } else {
        client.send_with_files(&args.conversation, &text, files)?
    };
    while let Some(event) = events.recv().await {
        match event {
            Event::UploadProgress {
                id: i,
                offset,
                length,
                ..
            } if i == id => eprintln!("upload: {} of {}", human_size(offset), human_size(length)),
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
                print_message(&mut out, &m, true)?;
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

/// `surechat chat`: an interactive terminal client. Lines typed are sent; incoming messages
/// (with a line per attachment), ticks and connection changes are printed as they happen.
/// `/attach PATH` sends a file, `/retry` retries failed messages, `/read` marks the
/// conversation read, `/quit` leaves.
pub async fn chat(args: DeviceArgs) -> anyhow::Result<()> {
    let (client, mut events) = args.start()?;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut mine: Vec<(String, String)> = Vec::new();
    eprintln!(
        "chat in {} — type a message and Enter; /attach PATH, /retry, /read, /quit",
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
                    command if command.starts_with("/attach ") => {
                        let path = PathBuf::from(command["/attach ".len()..].trim());
                        match read_file(&path) {
                            Ok(file) => {
                                let name = file.name.clone();
                                match client.send_with_files(&args.conversation, "", vec![file]) {
                                    Ok(id) => mine.push((id, format!("📎 {name}"))),
                                    Err(err) => eprintln!("  {err}"),
                                }
                            }
                            Err(err) => eprintln!("  {err:#}"),
                        }
                    }
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
                        print_message(&mut std::io::stdout().lock(), &m, false)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attachment_shows_as_name_type_and_size() {
        let attachment = Attachment {
            id: "00000000-0000-4000-8000-000000000001".into(),
            name: "scan.pdf".into(),
            content_type: "application/pdf".into(),
            size: 1_572_864,
            sha256: String::new(),
            width: None,
            height: None,
            thumb: false,
        };
        assert_eq!(
            attachment_line(&attachment),
            "  📎 scan.pdf (application/pdf, 1.5 MiB)"
        );
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(2_560), "2.5 KiB");
    }
}
