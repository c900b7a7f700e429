//! Worker processes killed, stopped and replaced one at a time, in their slot of the stack's
//! list: what the chaos injector (`scenario::chaos_inject`) and the crash tests do to them.
//! A replaced worker keeps its slot, so "worker 2" means the same place before and after.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::process::Command;

use super::Stack;

impl Stack {
    /// Kills worker `index` with SIGKILL, as a crash would.
    pub async fn kill_worker(&self, index: usize) -> anyhow::Result<()> {
        let mut child = self.workers.lock().expect("worker list lock").remove(index);
        child.start_kill()?;
        child.wait().await?;
        Ok(())
    }

    /// Process ids of the running workers, in slot order (0 for one already reaped).
    pub fn worker_pids(&self) -> Vec<u32> {
        let workers = self.workers.lock().expect("worker list lock");
        workers.iter().map(|c| c.id().unwrap_or(0)).collect()
    }

    /// Kills worker `index` with SIGKILL and starts a new one in its slot; the new pid.
    pub async fn restart_worker(&self, index: usize, exe: &Path) -> anyhow::Result<u32> {
        self.kill_worker(index).await?;
        self.spawn_worker_at(index, exe)
    }

    /// Sends SIGTERM to worker `index` and waits up to `bound` for it to exit (then
    /// SIGKILL): its exit status (`None`: it had to be killed) and how long it took. The
    /// slot is left empty for [`Stack::spawn_worker_at`].
    pub async fn terminate_worker(
        &self,
        index: usize,
        bound: Duration,
    ) -> anyhow::Result<(Option<std::process::ExitStatus>, Duration)> {
        let mut child = self.workers.lock().expect("worker list lock").remove(index);
        let pid = child.id().context("worker already reaped")?;
        let started = Instant::now();
        Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .await?;
        match tokio::time::timeout(bound, child.wait()).await {
            Ok(status) => Ok((Some(status?), started.elapsed())),
            Err(_) => {
                child.kill().await?;
                Ok((None, started.elapsed()))
            }
        }
    }

    /// Starts a worker in slot `index` (at most the worker count); its pid.
    pub fn spawn_worker_at(&self, index: usize, exe: &Path) -> anyhow::Result<u32> {
        let (child, pid) = self.start_worker(exe)?;
        self.workers
            .lock()
            .expect("worker list lock")
            .insert(index, child);
        Ok(pid)
    }

    /// Starts a new worker in the slot of every worker that exited on its own (nobody here
    /// killed it): how many. A crash-looping worker shows up as a count above zero.
    pub fn respawn_exited_workers(&self, exe: &Path) -> anyhow::Result<usize> {
        let mut workers = self.workers.lock().expect("worker list lock");
        let mut respawned = 0;
        for slot in workers.iter_mut() {
            if slot.try_wait()?.is_some() {
                *slot = self.start_worker(exe)?.0;
                respawned += 1;
            }
        }
        Ok(respawned)
    }
}
