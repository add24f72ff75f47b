//! A minimal keep-alive HTTP/1.1 client for the admin calls of a bench run (creating
//! conversations, writing a backlog) and for reading `/metrics`: enough for bodies with
//! `Content-Length`, without an HTTP client stack in the binary.

use std::net::SocketAddr;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One keep-alive connection to the server.
pub struct HttpConn {
    address: SocketAddr,
    stream: BufReader<TcpStream>,
}

impl HttpConn {
    /// Connects to `address`.
    pub async fn connect(address: SocketAddr) -> anyhow::Result<HttpConn> {
        let stream = TcpStream::connect(address)
            .await
            .with_context(|| format!("connecting to {address}"))?;
        stream.set_nodelay(true)?;
        Ok(HttpConn {
            address,
            stream: BufReader::new(stream),
        })
    }

    /// `POST path` with a JSON body and a bearer token; returns the status and body.
    pub async fn post(
        &mut self,
        path: &str,
        bearer: &str,
        body: &str,
    ) -> anyhow::Result<(u16, String)> {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {bearer}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.address,
            body.len()
        );
        self.stream.get_mut().write_all(request.as_bytes()).await?;
        self.response().await
    }

    /// `GET path` without credentials (`/metrics`); returns the status and body.
    pub async fn get(&mut self, path: &str) -> anyhow::Result<(u16, String)> {
        let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.address);
        self.stream.get_mut().write_all(request.as_bytes()).await?;
        self.response().await
    }

    async fn response(&mut self) -> anyhow::Result<(u16, String)> {
        let mut line = String::new();
        if self.stream.read_line(&mut line).await? == 0 {
            bail!("the server closed the connection");
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {line:?}"))?;
        let mut length = 0;
        loop {
            line.clear();
            self.stream.read_line(&mut line).await?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse()?;
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    bail!("chunked answers are not supported here");
                }
            }
        }
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}
