//! Start-up recovery after a crash of a process on this machine: its leases
//! are expired at once (no waiting out `run_lease_seconds`), its leftover
//! ffmpeg processes are stopped and its temporary files removed.
//!
//! A lease owner is `host-pid-suffix`, where `host` names the machine's
//! host name, its current boot and the process's PID namespace: pids are
//! only comparable between processes that share all three (two containers or
//! cloned VMs with one host name are different hosts here). An owner of this
//! host whose pid is no longer running is certainly dead; owners of other
//! hosts are left to their leases, since only time tells whether they are.

use std::path::Path;

use crate::media;
use crate::store::DynStore;

/// The host part of owner names made by this process:
/// `hostname@boot.pidns`.
pub fn host_name() -> String {
    let name = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".into());
    let boot: String = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(8)
        .collect();
    // "pid:[4026531836]" → "4026531836"
    let pid_namespace: String = std::fs::read_link("/proc/self/ns/pid")
        .map(|l| {
            l.to_string_lossy()
                .chars()
                .filter(char::is_ascii_digit)
                .collect()
        })
        .unwrap_or_default();
    format!("{name}@{boot}.{pid_namespace}")
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

    #[test]
    fn another_pid_namespace_or_boot_is_another_host() {
        let here = host_name();
        assert!(here.contains('@') && here.contains('.'), "{here}");
        assert!(dead_here(&format!("{here}-4000000-abcd1234"), &here));
        let (name, _) = here.split_once('@').unwrap();
        assert!(!dead_here(
            &format!("{name}@00000000.1-4000000-abcd1234"),
            &here
        ));
    }
}
