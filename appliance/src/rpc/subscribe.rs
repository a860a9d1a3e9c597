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

/// Addresses and topic alternatives that live `logs` subscriptions may hold, all connections
/// together (each costs 52 bytes with its hash, and a bloom test per block): 100 connections
/// of 64 subscriptions naming 1,000 addresses each would otherwise hold 330 MiB.
pub const MAX_SUBSCRIBED_FILTER_ENTRIES: usize = 65_536;

enum Kind {
    NewHeads,
    /// The filter, and its share of [`MAX_SUBSCRIBED_FILTER_ENTRIES`] until it ends.
    Logs {
        filter: Filter,
        _permit: tokio::sync::OwnedSemaphorePermit,
    },
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
                        Ok(f) => {
                            let entries = 1 + f.addresses.len()
                                + f.topics.iter().flatten().map(Vec::len).sum::<usize>();
                            match c.subscribed_filters.clone().try_acquire_many_owned(
                                entries.try_into().unwrap_or(u32::MAX),
                            ) {
                                Ok(permit) => Kind::Logs {
                                    filter: f,
                                    _permit: permit,
                                },
                                Err(_) => {
                                    c.metrics.rpc_refused.with_label_values(&["busy"]).inc();
                                    pending
                                        .reject(jsonrpsee::types::ErrorObject::owned(
                                            super::LIMIT_EXCEEDED,
                                            format!(
                                                "limit exceeded: live logs subscriptions already name {MAX_SUBSCRIBED_FILTER_ENTRIES} addresses and topics on this node; narrow the filter or retry later"
                                            ),
                                            None::<()>,
                                        ))
                                        .await;
                                    return Ok(());
                                }
                            }
                        }
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
                    Kind::Logs { filter, .. } => filter.block_logs(&block.header, &block.receipts),
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
