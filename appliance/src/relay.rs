//! Outgoing transaction relay: transactions accepted through RPC are sent to the committee in
//! batches, not one QUIC stream per transaction. At thousands of submissions a second, one
//! message per transaction cost every peer a stream, a frame and a trip through its consensus
//! loop each; a batch every few milliseconds costs one.

use crate::net::MeshHandle;
use state::Bytes;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a transaction may wait for others to share its batch.
pub const RELAY_INTERVAL: Duration = Duration::from_millis(10);
/// Bytes of transactions in one batch (well under the mesh's smallest message limit).
const MAX_BATCH_BYTES: usize = 256 << 10;
/// Transactions waiting to be relayed; past this, new ones are only pooled locally (they still
/// reach a block when this node leads) and counted.
const QUEUE: usize = 32_768;

/// Where RPC hands accepted transactions for relaying. Cheap to clone.
#[derive(Clone)]
pub struct TxRelay {
    queue: mpsc::Sender<Bytes>,
    dropped: prometheus::IntCounter,
}

impl TxRelay {
    /// Starts the batching task on the current tokio runtime.
    pub fn spawn(mesh: MeshHandle, dropped: prometheus::IntCounter) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(batch_and_send(rx, move |batch| {
            mesh.broadcast(
                consensus::Message::Transactions(consensus::TxBatch {
                    transactions: batch,
                })
                .encode(),
            )
        }));
        Self { queue, dropped }
    }

    /// Queues a transaction for the next batch; never waits.
    pub fn push(&self, raw: Bytes) {
        if self.queue.try_send(raw).is_err() {
            self.dropped.inc();
        }
    }
}

/// Collects what arrives within [`RELAY_INTERVAL`] of a batch's first transaction (or up to
/// [`MAX_BATCH_BYTES`]) and hands each batch to `send`, in arrival order.
async fn batch_and_send(mut rx: mpsc::Receiver<Bytes>, send: impl Fn(Vec<Bytes>)) {
    while let Some(first) = rx.recv().await {
        let mut size = first.len();
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + RELAY_INTERVAL;
        while size < MAX_BATCH_BYTES {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(raw)) => {
                    size += raw.len();
                    batch.push(raw);
                }
                Ok(None) | Err(_) => break,
            }
        }
        send(batch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[tokio::test(start_paused = true)]
    async fn transactions_go_out_in_order_in_few_batches() {
        let (tx, rx) = mpsc::channel(QUEUE);
        let sent: Arc<Mutex<Vec<Vec<Bytes>>>> = Arc::default();
        let out = sent.clone();
        let task = tokio::spawn(batch_and_send(rx, move |b| out.lock().unwrap().push(b)));
        for i in 0..1000u32 {
            tx.send(Bytes::from(i.to_be_bytes().to_vec()))
                .await
                .unwrap();
        }
        tokio::time::sleep(RELAY_INTERVAL * 2).await;
        // A later transaction, after the first batch went out, starts a new one.
        tx.send(Bytes::from_static(b"late")).await.unwrap();
        drop(tx);
        task.await.unwrap();
        let sent = sent.lock().unwrap();
        assert_eq!(
            sent.len(),
            2,
            "one batch for the burst, one for the late transaction"
        );
        let flat: Vec<Bytes> = sent.iter().flatten().cloned().collect();
        assert_eq!(flat.len(), 1001);
        for (i, raw) in flat.iter().take(1000).enumerate() {
            assert_eq!(raw.as_ref(), (i as u32).to_be_bytes(), "order kept");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_is_cut_at_its_byte_limit() {
        let (tx, rx) = mpsc::channel(QUEUE);
        let sent: Arc<Mutex<Vec<usize>>> = Arc::default();
        let out = sent.clone();
        let task = tokio::spawn(batch_and_send(rx, move |b| {
            out.lock().unwrap().push(b.iter().map(|r| r.len()).sum())
        }));
        for _ in 0..10 {
            tx.send(Bytes::from(vec![0u8; 100 << 10])).await.unwrap();
        }
        drop(tx);
        task.await.unwrap();
        let sent = sent.lock().unwrap();
        assert!(sent.len() >= 3, "{sent:?}");
        assert!(sent.iter().all(|&b| b < MAX_BATCH_BYTES + (100 << 10)));
        assert_eq!(sent.iter().sum::<usize>(), 10 * (100 << 10));
    }
}
