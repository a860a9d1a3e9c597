//! Polling filters over HTTP: `eth_newFilter`, `eth_newBlockFilter`, `eth_getFilterChanges`,
//! `eth_getFilterLogs`, `eth_uninstallFilter` — what clients without a WebSocket (web3.py's
//! `w3.eth.filter`, ethers' polling providers) use in place of `eth_subscribe`.
//!
//! A filter remembers the first block it has not reported; each poll reads the blocks from
//! there to the tip, at most `rpc.max_logs_range` of them (a client that polls rarely catches
//! up over several polls), so a poll costs no more than an `eth_getLogs` call. Filters live
//! in memory only, at most [`MAX_FILTERS`] on a node, and one not polled for
//! [`FILTER_TIMEOUT`] is dropped (geth's rule), so abandoned filters cannot accumulate.
//! Pending-transaction filters are not offered: blocks are final when stored and the pool is
//! not a feed.

use super::logs::Filter;
use super::params::{arg, params_vec, tip};
use super::{internal, invalid, server_error, RpcContext, RpcResult};
use crate::lock::LockExt;
use jsonrpsee::types::ErrorObjectOwned;
use jsonrpsee::RpcModule;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Filters installed on one node, all clients together.
pub const MAX_FILTERS: usize = 1_024;
/// A filter not polled for this long is dropped.
pub const FILTER_TIMEOUT: Duration = Duration::from_secs(300);

/// What a filter reports.
enum Kind {
    /// Hashes of new blocks.
    Blocks,
    /// Logs of new blocks that match; `request` is the filter object as given, which
    /// `eth_getFilterLogs` runs again as an `eth_getLogs` query.
    Logs { filter: Filter, request: Value },
}

struct Installed {
    kind: Kind,
    /// The first block not yet reported.
    next: u64,
    polled: Instant,
}

/// The node's installed filters, by id.
#[derive(Default)]
pub struct Filters {
    installed: Mutex<HashMap<u128, Installed>>,
}

fn parse_id(v: &Value) -> RpcResult<u128> {
    v.as_str()
        .and_then(|s| s.strip_prefix("0x"))
        .and_then(|h| u128::from_str_radix(h, 16).ok())
        .ok_or_else(|| {
            invalid(format!(
                "filter id {v}: expected the 0x-prefixed hex id that eth_new*Filter returned"
            ))
        })
}

fn not_found() -> ErrorObjectOwned {
    // geth's wording, which clients match on to re-install a filter.
    server_error("filter not found")
}

impl Filters {
    /// Installs a filter that reports from the block after the tip; its id.
    fn install(&self, ctx: &RpcContext, kind: Kind, now: Instant) -> RpcResult<String> {
        let next = tip(ctx)?.0 + 1;
        let mut installed = self.installed.locked();
        installed.retain(|_, f| now.duration_since(f.polled) < FILTER_TIMEOUT);
        if installed.len() >= MAX_FILTERS {
            return Err(server_error(format!(
                "too many filters: {MAX_FILTERS} are installed on this node; uninstall the ones you no longer poll (eth_uninstallFilter) or let them expire ({} s without a poll)",
                FILTER_TIMEOUT.as_secs()
            )));
        }
        let id = loop {
            let id: u128 = rand::random();
            if id != 0 && !installed.contains_key(&id) {
                break id;
            }
        };
        installed.insert(
            id,
            Installed {
                kind,
                next,
                polled: now,
            },
        );
        Ok(format!("{id:#x}"))
    }

