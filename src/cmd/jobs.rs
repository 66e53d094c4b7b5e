//! `quarry retry` and `quarry cancel`: send jobs back to the queue, or settle them.

use anyhow::{bail, Result};

use super::open_queue;
use crate::config::Config;
use crate::queue::JobId;

/// Sends job `job` (or, with `dead`, every dead job) back to the queue with fresh attempts.
pub async fn retry(cfg: &Config, job: Option<i64>, dead: bool) -> Result<u8> {
    let q = open_queue(cfg).await?;
    if job.is_none() && !dead {
        bail!("say which job to retry, or --dead for every dead job");
    }
    let n = q.retry(job.map(JobId)).await?;
    println!("{n} job(s) sent back to the queue; `quarry run` picks them up");
    Ok(0)
}

/// Settles a job that has not finished, so nothing waits for it.
pub async fn cancel(cfg: &Config, job: i64) -> Result<u8> {
    let q = open_queue(cfg).await?;
    if q.cancel(JobId(job)).await? {
        println!("job {job} cancelled");
    } else {
        println!("job {job} had already finished; nothing to cancel");
    }
    Ok(0)
}
