//! The dispatcher: alerts in from the detection thread, out to every sink, never blocking.
//!
//! One thread (`vigil-siem`) runs a small Tokio runtime of its own with one task per sink, so
//! the dispatcher needs nothing from its caller's runtime and a sink that hangs holds up only
//! its own task. Each sink has a bounded queue; [`DispatcherHandle::send`] appends to every
//! queue under a short lock and returns, and when a queue is full its oldest alert is dropped
//! and counted. A sink's task takes alerts in order and retries the one at the head (with
//! exponential backoff and jitter) until it is delivered, refused for good, or out of attempts
//! or age: delivery is in order, at least once, per sink.
//!
//! What is waiting lives in memory. A caller that keeps alerts (the hub's store) passes a
//! [`Progress`] to learn how far each sink has got, and after a restart hands each sink what it
//! was still owed with [`DispatcherHandle::send_to`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, oneshot};
use vigil_model::Alert;

use crate::record::Record;
use crate::sink::{Outgoing, RetryPolicy, Sink};

/// How long the last handle's drop lets the sinks flush, when nobody called
/// [`DispatcherHandle::shutdown`].
pub const DROP_FLUSH: Duration = Duration::from_secs(5);

/// Told when a sink has finished with an alert: delivered it, or given it up for good (refused,
/// out of attempts, too old). Calls for one sink come in the order of its queue, on the
/// dispatcher's thread, so they should be quick. Alerts dropped from a full queue and those
/// abandoned at shutdown are never finished.
pub trait Progress: Send + Sync + 'static {
    /// `sink` has finished with the alert stored under `id`.
    fn finished(&self, sink: &str, id: u64);
}

/// Starts the delivery of alerts to sinks; see [`Dispatcher::start`].
#[derive(Debug)]
pub struct Dispatcher;

/// The dispatcher could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the alert dispatcher: {0}")]
pub struct StartError(#[from] std::io::Error);

/// Where alerts are handed to the dispatcher. Cheap to clone; every method returns at once.
#[derive(Debug, Clone)]
pub struct DispatcherHandle {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    stop: Mutex<Option<oneshot::Sender<Duration>>>,
    done: Mutex<Option<oneshot::Receiver<()>>>,
}

struct Shared {
    lanes: Vec<Arc<Lane>>,
    closing: AtomicBool,
    progress: Option<Arc<dyn Progress>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("lanes", &self.lanes)
            .field("closing", &self.closing)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// One sink's queue and counters.
#[derive(Debug)]
struct Lane {
    name: String,
    capacity: usize,
    queue: Mutex<VecDeque<Arc<Outgoing>>>,
    wake: Notify,
    in_flight: AtomicBool,
    sent: AtomicU64,
    retried: AtomicU64,
    dropped_overflow: AtomicU64,
    dropped_failed: AtomicU64,
    dropped_shutdown: AtomicU64,
}

/// What one sink has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// The sink's name.
    pub name: String,
    /// Alerts delivered (handed to the kernel for syslog, answered 2xx for webhooks).
    pub sent: u64,
    /// Attempts after the first, over all alerts.
    pub retried: u64,
    /// Alerts dropped because the queue was full (the oldest waiting one each time).
    pub dropped_overflow: u64,
    /// Alerts given up: refused for good, out of attempts, or older than the maximum age.
    pub dropped_failed: u64,
    /// Alerts still waiting when the shutdown deadline passed, or sent after shutdown began.
    pub dropped_shutdown: u64,
    /// Alerts waiting now (not counting one being attempted).
    pub queued: usize,
}

impl SinkStats {
    /// Every alert dropped, whatever the reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_overflow + self.dropped_failed + self.dropped_shutdown
    }
}

impl Dispatcher {
    /// Starts delivering to `sinks` on a thread of its own. Callable from any thread, inside a
    /// Tokio runtime or not.
    pub fn start(sinks: Vec<Sink>) -> Result<DispatcherHandle, StartError> {
        Self::launch(sinks, None)
    }

    /// As [`Dispatcher::start`], telling `progress` each time a sink has finished with an
    /// alert.
    pub fn start_with_progress(
        sinks: Vec<Sink>,
        progress: Arc<dyn Progress>,
    ) -> Result<DispatcherHandle, StartError> {
        Self::launch(sinks, Some(progress))
    }

