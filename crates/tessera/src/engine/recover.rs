//! Start-up recovery after a crash of a process on this machine: its leases
//! are expired at once (no waiting out `run_lease_seconds`), its leftover
//! ffmpeg processes are stopped and its temporary files removed.
//!
//! A lease owner is `host-pid-suffix`. An owner on this host whose pid is no
//! longer running is certainly dead; owners on other hosts are left to their
//! leases, since only time tells whether they are.

use std::path::Path;

use crate::media;
use crate::store::DynStore;

/// The host part of owner names made on this machine.
pub fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "node".into())
}

/// Whether `owner` names a process of this host that is no longer running.
fn dead_here(owner: &str, host: &str) -> bool {
    let mut parts = owner.rsplitn(3, '-');
    let (_suffix, pid, owner_host) = (parts.next(), parts.next(), parts.next());
    let Some(pid) = pid.and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    owner_host == Some(host)
        && pid != std::process::id()
        && !Path::new(&format!("/proc/{pid}")).exists()
}

/// Expire the dead local owners' leases, stop their ffmpeg processes and
/// remove their temporary files. Errors are logged: recovery is best effort,
/// and leases expire on their own anyway.
pub async fn recover_local(store: &DynStore, data_dir: &Path, owner: &str) {
    let host = host_name();
    match store.lease_owners().await {
        Ok(owners) => {
            for dead in owners.iter().filter(|o| dead_here(o, &host)) {
                match store.expire_leases(dead).await {
                    Ok(n) => {
                        tracing::info!(owner = %dead, leases = n, "took over the work of a process that died")
                    }
                    Err(e) => {
                        tracing::warn!(owner = %dead, error = %e, "could not expire a dead process's leases")
                    }
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not read lease owners"),
    }
    let tmp = data_dir.join("tmp");
    let Ok(entries) = std::fs::read_dir(&tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // Work directories are `<run id>-<owner>`; a run id is 36 characters.
        let Some(dir_owner) = name.get(37..) else {
            continue;
        };
        if dir_owner == owner || !dead_here(dir_owner, &host) {
            continue;
        }
        let path = entry.path();
        let stopped = media::stop_processes_using(&path);
        if let Err(e) = std::fs::remove_dir_all(&path) {
            tracing::warn!(dir = %path.display(), error = %e, "could not remove a dead process's temporary files");
        } else {
            tracing::info!(dir = %path.display(), stopped, "removed a dead process's temporary files");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_owners_with_a_dead_pid_are_dead() {
        assert!(
            dead_here("my-host-4000000-abcd1234", "my-host"),
            "pids never reach 4 million here"
        );
        assert!(!dead_here(
            &format!("my-host-{}-abcd1234", std::process::id()),
            "my-host"
        ));
        assert!(!dead_here("other-4000000-abcd1234", "my-host"));
        assert!(!dead_here("garbage", "my-host"));
    }
}
