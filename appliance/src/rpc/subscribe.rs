//! `eth_subscribe` over WebSocket: `newHeads` and `logs`, fed by finalized blocks.

use super::logs::Filter;
use super::{invalid, RpcContext};
use crate::chain::FinalizedBlock;
use jsonrpsee::core::server::{PendingSubscriptionSink, SubscriptionMessage};
use jsonrpsee::core::SubscriptionError;
use jsonrpsee::RpcModule;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

enum Kind {
    NewHeads,
    Logs(Filter),
}

pub fn register(m: &mut RpcModule<RpcContext>) {
    m.register_subscription(
        "eth_subscribe",
        "eth_subscription",
        "eth_unsubscribe",
        |p, pending: PendingSubscriptionSink, c, _| async move {
            let v: Vec<Value> = match p.parse() {
                Ok(v) => v,
                Err(e) => {
                    pending
                        .reject(invalid(format!(
                            "expected [\"newHeads\"] or [\"logs\", filter]: {e}"
                        )))
                        .await;
                    return Ok(());
                }
            };
            let kind = match v.first().and_then(Value::as_str) {
                Some("newHeads") => Kind::NewHeads,
                Some("logs") => {
                    match Filter::parse_criteria(
                        v.get(1).unwrap_or(&Value::Object(Default::default())),
                    ) {
                        Ok(f) => Kind::Logs(f),
                        Err(e) => {
                            pending.reject(e).await;
                            return Ok(());
                        }
                    }
                }
                other => {
                    pending
                        .reject(invalid(format!(
                            "unsupported subscription {other:?}: this node offers newHeads and logs"
                        )))
                        .await;
                    return Ok(());
                }
            };
            let mut rx = c.events.subscribe();
            let sink = pending.accept().await.map_err(|e| e.to_string())?;
            loop {
                let block: Arc<FinalizedBlock> = tokio::select! {
                    _ = sink.closed() => break,
                    r = rx.recv() => match r {
                        Ok(b) => b,
                        // A slow reader skips blocks rather than holding the node's memory.
                        Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => break,
                    },
                };
                let items = match &kind {
                    Kind::NewHeads => vec![super::json::block(&block.header, vec![], 0)],
                    Kind::Logs(f) => f.block_logs(&block.header, &block.receipts),
                };
                for item in items {
                    let msg =
                        SubscriptionMessage::new(sink.method_name(), sink.subscription_id(), &item)
                            .map_err(|e| e.to_string())?;
                    if sink.send(msg).await.is_err() {
                        return Ok(());
                    }
                }
            }
            Ok::<(), SubscriptionError>(())
        },
    )
    .expect("unique name");
}
