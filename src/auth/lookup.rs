//! Bearer tokens resolved in groups: the lookups waiting at one moment go to
//! the database as one statement. Nothing is cached — every request is
//! answered by a read that began after it arrived, so a token revoked by
//! any process (logout, password change, deactivation) stops working at once.

use std::sync::Arc;

use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use super::{secrets, AuthStore, Principal};
use crate::app::AppError;

/// Tokens per statement at most.
const MAX_GROUP: usize = 32;

type Answer = Result<Option<Arc<Principal>>, AppError>;

struct Ask {
    hash: String,
    reply: oneshot::Sender<Answer>,
}

/// This process's token lookups (one task, started inside a tokio runtime).
#[derive(Debug, Clone)]
pub struct TokenLookup {
    queue: mpsc::Sender<Ask>,
}

impl TokenLookup {
    pub fn new(pool: AnyPool) -> Self {
        let (queue, asks) = mpsc::channel(4 * MAX_GROUP);
        tokio::spawn(run(pool, asks));
        Self { queue }
    }

    /// The active user a live token belongs to.
    pub async fn principal(&self, token: &str) -> Answer {
        let (reply, answer) = oneshot::channel();
        let ask = Ask {
            hash: secrets::token_hash(token),
            reply,
        };
        if self.queue.send(ask).await.is_err() {
            return Err(AppError::unavailable("token lookups have stopped"));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(AppError::internal("a token lookup failed mid-way")))
    }
}

async fn run(pool: AnyPool, mut asks: mpsc::Receiver<Ask>) {
    // One statement at a time: while it is under way the asks queue, and
    // the next statement takes all of them. Idle, one ask goes alone and
    // at once.
    while let Some(first) = asks.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match asks.try_recv() {
                Ok(ask) => group.push(ask),
                Err(_) => break,
            }
        }
        metrics::histogram!("annals_token_lookup_group").record(group.len() as f64);
        let found = AuthStore::principals(&pool, group.iter().map(|a| a.hash.as_str()))
            .await
            .map_err(AppError::from);
        for ask in group {
            let answer = match &found {
                Ok(found) => Ok(found.get(&ask.hash).cloned()),
                Err(err) => Err(err.clone()),
            };
            let _ = ask.reply.send(answer);
        }
    }
}
