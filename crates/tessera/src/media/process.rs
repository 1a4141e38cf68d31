//! Spawning one ffmpeg/ffprobe process: bounded output capture, timeout,
//! cancellation (the process is killed), and error texts without paths.

use std::future::pending;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::MediaError;

/// How much of stderr is kept for error messages (the end is what matters).
const STDERR_TAIL_BYTES: usize = 2048;

/// One invocation to run.
pub(super) struct Job<'a> {
    pub tool: &'static str,
    pub program: &'a Path,
    pub args: &'a [String],
    /// Keep at most this much of the end of stdout.
    pub stdout_tail: usize,
    /// Keep at most this much of the end of stderr (at least the part used
    /// for error messages).
    pub stderr_tail: usize,
    pub timeout: Option<Duration>,
    pub cancel: Option<&'a CancellationToken>,
    /// Strings (file paths) replaced by a placeholder in error texts.
    pub redact: &'a [(&'a str, &'static str)],
}

/// What a finished process left behind.
pub(super) struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    /// The end of stderr as a message for users (paths redacted).
    pub stderr: String,
    /// Up to `stderr_tail` bytes of stderr, as written (for parsing).
    pub stderr_raw: String,
}

impl Finished {
    /// Turns a non-zero exit into [`MediaError::Failed`].
    pub fn success(self, tool: &'static str) -> Result<Self, MediaError> {
        if self.status.success() {
            return Ok(self);
        }
        Err(MediaError::Failed {
            tool,
            status: self.status.to_string(),
            detail: self.stderr,
        })
    }
}

enum Outcome {
    Done(std::io::Result<ExitStatus>, Vec<u8>, Vec<u8>),
    Cancelled,
    TimedOut,
}

/// Runs `job` to completion, or kills it on cancellation or timeout.
pub(super) async fn run(job: Job<'_>) -> Result<Finished, MediaError> {
    tracing::debug!(
        command = %command_line(job.program, job.args),
        "spawning {}",
        job.tool
    );
    let mut child = Command::new(job.program)
        .args(job.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| MediaError::Unavailable {
            tool: job.tool,
            reason: e.to_string(),
        })?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let outcome = tokio::select! {
        (out, err, status) = async {
            tokio::join!(
                read_tail(stdout, job.stdout_tail),
                read_tail(stderr, job.stderr_tail.max(STDERR_TAIL_BYTES)),
                child.wait()
            )
        } => Outcome::Done(status, out, err),
        () = cancelled(job.cancel) => Outcome::Cancelled,
        () = expired(job.timeout) => Outcome::TimedOut,
    };
    match outcome {
        Outcome::Done(status, stdout, stderr) => Ok(Finished {
            status: status.map_err(MediaError::io("waiting for a media process"))?,
            stdout,
            stderr: clean_stderr(
                &stderr[stderr.len().saturating_sub(STDERR_TAIL_BYTES)..],
                job.redact,
            ),
            stderr_raw: String::from_utf8_lossy(&stderr).into_owned(),
        }),
        Outcome::Cancelled => {
            kill(&mut child).await;
            Err(MediaError::Cancelled)
        }
        Outcome::TimedOut => {
            kill(&mut child).await;
            Err(MediaError::TimedOut {
                tool: job.tool,
                seconds: job.timeout.map_or(0, |t| t.as_secs()),
            })
        }
    }
}

async fn kill(child: &mut tokio::process::Child) {
    // The process may have exited on its own in the meantime; either way it is gone.
    if let Err(e) = child.kill().await {
        tracing::debug!(error = %e, "killing a media process");
    }
}

async fn cancelled(token: Option<&CancellationToken>) {
    match token {
        Some(token) => token.cancelled().await,
        None => pending().await,
    }
}

async fn expired(timeout: Option<Duration>) {
    match timeout {
        Some(limit) => tokio::time::sleep(limit).await,
        None => pending().await,
    }
}

