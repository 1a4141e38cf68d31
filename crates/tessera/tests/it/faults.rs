//! A fault-injecting webhook receiver on raw loopback sockets: each server
//! behaves one way (a status, a reset, a stall, a trickle, a huge body…) and
//! records every request it gets.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the receiver answers.
#[derive(Clone, Debug)]
pub enum Behaviour {
    Status(u16),
    StatusWithRetryAfter(u16, u64),
    /// A redirect whose Location points back at this server's `/target`.
    Redirect(u16),
    /// Read the request, then reset the connection halfway through the answer.
    ResetMidResponse,
    /// Accept and read, never answer.
    Never,
    /// Send the status line and headers, then stall.
    HeadersThenStall,
    /// Send headers, then one body byte every 200 ms.
    Trickle,
    /// A 200 with a 10 MiB body.
    Huge,
    /// A 400 whose body is not UTF-8.
    NonUtf8,
    /// These exact bytes as the response.
    Raw(Vec<u8>),
}

#[derive(Clone, Debug)]
pub struct Hit {
    pub path: String,
    pub at: Instant,
}

#[derive(Clone)]
pub struct FaultServer {
    pub addr: SocketAddr,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl FaultServer {
    pub async fn start(behaviour: Behaviour) -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let recorded = hits.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let behaviour = behaviour.clone();
                let hits = recorded.clone();
                tokio::spawn(async move { serve(stream, behaviour, addr, hits).await });
            }
        });
        FaultServer { addr, hits }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    pub fn hits_on(&self, path: &str) -> usize {
        self.hits().iter().filter(|h| h.path == path).count()
    }
}

/// Read one request head (and its body, by Content-Length).
async fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let header = |name: &str| {
        head.lines()
            .find(|l| l.to_ascii_lowercase().starts_with(&format!("{name}:")))
            .map(|l| l[name.len() + 1..].trim().to_owned())
    };
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    Some(path)
}

async fn serve(
    mut stream: TcpStream,
    behaviour: Behaviour,
    addr: SocketAddr,
    hits: Arc<Mutex<Vec<Hit>>>,
) {
    let Some(path) = read_request(&mut stream).await else {
        return;
    };
    hits.lock().unwrap().push(Hit {
        path: path.clone(),
        at: Instant::now(),
    });
    let simple = |code: u16, extra: &str, body: &[u8]| {
        let mut out = format!(
            "HTTP/1.1 {code} Whatever\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
        out
    };
    let _ = match behaviour {
        Behaviour::Status(code) => stream.write_all(&simple(code, "", b"{\"ok\":true}")).await,
        Behaviour::StatusWithRetryAfter(code, secs) => {
            stream
                .write_all(&simple(
                    code,
                    &format!("retry-after: {secs}\r\n"),
                    b"slow down",
                ))
                .await
        }
        Behaviour::Redirect(code) => {
            stream
                .write_all(&simple(
                    code,
                    &format!("location: http://{addr}/target\r\n"),
                    b"",
                ))
                .await
        }
        Behaviour::ResetMidResponse => {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\npartial")
                .await;
            let _ = stream.set_zero_linger();
            drop(stream);
            return;
        }
        Behaviour::Never => {
            tokio::time::sleep(Duration::from_secs(600)).await;
            Ok(())
        }
        Behaviour::HeadersThenStall => {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n")
                .await;
            tokio::time::sleep(Duration::from_secs(600)).await;
            Ok(())
        }
        Behaviour::Trickle => {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
                .await;
            for _ in 0..1000 {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if stream.write_all(b"x").await.is_err() {
                    return;
                }
            }
            Ok(())
        }
        Behaviour::Huge => {
            let body = vec![b'a'; 10 * 1024 * 1024];
            stream.write_all(&simple(200, "", &body)).await
        }
        Behaviour::NonUtf8 => {
            stream
                .write_all(&simple(400, "", &[0xff, 0xfe, b'h', b'i', 0xc3]))
                .await
        }
        Behaviour::Raw(bytes) => stream.write_all(&bytes).await,
    };
    let _ = stream.shutdown().await;
}
