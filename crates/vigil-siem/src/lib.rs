//! Vigil's alerts, out to a SIEM and to webhooks.
//!
//! - Formats (pure): [RFC 5424 syslog](syslog) messages whose MSG is [CEF](cef) or a
//!   [JSON](json) object; [Standard Webhooks](webhook) signatures.
//! - Transports: syslog over UDP (RFC 5426), TCP with octet counting (RFC 6587 §3.4.1) and TLS
//!   (RFC 5425, rustls on aws-lc-rs, server checked against a configured CA, optional client
//!   certificate); webhooks as signed HTTPS POSTs.
//! - [`Dispatcher`]: a thread of its own, a bounded queue per sink (oldest dropped and counted
//!   when full), in-order delivery per sink with retries, reconnection, counters, a graceful
//!   shutdown, and [`Progress`] reports from which a caller resumes export after a restart.
//! - [Configuration](config) the hub embeds, validated.
//!
//! ```no_run
//! # async fn example(config: vigil_siem::SiemConfig, alert: vigil_model::Alert) -> Result<(), Box<dyn std::error::Error>> {
//! let siem = vigil_siem::Dispatcher::start(config.sinks()?)?;
//! siem.send(42, &alert); // from the detection thread: never blocks
//! let stats = siem.shutdown(std::time::Duration::from_secs(5)).await;
//! # Ok(()) }
//! ```
//!
//! Clinical evidence ([`vigil_model::Evidence::Clinical`]) is PHI and never leaves Vigil
//! through a sink: [`Record::new`], the only way in, leaves it behind.

#![forbid(unsafe_code)]

pub mod cef;
pub mod config;
mod dispatch;
pub mod json;
pub mod record;
mod sink;
pub mod syslog;
mod transport;
pub mod webhook;

pub use config::{ConfigError, Problem, SiemConfig, SinkConfig, SinkKind};
pub use dispatch::{DROP_FLUSH, Dispatcher, DispatcherHandle, Progress, SinkStats, StartError};
pub use record::{Fact, Record};
pub use sink::{MAX_PEM_BYTES, RetryPolicy, Sink, SinkError};
pub use syslog::{Facility, Format, Origin};
