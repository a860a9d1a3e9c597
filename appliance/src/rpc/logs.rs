//! Log filters (`eth_getLogs`, `logs` subscriptions): parsing, bloom pre-check, matching.

use super::json::{self, Mined};
use super::{internal, invalid, server_error, RpcContext};
use alloy_primitives::{Address, Bloom, BloomInput, Log, B256};
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::Value;
use state::exec::StoredReceipt;
use state::Header;

/// A parsed filter. Topic position `i` matches any of `topics[i]` (`None`: anything).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub from: u64,
    pub to: u64,
    pub addresses: Vec<Address>,
    pub topics: Vec<Option<Vec<B256>>>,
    /// keccak256 of each address and topic, computed on the first bloom test: a filter is
    /// tested against every block (a subscription for as long as it lives), and hashing 1,000
    /// addresses per block per subscription is what made a subscription storm cost two cores.
    bloom_keys: std::sync::OnceLock<BloomKeys>,
}

#[derive(Debug, Clone)]
struct BloomKeys {
    addresses: Vec<B256>,
    topics: Vec<Option<Vec<B256>>>,
}

/// Most addresses one filter may name, and most alternatives at one topic position: every
/// block's bloom is tested against each, and every log against each (geth serves far fewer in
/// practice; a filter past these is a request for work, not for logs).
pub const MAX_FILTER_ADDRESSES: usize = 1_000;
pub const MAX_TOPIC_ALTERNATIVES: usize = 100;

