//! The long-running tasks of the fan-out: one loop per projector (fed by
//! the process's fan-out, the log filling gaps), the relay to NATS and the
//! lag monitor.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use sqlx::AnyPool;
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use annals_domain::StoredEvent;
use annals_projections::Projector;

use super::consumer::{
    caught_up_from_log, Checkpoints, ConsumerState, ProjectorRunner, BATCH, FLUSH_AFTER,
};
use super::fanout::Batch;
use super::nats::{self, NatsBus};
use crate::store::{now_millis, LogReader, Next, Taker};

/// Checkpoint name of the relay to NATS.
pub const RELAY: &str = "nats-relay";
const LEASE_TTL: Duration = Duration::from_secs(10);
/// How often the relay stores its checkpoint while it publishes.
const RELAY_SAVE_EVERY: Duration = Duration::from_millis(100);
/// How long a server-mode consumer waits for JetStream before it looks at
/// the log head itself.
pub const DOORBELL: Duration = Duration::from_millis(500);

/// Everything a worker loop needs.
#[derive(Clone)]
pub struct WorkerContext {
    pub pool: AnyPool,
    /// For the projectors' read models (`store::Db::derived`).
    pub derived: AnyPool,
    pub log: LogReader,
    /// Position of the latest append made by this process.
    pub appended: watch::Receiver<i64>,
    /// The events this process's writer committed (`store::Handoff`).
    pub handoff: crate::store::Handoff,
    pub stop: watch::Receiver<bool>,
    pub nats: Option<NatsBus>,
}

/// Until this process's next append (handed over or signalled), `poll`
/// (then the taker owes a read of the log), or the process's stop.
pub(crate) async fn wait_for_append(ctx: &mut WorkerContext, taker: &mut Taker, poll: Duration) {
    tokio::select! {
        _ = ctx.appended.changed() => {}
        _ = taker.wait() => {}
        _ = tokio::time::sleep(poll) => taker.poll(),
        _ = nats::stopped(&mut ctx.stop) => {}
    }
}

/// Sleeps for `duration`, or less if the process is stopping.
pub(crate) async fn pause(stop: &mut watch::Receiver<bool>, duration: Duration) {
    let _ = tokio::time::timeout(duration, nats::stopped(stop)).await;
}

/// Runs one projector until the process stops or the projector fails.
/// Events come from the process's fan-out (`feed`); the log fills gaps and
/// is read directly at start, after falling behind, and whenever the feed
/// is quiet while the log is ahead (NATS unreachable, a stalled relay).
pub async fn run_projector(
    projector: Arc<dyn Projector>,
    state: Arc<ConsumerState>,
    mut feed: broadcast::Receiver<Batch>,
    mut ctx: WorkerContext,
) -> Result<()> {
    let name = projector.name();
    let mut runner = loop {
        match ProjectorRunner::start(
            projector.clone(),
            state.clone(),
            ctx.derived.clone(),
            ctx.log.clone(),
        )
        .await
        {
            Ok(runner) => break runner,
            Err(err) => {
                tracing::warn!(consumer = name, error = %format!("{err:#}"), "cannot start; retrying");
                pause(&mut ctx.stop, Duration::from_secs(1)).await;
                if *ctx.stop.borrow() {
                    return Ok(());
                }
            }
        }
    };
    let mut from_log = true;
    while !*ctx.stop.borrow() {
        if from_log {
            runner.catch_up(&ctx.stop).await?;
            flush_if(&mut runner, MAX_UNSAVED).await;
            from_log = false;
        }
        let wait = if runner.unsaved_for().is_some() {
            FLUSH_AFTER
        } else {
            DOORBELL
        };
        tokio::select! {
            batch = feed.recv() => match batch {
                Ok(batch) => {
                    let batch = with_waiting(batch, &mut feed, runner.checkpoint());
                    runner.deliver(&batch, &ctx.stop).await?;
                    flush_if(&mut runner, MAX_UNSAVED).await;
                }
                // Fell behind the feed: the log has what was dropped.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    caught_up_from_log(name, "lagged");
                    from_log = true;
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = tokio::time::sleep(wait) => {
                flush_if(&mut runner, Duration::ZERO).await;
                // Quiet: if the log is ahead anyway (a lost stream tail, a
                // stalled relay, NATS down), the log is the truth.
                from_log = ctx
                    .log
                    .head()
                    .await
                    .map_or(true, |head| head > runner.checkpoint());
                if from_log {
                    caught_up_from_log(name, "quiet");
                }
            }
            _ = nats::stopped(&mut ctx.stop) => {}
        }
    }
    flush_if(&mut runner, Duration::ZERO).await;
    Ok(())
}

/// The batch with those that came while the projector was busy (up to
/// `BATCH` events): under load a projector applies several of the feed's
/// batches in one transaction, and when idle it waits for nothing. What
/// it has applied already (`applied`: its checkpoint) is left out, not
/// copied — a relay catching up re-sends much of that.
fn with_waiting(first: Batch, feed: &mut broadcast::Receiver<Batch>, applied: i64) -> Batch {
    fn fresh(batch: &Batch, applied: i64) -> impl Iterator<Item = StoredEvent> + '_ {
        batch.iter().filter(move |e| e.position > applied).cloned()
    }
    let mut merged: Option<Vec<StoredEvent>> = None;
    loop {
        let count = merged.as_ref().map_or(first.len(), Vec::len);
        if count >= BATCH as usize {
            break;
        }
        let Ok(next) = feed.try_recv() else { break };
        if next.last().is_none_or(|e| e.position <= applied) {
            continue;
        }
        merged
            .get_or_insert_with(|| fresh(&first, applied).collect())
            .extend(fresh(&next, applied));
    }
    match merged {
        None => first,
        Some(mut events) => {
            events.sort_by_key(|e| e.position);
            events.dedup_by_key(|e| e.position);
            Arc::new(events)
        }
    }
}