    fn launch(
        sinks: Vec<Sink>,
        progress: Option<Arc<dyn Progress>>,
    ) -> Result<DispatcherHandle, StartError> {
        let lanes: Vec<Arc<Lane>> = sinks
            .iter()
            .map(|sink| {
                Arc::new(Lane {
                    name: sink.name().to_owned(),
                    capacity: sink.queue().max(1),
                    queue: Mutex::new(VecDeque::new()),
                    wake: Notify::new(),
                    in_flight: AtomicBool::new(false),
                    sent: AtomicU64::new(0),
                    retried: AtomicU64::new(0),
                    dropped_overflow: AtomicU64::new(0),
                    dropped_failed: AtomicU64::new(0),
                    dropped_shutdown: AtomicU64::new(0),
                })
            })
            .collect();
        let shared = Arc::new(Shared {
            lanes,
            closing: AtomicBool::new(false),
            progress,
        });
        let (stop, stopped) = oneshot::channel::<Duration>();
        let (finished, done) = oneshot::channel::<()>();
        if !sinks.is_empty() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let thread_shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("vigil-siem".into())
                .spawn(move || {
                    runtime.block_on(run(sinks, &thread_shared, stopped));
                    // Dropping the runtime cancels whatever the deadline cut short.
                    drop(runtime);
                    let _ = finished.send(());
                })?;
        }
        Ok(DispatcherHandle {
            inner: Arc::new(Inner {
                shared,
                stop: Mutex::new(Some(stop)),
                done: Mutex::new(Some(done)),
            }),
        })
    }
}

impl DispatcherHandle {
    /// Hands `alert`, stored under `id`, to every sink. Never blocks and never fails: when a
    /// sink's queue is full its oldest alert is dropped and counted. Clinical evidence is left
    /// behind here, before anything is queued.
    pub fn send(&self, id: u64, alert: &Alert) {
        self.enqueue(&self.inner.shared.lanes, id, alert);
    }

    /// Hands `alert`, stored under `id`, to the sink named `sink` alone: what a restart found
    /// it was still owed. `false` if there is no such sink. Otherwise as [`Self::send`].
    pub fn send_to(&self, sink: &str, id: u64, alert: &Alert) -> bool {
        let Some(lane) = self.inner.shared.lanes.iter().find(|l| l.name == sink) else {
            return false;
        };
        self.enqueue(std::slice::from_ref(lane), id, alert);
        true
    }

