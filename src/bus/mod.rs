//! Fan-out of the global log to consumers: in-process tailing (embedded
//! mode) or a relay to NATS JetStream with durable consumers (server mode).

pub mod consumer;
pub mod fanout;
pub mod feed;

pub use consumer::{replay, Checkpoints, ConsumerState, ConsumerStatus, ProjectorRunner};
pub mod nats;
pub mod shadow;
pub mod workers;

pub use fanout::{run_fanout, Batch, Fanout};
pub use feed::Feed;
pub use nats::NatsBus;
pub use workers::{run_monitor, run_projector, run_relay, WorkerContext, RELAY};
