//! Tessera as a separate OS process, for tests that kill it with SIGKILL.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::API_KEY;

pub struct ServerProcess {
    child: Child,
    pub addr: SocketAddr,
}

impl ServerProcess {
    /// Start `tessera serve` on port 0 with these extra `TESSERA_*` settings
    /// and wait until it listens.
    pub fn start(data_dir: &Path, env: &[(&str, &str)]) -> ServerProcess {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
        cmd.arg("serve")
            .env("TESSERA_LISTEN", "127.0.0.1:0")
            .env("TESSERA_DATA_DIR", data_dir)
            .env("TESSERA_BOOTSTRAP_API_KEY", API_KEY)
            .env("TESSERA_ALLOW_PRIVATE_TARGETS", "127.0.0.0/8")
            .env("RUST_LOG", "tessera=info")
            // The suite's database unless the test names one.
            .envs(
                env.iter()
                    .all(|(k, _)| *k != "TESSERA_DATABASE_URL")
                    .then(|| crate::support::database_url(data_dir))
                    .flatten()
                    .map(|u| ("TESSERA_DATABASE_URL", u)),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start tessera");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line
                    .split("addr=")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    && line.contains("Tessera is listening")
                {
                    let _ = tx.send(addr.parse::<SocketAddr>().ok());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("tessera did not start listening")
            .expect("tessera printed an unparsable address");
        ServerProcess { child, addr }
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then wait up to `deadline` for the process to exit.
    /// Returns whether it exited in time.
    pub fn terminate(mut self, deadline: Duration) -> bool {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let until = std::time::Instant::now() + deadline;
        while std::time::Instant::now() < until {
            if self.child.try_wait().unwrap().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// GET `path` with the test key and parse the JSON answer.
    pub async fn get_json(&self, client: &reqwest::Client, path: &str) -> serde_json::Value {
        client
            .get(self.url(path))
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