fn one_or_many<T>(
    v: &Value,
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, ErrorObjectOwned> {
    let item = |x: &Value| {
        x.as_str()
            .and_then(&parse)
            .ok_or_else(|| invalid(format!("filter {what}: cannot parse {x}")))
    };
    match v {
        Value::Array(a) => a.iter().map(item).collect(),
        other => Ok(vec![item(other)?]),
    }
}

impl Filter {
    /// The address and topic parts of a filter object (also used by subscriptions).
    pub fn parse_criteria(v: &Value) -> Result<Self, ErrorObjectOwned> {
        let o = v
            .as_object()
            .ok_or_else(|| invalid("filter: expected an object"))?;
        let mut f = Filter::default();
        if let Some(a) = o.get("address").filter(|a| !a.is_null()) {
            if a.as_array().is_some_and(|a| a.len() > MAX_FILTER_ADDRESSES) {
                return Err(invalid(format!(
                    "filter address: at most {MAX_FILTER_ADDRESSES} addresses"
                )));
            }
            f.addresses = one_or_many(a, "address", |s| s.parse().ok())?;
        }
        if let Some(t) = o.get("topics").filter(|t| !t.is_null()) {
            let list = t
                .as_array()
                .ok_or_else(|| invalid("filter topics: expected an array"))?;
            if list.len() > 4 {
                return Err(invalid("filter topics: at most 4 positions"));
            }
            for pos in list {
                f.topics.push(match pos {
                    Value::Null => None,
                    // An empty alternative list matches anything, as in geth.
                    Value::Array(a) if a.is_empty() => None,
                    Value::Array(a) if a.len() > MAX_TOPIC_ALTERNATIVES => {
                        return Err(invalid(format!(
                            "filter topics: at most {MAX_TOPIC_ALTERNATIVES} alternatives per position"
                        )))
                    }
                    other => Some(one_or_many(other, "topic", |s| s.parse().ok())?),
                });
            }
        }
        Ok(f)
    }

    /// A full `eth_getLogs` filter, with its block range checked against the limits.
    pub fn parse(c: &RpcContext, v: &Value) -> Result<Self, ErrorObjectOwned> {
        let mut f = Self::parse_criteria(v)?;
        let o = v.as_object().expect("checked by parse_criteria");
        let get = |k: &str| o.get(k).and_then(Value::as_str);
        if let Some(h) = get("blockHash") {
            if o.contains_key("fromBlock") || o.contains_key("toBlock") {
                return Err(invalid(
                    "filter: blockHash cannot be combined with fromBlock/toBlock",
                ));
            }
            let hash: B256 = h
                .parse()
                .map_err(|_| invalid("filter blockHash: expected a 32-byte 0x hash"))?;
            let n = c
                .store
                .number_of(&hash)
                .map_err(internal)?
                .ok_or_else(|| server_error(format!("unknown block {hash}")))?;
            f.from = n;
            f.to = n;
        } else {
            f.from = super::params::block_number(c, get("fromBlock").unwrap_or("latest"))?;
            f.to = super::params::block_number(c, get("toBlock").unwrap_or("latest"))?;
            let tip = c.store.tip().map_err(internal)?.map(|t| t.0).unwrap_or(0);
            f.to = f.to.min(tip);
            if f.from > f.to {
                return Err(invalid(format!(
                    "filter: fromBlock #{} is after toBlock #{}",
                    f.from, f.to
                )));
            }
        }
        let span = f.to - f.from + 1;
        if span > c.limits.max_logs_range {
            return Err(server_error(format!(
                "query exceeds max block range: {span} blocks requested, rpc.max_logs_range is {}; narrow fromBlock/toBlock",
                c.limits.max_logs_range
            )));
        }
        Ok(f)
    }

    /// Whether a block with this bloom can hold a matching log.
    pub fn bloom_may_match(&self, bloom: &Bloom) -> bool {
        let keys = self.bloom_keys.get_or_init(|| BloomKeys {
            addresses: self
                .addresses
                .iter()
                .map(alloy_primitives::keccak256)
                .collect(),
            topics: self
                .topics
                .iter()
                .map(|pos| {
                    pos.as_ref()
                        .map(|o| o.iter().map(alloy_primitives::keccak256).collect())
                })
                .collect(),
        });
        let has = |h: &B256| bloom.contains_input(BloomInput::Hash(*h));
        (keys.addresses.is_empty() || keys.addresses.iter().any(has))
            && keys.topics.iter().all(|pos| match pos {
                None => true,
                Some(options) => options.iter().any(has),
            })
    }

    pub fn matches(&self, log: &Log) -> bool {
        if !self.addresses.is_empty() && !self.addresses.contains(&log.address) {
            return false;
        }
        let topics = log.data.topics();
        self.topics.iter().enumerate().all(|(i, pos)| match pos {
            None => true,
            Some(options) => topics.get(i).is_some_and(|t| options.contains(t)),
        })
    }

    /// The JSON logs of one block that match.
    pub fn block_logs(&self, header: &Header, receipts: &[StoredReceipt]) -> Vec<Value> {
        let mut out = Vec::new();
        if !self.bloom_may_match(&header.logs_bloom) {
            return out;
        }
        let block_hash = header.hash();
        let mut log_index = 0u64;
        for (i, r) in receipts.iter().enumerate() {
            let mined = Mined {
                block_hash,
                number: header.number,
                index: i as u64,
                base_fee: header.base_fee,
            };
            for l in &r.logs {
                if self.matches(l) {
                    out.push(json::log(l, mined, r.tx_hash, log_index));
                }
                log_index += 1;
            }
        }
        out
    }

    /// Scans the range, block bloom first.
    pub fn collect(&self, c: &RpcContext) -> Result<Value, ErrorObjectOwned> {
        let mut out = Vec::new();
        for n in self.from..=self.to {
            let Some(header) = c.store.header(n).map_err(internal)? else {
                break;
            };
            if !self.bloom_may_match(&header.logs_bloom) {
                continue;
            }
            let receipts = c.store.receipts(n).map_err(internal)?.unwrap_or_default();
            out.extend(self.block_logs(&header, &receipts.receipts));
            if out.len() > c.limits.max_logs {
                return Err(server_error(format!(
                    "query returned more than {} results (rpc.max_logs); narrow the block range or the filter",
                    c.limits.max_logs
                )));
            }
        }
        Ok(Value::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bloom_of(items: &[&[u8]]) -> Bloom {
        let mut b = Bloom::ZERO;
        for i in items {
            b.accrue(BloomInput::Raw(i));
        }
        b
    }

    #[test]
    fn bloom_test_with_cached_hashes_matches_the_raw_test() {
        let (a, other) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let (t, u) = (B256::repeat_byte(3), B256::repeat_byte(4));
        let bloom = bloom_of(&[a.as_slice(), t.as_slice()]);
        let filter = |addresses: Vec<Address>, topics: Vec<Option<Vec<B256>>>| Filter {
            addresses,
            topics,
            ..Filter::default()
        };
        let cases = [
            (filter(vec![], vec![]), true),
            (filter(vec![a], vec![]), true),
            (filter(vec![other], vec![]), false),
            (filter(vec![other, a], vec![Some(vec![u, t])]), true),
            (filter(vec![a], vec![None, Some(vec![u])]), false),
        ];
        for (f, want) in cases {
            // Twice: the second answer comes from the cached hashes.
            assert_eq!(f.bloom_may_match(&bloom), want, "{f:?}");
            assert_eq!(f.bloom_may_match(&bloom), want, "{f:?} (cached)");
            assert!(
                !f.bloom_may_match(&Bloom::ZERO) || (f.addresses.is_empty() && f.topics.is_empty())
            );
        }
    }
}
