//! The tokio driver: connect, send one message, and wait until the server has stored it. Try it
//! against `surechat demo`, which prints a client token and the booking's conversation id:
//!
//! ```sh
//! surechat demo                      # in one terminal
//! cargo run -p surechat-client --example chat -- \
//!   ws://127.0.0.1:8080/v1/ws "<client token>" booking-1001 "Hello from Rust"
//! ```
//!
//! With `--store <file>` the outbox lives in a local SQLite file: stop the example before the
//! message is stored and run it again, and the same message (same id) is sent, once.

use std::time::Duration;

use client::{Client, ClientOptions, DeliveryStatus, Event};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let store = match args.iter().position(|a| a == "--store") {
        Some(i) if i + 1 < args.len() => {
            let path = args.remove(i + 1);
            args.remove(i);
            Some(path.into())
        }
        _ => None,
    };
    let [url, token, conversation, body] = <[String; 4]>::try_from(args)
        .map_err(|_| "usage: chat [--store FILE] WS_URL TOKEN CONVERSATION TEXT")?;
    let mut options = ClientOptions::new(url, token);
    options.store = store;
    let (client, mut events) = Client::start(options)?;
    let id = client.send(&conversation, &body)?;
    println!("queued {id}");
    let waited = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(event) = events.recv().await {
            match event {
                Event::ConnectionStatus(status) => println!("connection: {status:?}"),
                Event::DeliveryStatus { id: of, status, .. } if of == id => {
                    println!("{}", status.name());
                    if let DeliveryStatus::Failed { code, message } = status {
                        return Err(format!("{code}: {message}"));
                    }
                    if status != DeliveryStatus::Sending {
                        return Ok(());
                    }
                }
                Event::TokenExpired => return Err("the token was refused".to_owned()),
                _ => {}
            }
        }
        Err("the client stopped".to_owned())
    })
    .await;
    client.stop().await;
    match waited {
        Ok(Ok(())) => Ok(()),
        Ok(Err(why)) => Err(why.into()),
        Err(_) => Err("not stored within 30 s (the outbox keeps it; run again)".into()),
    }
}