    fn enqueue(&self, lanes: &[Arc<Lane>], id: u64, alert: &Alert) {
        if lanes.is_empty() {
            return;
        }
        if self.inner.shared.closing.load(Ordering::Acquire) {
            for lane in lanes {
                lane.dropped_shutdown.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        let outgoing = Arc::new(Outgoing {
            record: Record::new(id, alert),
            since: Instant::now(),
        });
        for lane in lanes {
            let overflowed = {
                let mut queue = lock(&lane.queue);
                queue.push_back(Arc::clone(&outgoing));
                queue.len() > lane.capacity && queue.pop_front().is_some()
            };
            if overflowed {
                let dropped = lane.dropped_overflow.fetch_add(1, Ordering::Relaxed) + 1;
                if dropped.is_power_of_two() {
                    tracing::warn!(sink = %lane.name, dropped, "alert sink is behind; oldest alerts dropped");
                }
            }
            lane.wake.notify_one();
        }
    }

    /// Each sink's counters, in the order the sinks were given.
    pub fn stats(&self) -> Vec<SinkStats> {
        self.inner
            .shared
            .lanes
            .iter()
            .map(|lane| SinkStats {
                name: lane.name.clone(),
                sent: lane.sent.load(Ordering::Relaxed),
                retried: lane.retried.load(Ordering::Relaxed),
                dropped_overflow: lane.dropped_overflow.load(Ordering::Relaxed),
                dropped_failed: lane.dropped_failed.load(Ordering::Relaxed),
                dropped_shutdown: lane.dropped_shutdown.load(Ordering::Relaxed),
                queued: lock(&lane.queue).len(),
            })
            .collect()
    }

    /// Stops taking alerts, lets every sink deliver what it holds until `deadline` has passed,
    /// then abandons the rest (counted in [`SinkStats::dropped_shutdown`]) and returns the
    /// final counters. Any other clone of this handle stops too. The wait does not need a
    /// Tokio runtime, and is bounded by `deadline` (plus the thread's exit).
    pub async fn shutdown(self, deadline: Duration) -> Vec<SinkStats> {
        if let Some(stop) = lock(&self.inner.stop).take() {
            let _ = stop.send(deadline);
        }
        let done = lock(&self.inner.done).take();
        if let Some(done) = done {
            // An error means the thread is gone already: nothing left to wait for.
            let _ = done.await;
        }
        self.stats()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; if something did, the queue is still usable.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn run(sinks: Vec<Sink>, shared: &Arc<Shared>, stopped: oneshot::Receiver<Duration>) {
    let workers: Vec<_> = sinks
        .into_iter()
        .zip(&shared.lanes)
        .map(|(sink, lane)| tokio::spawn(work(sink, Arc::clone(lane), Arc::clone(shared))))
        .collect();
    // Every handle dropped without a shutdown is a shutdown too.
    let deadline = stopped.await.unwrap_or(DROP_FLUSH);
    shared.closing.store(true, Ordering::Release);
    for lane in &shared.lanes {
        lane.wake.notify_one();
    }
    let flushed = tokio::time::timeout(deadline, async {
        for worker in workers {
            let _ = worker.await;
        }
    })
    .await;
    if flushed.is_err() {
        // Counted here, while no task runs (this runtime has one thread, and it is here).
        for lane in &shared.lanes {
            let mut queue = lock(&lane.queue);
            let left = queue.len() as u64 + u64::from(lane.in_flight.load(Ordering::Acquire));
            queue.clear();
            if left > 0 {
                lane.dropped_shutdown.fetch_add(left, Ordering::Relaxed);
                tracing::warn!(sink = %lane.name, abandoned = left, "alert sink did not flush before the deadline");
            }
        }
    }
}

async fn work(mut sink: Sink, lane: Arc<Lane>, shared: Arc<Shared>) {
    let mut failing = false;
    loop {
        let next = {
            let mut queue = lock(&lane.queue);
            let next = queue.pop_front();
            lane.in_flight.store(next.is_some(), Ordering::Release);
            next
        };
        let Some(outgoing) = next else {
            if shared.closing.load(Ordering::Acquire) {
                sink.close().await;
                return;
            }
            lane.wake.notified().await;
            continue;
        };
        deliver(&mut sink, &lane, &outgoing, &mut failing).await;
        if let Some(progress) = &shared.progress {
            progress.finished(&lane.name, outgoing.record.id);
        }
        lane.in_flight.store(false, Ordering::Release);
    }
}

/// Attempts `outgoing` until it is delivered or given up.
async fn deliver(sink: &mut Sink, lane: &Lane, outgoing: &Outgoing, failing: &mut bool) {
    let policy = sink.retry();
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let error = match sink.deliver(outgoing).await {
            Ok(()) => {
                lane.sent.fetch_add(1, Ordering::Relaxed);
                if std::mem::take(failing) {
                    tracing::info!(sink = %lane.name, "alert sink reachable again");
                }
                return;
            }
            Err(error) => error,
        };
        if !*failing {
            *failing = true;
            tracing::warn!(sink = %lane.name, %error, "alert sink unreachable; retrying");
        } else {
            tracing::debug!(sink = %lane.name, %error, attempt, "alert delivery failed");
        }
        let give_up = if error.is_permanent() {
            Some("refused")
        } else if attempt >= policy.max_attempts {
            Some("out of attempts")
        } else if outgoing.since.elapsed() >= policy.max_age {
            Some("too old")
        } else {
            None
        };
        if let Some(reason) = give_up {
            let dropped = lane.dropped_failed.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(sink = %lane.name, %error, reason, dropped, alert = outgoing.record.id, "alert given up");
            return;
        }
        lane.retried.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(backoff(&policy, attempt)).await;
    }
}

/// The wait after failed attempt `attempt` (1 for the first): `initial × 2^(attempt-1)`, at
/// most `max`, of which a random half is taken off ("equal jitter") so that sinks failing
/// together do not retry in step.
fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let doubling = 2_u32.saturating_pow(attempt.saturating_sub(1));
    let full = policy
        .initial_backoff
        .saturating_mul(doubling)
        .min(policy.max_backoff);
    let half = full / 2;
    half + half.mul_f64(unit_random())
}

/// A uniform number in [0, 1); 0.5 if the system has no randomness (the backoff still holds).
fn unit_random() -> f64 {
    let mut bytes = [0_u8; 8];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        return 0.5;
    }
    // The top 53 bits, the precision of an f64's mantissa.
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1_u64 << 53) as f64
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let policy = RetryPolicy {
            max_attempts: 100,
            max_age: Duration::from_secs(3600),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
        };
        for (attempt, full_ms) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (5, 1600),
            (6, 2000),
            (99, 2000),
        ] {
            let full = Duration::from_millis(full_ms);
            let waits: Vec<Duration> = (0..50).map(|_| backoff(&policy, attempt)).collect();
            assert!(
                waits.iter().all(|w| *w >= full / 2 && *w <= full),
                "{attempt}: {waits:?}"
            );
            // Jitter: fifty draws are not all the same.
            assert!(waits.iter().any(|w| *w != waits[0]), "{attempt}");
        }
    }

    #[test]
    fn unit_random_stays_in_range() {
        for _ in 0..1000 {
            let r = unit_random();
            assert!((0.0..1.0).contains(&r));
        }
    }

    #[tokio::test]
    async fn no_sinks_is_a_dispatcher_that_drops_nothing_and_stops_at_once() {
        let handle = Dispatcher::start(Vec::new()).unwrap();
        handle.send(
            1,
            &Alert {
                time: vigil_model::Timestamp::EPOCH,
                severity: vigil_model::Severity::Low,
                kind: vigil_model::AlertKind::Flood,
                device: None,
                patient: None,
                evidence: Vec::new(),
                attack_technique: None,
            },
        );
        assert!(handle.stats().is_empty());
        assert!(handle.shutdown(Duration::from_secs(1)).await.is_empty());
    }
}
