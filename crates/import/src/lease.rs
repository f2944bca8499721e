//! Who holds an importer's lease, in a form that lets the next run tell a
//! crashed holder from a live one.
//!
//! A run's lease lasts minutes so that a slow mail never lets a second run
//! in. A run that is killed (SIGKILL, power cut, OOM) cannot release it, and
//! waiting for it to expire would stall every import for that long. So the
//! owner names its host, process id and the process's start time: a run on
//! the same host whose holder process no longer exists (or whose pid now
//! belongs to another process) takes the lease over at once. Holders on
//! other hosts are left to expire, since their liveness cannot be seen.

use std::sync::OnceLock;

use store::Store;
use store::importers::ImporterRecord;

/// The lease a run of `importer` holds: the mailbox's (within its client),
/// so two importers of one mailbox never work its Inbox at once on any
/// instance; the importer's own while the mailbox cannot be named (a
/// delegated importer of an own mailbox before its first sign-in).
pub async fn lease_name(store: &Store, importer: &ImporterRecord) -> store::Result<String> {
    let account = match importer.settings.delegated_access() {
        Some(_) => store.grant(&importer.id).await?.and_then(|g| g.account),
        None => None,
    };
    Ok(match importer.settings.mailbox_key(account.as_deref()) {
        Some(key) => format!("mailbox:{}:{key}", importer.client_id),
        None => format!("import:{}", importer.id),
    })
}

/// `host|pid|start|random`: unique per run, and checkable on this host.
pub fn owner_name() -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    match this_process() {
        Some(me) => format!("{}|{}|{}|{}", me.host, me.pid, me.start, &random[..12]),
        None => format!("run|{random}"),
    }
}

/// True when `holder` names a process of this host that has ended.
pub fn holder_is_gone(holder: &str) -> bool {
    let Some(me) = this_process() else {
        return false;
    };
    let mut parts = holder.split('|');
    let (Some(host), Some(pid), Some(start), Some(_)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    if host != me.host {
        return false;
    }
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    if pid == me.pid {
        // This very process: another run here is alive by definition.
        return false;
    }
    match start_time(pid) {
        Ok(Some(now_start)) => now_start != start,
        // No such process any more.
        Ok(None) => true,
        // /proc unreadable: cannot tell, so never steal.
        Err(()) => false,
    }
}

struct Me {
    host: String,
    pid: u32,
    start: String,
}

fn this_process() -> Option<&'static Me> {
    static ME: OnceLock<Option<Me>> = OnceLock::new();
    ME.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
        let pid = std::process::id();
        let start = start_time(pid).ok()??;
        Some(Me {
            host: host.trim().replace('|', "_"),
            pid,
            start,
        })
    })
    .as_ref()
}

/// The process's start time in clock ticks since boot (field 22 of
/// `/proc/PID/stat`); `Ok(None)` when there is no such process.
fn start_time(pid: u32) -> Result<Option<String>, ()> {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The command name (field 2) is in parentheses and may contain
            // spaces and parentheses: count fields after the last `)`.
            let after = stat.rsplit_once(')').map(|(_, rest)| rest).ok_or(())?;
            // `after` starts with field 3 (state); field 22 is the 20th from there.
            after
                .split_whitespace()
                .nth(19)
                .map(|s| Some(s.to_owned()))
                .ok_or(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(_) => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_holder_is_kept_and_an_ended_one_is_not() {
        let me = owner_name();
        assert!(!holder_is_gone(&me), "this process is alive");
        assert!(
            !holder_is_gone("other-run"),
            "unknown shapes are never stolen"
        );
        let parts: Vec<&str> = me.split('|').collect();
        assert_eq!(parts.len(), 4, "{me}");
        // A process that has ended: a child we waited for.
        let child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id();
        let mut child = child;
        child.wait().expect("wait");
        let gone = format!("{}|{pid}|1|abc", parts[0]);
        assert!(holder_is_gone(&gone));
        // A pid now used by a process started at another time was reused.
        let reused = format!("{}|1|999999999999|abc", parts[0]);
        assert!(holder_is_gone(&reused), "pid 1 started at another time");
        let elsewhere = format!("other-host|{pid}|1|abc");
        assert!(!holder_is_gone(&elsewhere), "other hosts expire instead");
    }
}