    /// What happened since the last poll: block hashes or matching logs.
    fn changes(&self, ctx: &RpcContext, id: u128, now: Instant) -> RpcResult<Value> {
        let tip = tip(ctx)?.0;
        // Blocks are read without the lock (it serves every client's filters): what to read is
        // copied out, and the position is moved on afterwards if the filter is still there.
        let (logs, next) = {
            let mut installed = self.installed.locked();
            installed.retain(|_, f| now.duration_since(f.polled) < FILTER_TIMEOUT);
            let f = installed.get_mut(&id).ok_or_else(not_found)?;
            f.polled = now;
            let logs = match &f.kind {
                Kind::Blocks => None,
                Kind::Logs { filter, .. } => Some(filter.clone()),
            };
            (logs, f.next)
        };
        let last = tip.min(next.saturating_add(ctx.limits.max_logs_range.max(1) - 1));
        if next > last {
            return Ok(json!([]));
        }
        let result = match logs {
            None => (next..=last)
                .map(|n| {
                    ctx.store
                        .header(n)
                        .map_err(internal)
                        .map(|h| h.map(|h| json!(h.hash())))
                })
                .collect::<RpcResult<Vec<_>>>()
                .map(|hashes| Value::Array(hashes.into_iter().flatten().collect()))?,
            Some(mut range) => {
                range.from = range.from.max(next);
                range.to = range.to.min(last);
                if range.from > range.to {
                    json!([])
                } else {
                    range.collect(ctx)?
                }
            }
        };
        if let Some(f) = self.installed.locked().get_mut(&id) {
            f.next = f.next.max(last + 1);
        }
        Ok(result)
    }

    /// Every log a filter matches over its whole range, as `eth_getLogs` would return.
    fn logs(&self, ctx: &RpcContext, id: u128, now: Instant) -> RpcResult<Value> {
        let request = {
            let mut installed = self.installed.locked();
            let f = installed.get_mut(&id).ok_or_else(not_found)?;
            f.polled = now;
            match &f.kind {
                Kind::Logs { request, .. } => request.clone(),
                Kind::Blocks => return Err(not_found()),
            }
        };
        Filter::parse(ctx, &request)?.collect(ctx)
    }

    fn uninstall(&self, id: u128) -> bool {
        self.installed.locked().remove(&id).is_some()
    }
}

/// The block bounds a log filter applies to its changes: numbers are kept, tags mean no bound
/// (`latest` moves with the chain), `earliest` is block 0.
fn log_filter(ctx: &RpcContext, v: &Value) -> RpcResult<Filter> {
    let mut filter = Filter::parse_criteria(v)?;
    let o = v.as_object().expect("checked by parse_criteria");
    if o.contains_key("blockHash") {
        return Err(invalid(
            "filter: blockHash is for eth_getLogs; a polling filter reports new blocks",
        ));
    }
    let bound = |key: &str, open: u64| -> RpcResult<u64> {
        match o.get(key).and_then(Value::as_str) {
            None => Ok(open),
            Some(t) if super::params::is_tip_tag(t) => Ok(open),
            Some(t) => super::params::block_number(ctx, t),
        }
    };
    filter.from = bound("fromBlock", 0)?;
    filter.to = bound("toBlock", u64::MAX)?;
    Ok(filter)
}

pub fn register(m: &mut RpcModule<RpcContext>) {
    m.register_method("eth_newFilter", |p, c, _| {
        let shape = "[filter]";
        let v = params_vec(&p, shape)?;
        let request = arg(&v, 0, shape)?.clone();
        let filter = log_filter(c, &request)?;
        // Hashes its addresses and topics for the bloom test now, once: every poll works on a
        // copy, which keeps them.
        filter.bloom_may_match(&Default::default());
        c.filters
            .install(c, Kind::Logs { filter, request }, Instant::now())
    })
    .expect("unique name");
    m.register_method("eth_newBlockFilter", |_, c, _| {
        c.filters.install(c, Kind::Blocks, Instant::now())
    })
    .expect("unique name");
    // Both read blocks like `eth_getLogs`, so both take a costly-request permit.
    type Read = fn(&Filters, &RpcContext, u128, Instant) -> RpcResult<Value>;
    let reads: [(&'static str, Read); 2] = [
        ("eth_getFilterChanges", Filters::changes),
        ("eth_getFilterLogs", Filters::logs),
    ];
    for (name, read) in reads {
        m.register_blocking_method(name, move |p, c, _| {
            let shape = "[filterId]";
            let v = params_vec(&p, shape)?;
            let id = parse_id(arg(&v, 0, shape)?)?;
            let _permit = c.heavy_permit()?;
            read(&c.filters, &c, id, Instant::now())
        })
        .expect("unique name");
    }
    m.register_method("eth_uninstallFilter", |p, c, _| {
        let shape = "[filterId]";
        let v = params_vec(&p, shape)?;
        Ok::<_, ErrorObjectOwned>(c.filters.uninstall(parse_id(arg(&v, 0, shape)?)?))
    })
    .expect("unique name");
}