/// A checkpoint that moved in memory is stored at least this often, even
/// while events keep coming.
const MAX_UNSAVED: Duration = Duration::from_secs(1);

/// Stores the runner's checkpoint if it has been ahead of the stored one
/// for `after`. A failure is not the consumer's end: the next try stores it.
async fn flush_if(runner: &mut ProjectorRunner, after: Duration) {
    if runner.unsaved_for().is_some_and(|d| d >= after) {
        if let Err(err) = runner.flush().await {
            tracing::warn!(consumer = runner.projector.name(), error = %format!("{err:#}"), "cannot store the checkpoint yet");
        }
    }
}

/// Leases: a row per name, held by one process until it expires. Each
/// change of holder grows the lease's epoch.
pub struct Lease;

impl Lease {
    /// Takes or renews the lease; the epoch while held, `None` if another
    /// holder has it.
    pub async fn acquire(
        pool: &AnyPool,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<i64>> {
        let now = now_millis();
        let epoch: Option<i64> = sqlx::query_scalar(
            "INSERT INTO leases (name, holder, expires_at, epoch) VALUES ($1, $2, $3, 1) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at, \
             epoch = CASE WHEN leases.holder = excluded.holder THEN leases.epoch ELSE leases.epoch + 1 END \
             WHERE leases.holder = excluded.holder OR leases.expires_at < $4 \
             RETURNING epoch",
        )
        .bind(name)
        .bind(holder)
        .bind(now + ttl.as_millis() as i64)
        .bind(now)
        .fetch_optional(pool)
        .await?;
        Ok(epoch)
    }

    /// Gives the lease up (it expires at once; the row and its epoch stay).
    pub async fn release(pool: &AnyPool, name: &str, holder: &str) -> Result<()> {
        sqlx::query("UPDATE leases SET expires_at = 0 WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(pool)
            .await?;
        Ok(())
    }

    /// Moves the checkpoint named like the lease forward to `position`, only
    /// while `holder` still holds the lease in `epoch` (checked in the same
    /// statement). `false`: the lease is lost, or the checkpoint is already
    /// there — either way another holder is ahead.
    pub async fn advance_checkpoint(
        pool: &AnyPool,
        name: &str,
        holder: &str,
        epoch: i64,
        position: i64,
    ) -> Result<bool> {
        let now = now_millis();
        let done = sqlx::query(
            "UPDATE consumer_checkpoints SET position = $1, updated_at = $2 \
             WHERE name = $3 AND position < $1 AND EXISTS (\
               SELECT 1 FROM leases WHERE leases.name = $3 AND leases.holder = $4 \
               AND leases.epoch = $5 AND leases.expires_at > $2)",
        )
        .bind(position)
        .bind(now)
        .bind(name)
        .bind(holder)
        .bind(epoch)
        .execute(pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

/// Publishes the log to JetStream, in order, while this process holds the
/// relay lease.
pub async fn run_relay(
    bus: NatsBus,
    state: Arc<ConsumerState>,
    mut ctx: WorkerContext,
) -> Result<()> {
    let holder = format!("{}-{}", std::process::id(), Uuid::now_v7());
    let mut leader = false;
    let mut epoch = 0;
    let mut renewed = Instant::now();
    let mut checkpoint = 0;
    // The checkpoint as stored, and when it was last stored.
    let mut saved = 0;
    let mut saved_at: Option<Instant> = None;
    let mut taker = ctx.handoff.subscribe();
    while !*ctx.stop.borrow() {
        if !leader || renewed.elapsed() > LEASE_TTL / 3 {
            let held = Lease::acquire(&ctx.pool, RELAY, &holder, LEASE_TTL)
                .await
                .unwrap_or(None);
            if held.is_some_and(|e| e != epoch) {
                // A new term (also after losing the lease and winning it
                // back): go on from the checkpoint the last holder saved.
                leader = false;
            }
            epoch = held.unwrap_or(0);
            let held = held.is_some();
            if held && !leader {
                match Checkpoints::ensure(&ctx.pool, RELAY).await {
                    Ok(position) => {
                        checkpoint = position;
                        saved = position;
                        saved_at = None;
                    }
                    Err(_) => {
                        pause(&mut ctx.stop, Duration::from_secs(1)).await;
                        continue;
                    }
                }
                tracing::info!(checkpoint, "this process now relays the log to NATS");
                // Read the log before trusting the handoff.
                taker.poll();
                state.advanced(checkpoint, None);
            }
            leader = held;
            renewed = Instant::now();
            if !leader {
                pause(&mut ctx.stop, Duration::from_secs(2)).await;
                continue;
            }
        }
        if !bus.connected() {
            pause(&mut ctx.stop, Duration::from_millis(200)).await;
            continue;
        }
        // What was published is stored as the checkpoint at most every
        // `RELAY_SAVE_EVERY`, off the path from an append to its
        // publication; after a restart or a change of relay, what was
        // published but not saved is published again and JetStream drops
        // the repeats (by event id).
        if saved < checkpoint && saved_at.is_none_or(|at| at.elapsed() >= RELAY_SAVE_EVERY) {
            fail::fail_point!("relay.before_checkpoint");
            match Lease::advance_checkpoint(&ctx.pool, RELAY, &holder, epoch, checkpoint).await {
                Ok(true) => {
                    saved = checkpoint;
                    saved_at = Some(Instant::now());
                }
                Ok(false) => {
                    // Stalled past the lease: another relay is ahead.
                    // Step down; what was published twice is deduplicated.
                    tracing::warn!("relay lease lost; stepping down");
                    leader = false;
                    continue;
                }
                Err(err) => {
                    tracing::warn!(error = %format!("{err:#}"), "relay checkpoint not saved");
                    saved_at = Some(Instant::now());
                }
            }
        }
        // Appends from here on wake the wait below, even those made while
        // this read and its publication are under way.
        let appended = *ctx.appended.borrow_and_update();
        // What this process's writer handed over, when it follows on from
        // the checkpoint, is published without reading it back. Otherwise
        // the log: after a gap (another process's appends), an append not
        // handed over, or when polling for other processes' appends. Both
        // as stored: personal fields stay encrypted in NATS.
        let (events, source) = match taker.next(checkpoint, appended) {
            Next::Handed(events) => (events, "writer"),
            Next::Wait => (Vec::new(), "nothing"),
            Next::ReadLog => match ctx.log.read_after_as_stored(checkpoint, BATCH).await {
                Ok(events) => {
                    taker.log_read();
                    (events, "log")
                }
                Err(err) => {
                    tracing::warn!(error = %format!("{err:#}"), "relay cannot read the log");
                    pause(&mut ctx.stop, Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        if let Some(last) = events.last() {
            let (last_position, recorded_at) = (last.position, last.recorded_at);
            match bus.publish(&events).await {
                Ok(()) => {
                    checkpoint = last_position;
                    state.advanced(checkpoint, Some(recorded_at));
                    metrics::counter!("annals_relay_events_total", "source" => source)
                        .increment(events.len() as u64);
                }
                Err(err) => {
                    tracing::warn!(error = %format!("{err:#}"), "relay publish failed; retrying");
                    pause(&mut ctx.stop, Duration::from_millis(500)).await;
                    continue;
                }
            }
            // More may be waiting: handed over meanwhile, or past a full read.
            if source == "writer" || events.len() == BATCH as usize {
                continue;
            }
        }
        // At the head: wait for the next append. Ours are handed over (or
        // signalled, when they are not); other processes' are seen by
        // polling. An unsaved checkpoint is saved when due.
        let poll = Duration::from_millis(50);
        let wait = match saved_at {
            _ if saved == checkpoint => poll,
            None => Duration::ZERO,
            Some(at) => RELAY_SAVE_EVERY.saturating_sub(at.elapsed()).min(poll),
        };
        wait_for_append(&mut ctx, &mut taker, wait).await;
    }
    if leader {
        if saved < checkpoint {
            let _ = Lease::advance_checkpoint(&ctx.pool, RELAY, &holder, epoch, checkpoint).await;
        }
        let _ = Lease::release(&ctx.pool, RELAY, &holder).await;
    }
    Ok(())
}

/// Updates lag gauges once a second: events behind the head, and seconds
/// since the oldest event a consumer has not applied yet was recorded.
pub async fn run_monitor(
    states: Vec<Arc<ConsumerState>>,
    head: watch::Sender<i64>,
    mut ctx: WorkerContext,
) -> Result<()> {
    while !*ctx.stop.borrow() {
        if let Ok(position) = ctx.log.head().await {
            head.send_replace(position);
            for state in &states {
                let status = state.status();
                let lag = (position - status.checkpoint).max(0);
                let seconds = if lag == 0 {
                    0.0
                } else {
                    match ctx.log.read_after(status.checkpoint, 1).await {
                        Ok(next) => next.first().map_or(0.0, |e| {
                            (chrono::Utc::now() - e.recorded_at)
                                .num_milliseconds()
                                .max(0) as f64
                                / 1000.0
                        }),
                        Err(_) => 0.0,
                    }
                };
                let metric = if state.name == RELAY {
                    "annals_relay_backlog_events"
                } else {
                    "annals_consumer_lag_events"
                };
                metrics::gauge!(metric, "consumer" => state.name).set(lag as f64);
                metrics::gauge!("annals_consumer_lag_seconds", "consumer" => state.name)
                    .set(seconds);
            }
            metrics::gauge!("annals_log_head_position").set(position as f64);
        }
        pause(&mut ctx.stop, Duration::from_secs(1)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(positions: &[i64]) -> Batch {
        Arc::new(
            positions
                .iter()
                .map(|&p| crate::store::event_at(p))
                .collect(),
        )
    }

    fn positions(batch: &Batch) -> Vec<i64> {
        batch.iter().map(|e| e.position).collect()
    }

    #[test]
    fn batches_waiting_behind_a_busy_projector_are_applied_as_one() {
        let (sender, mut feed) = broadcast::channel(8);
        for b in [batch(&[3, 4]), batch(&[4, 5]), batch(&[6])] {
            sender.send(b).unwrap();
        }
        let first = feed.try_recv().unwrap();
        let merged = with_waiting(first, &mut feed, 0);
        assert_eq!(positions(&merged), [3, 4, 5, 6], "in order, once each");
        assert!(feed.try_recv().is_err(), "nothing left behind");
    }

    #[test]
    fn an_idle_feed_hands_the_batch_on_as_it_came() {
        let (_sender, mut feed) = broadcast::channel::<Batch>(8);
        let first = batch(&[1, 2]);
        let same = with_waiting(first.clone(), &mut feed, 0);
        assert!(Arc::ptr_eq(&first, &same));
    }

    #[test]
    fn what_was_applied_already_is_left_out() {
        let (sender, mut feed) = broadcast::channel(8);
        for b in [batch(&[3, 4]), batch(&[5, 6]), batch(&[7])] {
            sender.send(b).unwrap();
        }
        let first = feed.try_recv().unwrap();
        let merged = with_waiting(first, &mut feed, 5);
        assert_eq!(positions(&merged), [6, 7]);
    }

    #[test]
    fn merging_stops_at_a_full_batch() {
        let (sender, mut feed) = broadcast::channel(8);
        let full: Vec<i64> = (1..=BATCH).collect();
        sender.send(batch(&[BATCH + 1])).unwrap();
        let merged = with_waiting(batch(&full), &mut feed, 0);
        assert_eq!(merged.len(), BATCH as usize);
        assert_eq!(positions(&feed.try_recv().unwrap()), [BATCH + 1]);
    }
}