/// The command as a shell would take it, for debug logs: arguments with
/// anything but safe characters are single-quoted.
pub(super) fn command_line(program: &Path, args: &[String]) -> String {
    std::iter::once(program.to_string_lossy().into_owned())
        .chain(args.iter().cloned())
        .map(|arg| shell_quote(&arg))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(arg: &str) -> String {
    let safe = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=+,@%".contains(&b));
    if safe {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// Reads a pipe to its end, keeping only the last `cap` bytes, so a chatty
/// process cannot fill memory and never blocks on a full pipe.
async fn read_tail(pipe: Option<impl AsyncRead + Unpin>, cap: usize) -> Vec<u8> {
    let Some(mut pipe) = pipe else {
        return Vec::new();
    };
    let mut kept = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => kept.extend_from_slice(&chunk[..n]),
        }
        if kept.len() > cap.saturating_mul(2) {
            kept.drain(..kept.len() - cap);
        }
    }
    if kept.len() > cap {
        kept.drain(..kept.len() - cap);
    }
    kept
}

/// The stderr tail as text fit for users: whole lines only, paths replaced,
/// ffmpeg's `@ 0x…` context pointers removed.
fn clean_stderr(raw: &[u8], redact: &[(&str, &'static str)]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut text = if raw.len() >= STDERR_TAIL_BYTES {
        // The first line was probably cut in the middle.
        text.split_once('\n')
            .map_or("", |(_, rest)| rest)
            .to_owned()
    } else {
        text.into_owned()
    };
    for (needle, placeholder) in redact {
        if !needle.is_empty() {
            text = text.replace(needle, placeholder);
        }
    }
    let lines: Vec<String> = text
        .lines()
        .map(strip_pointers)
        .filter(|l| !l.trim().is_empty())
        .collect();
    lines.join("; ")
}

/// `[mov,mp4 @ 0x55d1c0] moov atom not found` → `[mov,mp4] moov atom not found`.
fn strip_pointers(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find(" @ 0x") {
        out.push_str(&rest[..at]);
        let after = &rest[at + " @ 0x".len()..];
        rest = after.trim_start_matches(|c: char| c.is_ascii_hexdigit());
    }
    out.push_str(rest);
    out
}

/// Stop (SIGKILL) every process whose command line mentions `dir`: ffmpeg
/// jobs left behind by a process of ours that died. Returns how many were
/// stopped. Linux only (`/proc`); elsewhere it stops nothing.
pub fn stop_processes_using(dir: &Path) -> usize {
    let needle = dir.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let me = std::process::id().to_string();
    let pids: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().into_owned();
            let is_pid = pid.bytes().all(|b| b.is_ascii_digit()) && pid != me;
            let cmdline = is_pid
                .then(|| std::fs::read(e.path().join("cmdline")).ok())
                .flatten()?;
            String::from_utf8_lossy(&cmdline)
                .contains(&needle)
                .then_some(pid)
        })
        .collect();
    if pids.is_empty() {
        return 0;
    }
    match std::process::Command::new("kill")
        .arg("-9")
        .args(&pids)
        .status()
    {
        Ok(_) => pids.len(),
        Err(e) => {
            tracing::warn!(error = %e, "could not stop leftover processes");
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_loses_paths_and_pointers() {
        let raw = b"[mov,mp4,m4a @ 0x5559905252c0] moov atom not found\nfile:/tmp/x/in.mp4: Invalid data\n";
        let text = clean_stderr(raw, &[("file:/tmp/x/in.mp4", "input")]);
        assert_eq!(
            text,
            "[mov,mp4,m4a] moov atom not found; input: Invalid data"
        );
    }

    #[test]
    fn command_lines_are_quoted_like_a_shell_would_need() {
        let args = [
            "-i".to_owned(),
            "file:/tmp/a b.mp4".to_owned(),
            "-filter_complex".to_owned(),
            "[0:V:0]scale=2:2[v];x='y'".to_owned(),
            String::new(),
        ];
        assert_eq!(
            command_line(Path::new("/usr/bin/ffmpeg"), &args),
            r"/usr/bin/ffmpeg -i 'file:/tmp/a b.mp4' -filter_complex '[0:V:0]scale=2:2[v];x='\''y'\''' ''"
        );
    }

    #[test]
    fn a_cut_first_line_is_dropped() {
        let mut raw = vec![b'x'; STDERR_TAIL_BYTES];
        raw.extend_from_slice(b"\nlast words\n");
        assert_eq!(clean_stderr(&raw, &[]), "last words");
    }

    #[tokio::test]
    async fn only_the_tail_of_a_long_output_is_kept() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let kept = read_tail(Some(&data[..]), 1000).await;
        assert_eq!(kept, &data[data.len() - 1000..]);
    }
}
