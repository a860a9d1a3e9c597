//! The transaction pool: signed transactions waiting for a leader to include them.
//!
//! Pure bookkeeping, with no IO and no locking (the node wraps a [`Mempool`] in a mutex and
//! reads accounts through [`AccountSource`]). The policy follows what Ethereum clients do, so
//! wallets see the behaviour and the error messages they already handle:
//!
//! - **Admission** ([`Mempool::insert`]) refuses, in this order: a transaction already pooled;
//!   a nonce below the account's nonce, or more than [`MempoolConfig::max_nonce_gap`] above it
//!   (a bounded window keeps a sender from parking transactions that can never execute); a gas
//!   limit above the block gas limit or below the intrinsic gas (it could never be included);
//!   a fee cap below [`MIN_BASE_FEE`] (it could never pay the base fee) or below its own tip
//!   cap (execution refuses it at any base fee); and a sender whose
//!   balance does not cover the transaction's maximum cost *plus* the maximum cost of its pooled
//!   transactions with lower nonces, which must all execute first.
//! - **Replacement**: a transaction with the nonce of a pooled one from the same sender replaces
//!   it only when it raises both the fee cap and the tip cap by at least
//!   [`MempoolConfig::price_bump_percent`] (legacy and EIP-2930 transactions have one gas price
//!   that counts as both) and strictly beats both. Otherwise anyone could churn the pool, and
//!   the network's gossip, for free.
//! - **Pending and queued**: a pooled transaction is *pending* when its nonce is in its sender's
//!   contiguous run of pooled nonces starting at the account's nonce, so it can execute once
//!   those before it have; every other one is *queued* behind a nonce gap. The split matters
//!   because a queued transaction costs its sender nothing for as long as the gap stays open:
//!   it is never selected, so it never pays. Were queued transactions ranked like pending ones,
//!   a few funded accounts could each pool [`MempoolConfig::max_per_sender`] high-tip
//!   transactions above an empty nonce, fill the pool for free, forever, and have every honest
//!   sender refused with "txpool is full". Hence the limits, the eviction order and the time to
//!   live below. The pool classifies with the account nonces it last read (when a sender's
//!   transaction is inserted, at [`Mempool::prune`], which the node calls after every finalized
//!   block, and for the sender of the tail an eviction would take, before deciding).
//! - **Limits**: a sender holds at most [`MempoolConfig::max_per_sender`] transactions, the pool
//!   at most [`MempoolConfig::max_total`], of which at most [`MempoolConfig::max_queued`] queued.
//!   When a limit is reached, room is made by evicting a *tail* transaction — one with the
//!   highest pooled nonce of its sender — because evicting any other would leave a nonce gap
//!   and turn the transactions above it into dead weight. A tail is queued when its sender has
//!   any queued transaction (they sit above the gap), and queued tails go first: the cheapest
//!   queued tail, else the cheapest pending tail. "Cheapest" is the tip at the current base fee
//!   (a fee cap below the base fee ranks lowest of all), then the tip cap; ties go to the lower
//!   sender address. An incoming *pending* transaction evicts a queued tail whatever either
//!   pays, and a pending tail only when it pays more. An incoming *queued* transaction evicts
//!   only a queued tail that pays less, never a pending one; when the queued limit is what binds
//!   and nothing can go, it is refused with "txpool is full: too many queued (nonce-gapped)
//!   transactions". A sender's own tail can make room only for a lower nonce (otherwise the new
//!   transaction would sit above a gap it just made).
//! - **Selection** ([`Mempool::best`]) gives the leader, per sender, only the contiguous run of
//!   nonces starting at the account's nonce (nothing after a gap can execute), interleaves the
//!   senders greedily by the tip each head transaction pays at the block's base fee, and drops a
//!   sender's run at a transaction whose fee cap is below the base fee. It offers at most
//!   gas limit / 21,000 transactions, the most any block can hold: what fits is decided by
//!   executing them on the gas actually used (a transaction needs its whole limit free and gives
//!   back what it does not use, as in Ethereum clients), so transfers whose limit is well above
//!   their use still fill the block. The builder leaves out one that no longer fits, with its
//!   sender's later nonces, and keeps packing from other senders. Among equal tips the head
//!   pooled first goes first (geth's "time first seen"): under a backlog every sender then waits
//!   about as long as the backlog, where ordering ties by address had the highest addresses
//!   wait for as long as lower ones kept sending. Remaining ties go to the lower sender address.
//!   Only the leader selects; validators execute the list it proposed.
//! - **Cleanup**: after each finalized block, [`Mempool::remove_included`] drops the block's
//!   transactions (and remembers the last 65,536 included hashes, so that a relayed copy
//!   arriving after its block is recognised by [`Mempool::knows`] before anyone recovers its
//!   sender) and [`Mempool::prune`] drops any whose nonce the chain has moved past
//!   (included elsewhere, or replaced by another transaction with the same nonce), and any
//!   pooled for longer than [`MempoolConfig::max_age`] together with every later nonce of the
//!   same sender (which could not execute without it). The time to live bounds what the limits
//!   cannot: a queued transaction whose gap never fills, or a pending one whose fee cap stays
//!   below the base fee, leaves after a few hours instead of never.
//!
//! Each transaction is stored once, by hash, with its insertion time and a per-sender index from
//! nonce to hash.

pub mod staking;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use alloy_consensus::Transaction;
use alloy_primitives::{Address, B256, U256};

use crate::block::GAS_LIMIT;
use crate::fees::MIN_BASE_FEE;
use crate::tx::SignedTx;

/// The cheapest possible transaction: a plain transfer.
const MIN_TX_GAS: u64 = 21_000;

/// Pool limits, the replacement rule and the time to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MempoolConfig {
    /// Most transactions one sender may have pooled.
    pub max_per_sender: usize,
    /// Most transactions in the pool.
    pub max_total: usize,
    /// How much (in percent) a replacement must raise both the fee cap and the tip cap.
    pub price_bump_percent: u128,
    /// How far above the account's nonce a transaction's nonce may be.
    pub max_nonce_gap: u64,
    /// Most queued (nonce-gapped) transactions in the pool, counted within `max_total`.
    pub max_queued: usize,
    /// How long a transaction may stay pooled ([`Mempool::prune`] drops older ones).
    pub max_age: Duration,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        Self {
            max_per_sender: 64,
            max_total: 8192,
            price_bump_percent: 10,
            max_nonce_gap: 64,
            max_queued: 1024,
            max_age: Duration::from_secs(3 * 60 * 60),
        }
    }
}

/// The account data admission and selection need: the nonce and the balance as of the latest
/// finalized state.
pub trait AccountSource {
    fn nonce_and_balance(&self, address: Address) -> (u64, U256);
}

/// The pool checks nonces and balances against the latest state. A read error counts as an
/// empty account: the transaction is then judged again when a block is built.
impl<K: libmdbx::TransactionKind> AccountSource for crate::exec::StateReader<'_, K> {
    fn nonce_and_balance(&self, address: Address) -> (u64, U256) {
        match self.account(address) {
            Ok(Some(a)) => (a.nonce, a.balance),
            _ => (0, U256::ZERO),
        }
    }
}

/// What [`Mempool::insert`] did with an accepted transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// Added (possibly evicting a tail transaction to make room).
    New,
    /// Replaced the pooled transaction with this hash (same sender and nonce).
    Replaced(B256),
}

/// Why a transaction was refused. The messages are Ethereum clients' wording, which wallets
/// match on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    #[error("already known")]
    AlreadyKnown,
    #[error("nonce too low: next nonce {next}, tx nonce {nonce}")]
    NonceTooLow { next: u64, nonce: u64 },
    #[error("nonce too high: next nonce {next}, tx nonce {nonce}, max gap {max_gap}")]
    NonceTooHigh { next: u64, nonce: u64, max_gap: u64 },
    #[error("exceeds block gas limit")]
    ExceedsBlockGasLimit { gas: u64, limit: u64 },
    #[error("intrinsic gas too low: gas {gas}, minimum needed {needed}")]
    IntrinsicGasTooLow { gas: u64, needed: u64 },
    #[error("transaction underpriced: max fee per gas {max_fee} below the minimum {min}")]
    Underpriced { max_fee: u128, min: u128 },
    #[error("max priority fee per gas higher than max fee per gas: tip {tip}, max fee {max_fee}")]
    TipAboveFeeCap { tip: u128, max_fee: u128 },
    /// `cost` includes the maximum cost of the sender's pooled transactions with lower nonces.
    #[error("insufficient funds for gas * price + value: balance {balance}, tx cost {cost}")]
    InsufficientFunds { balance: U256, cost: U256 },
    #[error("replacement transaction underpriced")]
    ReplacementUnderpriced,
    #[error("txpool is full: sender {sender} has {count} pending transactions")]
    SenderFull { sender: Address, count: usize },
    #[error("txpool is full")]
    PoolFull,
    /// A queued transaction met [`MempoolConfig::max_queued`] and no cheaper queued tail.
    #[error("txpool is full: too many queued (nonce-gapped) transactions")]
    QueuedFull,
}

/// Pool counts. How many transactions are executable now depends on state; `queued` is as of
/// the account nonces the pool last read (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MempoolStats {
    /// Transactions pooled.
    pub total: usize,
    /// Senders with at least one pooled transaction.
    pub senders: usize,
    /// The most transactions any one sender has pooled.
    pub max_per_sender: usize,
    /// Transactions pooled behind a nonce gap.
    pub queued: usize,
}

/// A pooled transaction and when it was inserted.
#[derive(Debug, Clone)]
struct PooledTx {
    tx: SignedTx,
    added: Instant,
}

/// One sender's pooled transactions.
#[derive(Debug, Clone)]
struct SenderTxs {
    /// The account nonce as last read from state. Every pooled nonce is at least this: a
    /// transaction below it is dropped when it is read.
    base: u64,
    /// Nonce → hash.
    nonces: BTreeMap<u64, B256>,
    /// How many of `nonces` are queued: above the first nonce at or after `base` that is not
    /// pooled. They are the highest ones, so the tail is queued exactly when this is nonzero.
    queued: usize,
}

impl SenderTxs {
    /// How many pooled nonces run contiguously from `base` (the pending ones).
    fn pending_len(&self) -> usize {
        let mut want = Some(self.base);
        self.nonces
            .keys()
            .take_while(|&&n| {
                let ok = want == Some(n);
                want = n.checked_add(1);
                ok
            })
            .count()
    }

    /// The first nonce at or after `base` that is not pooled: where a pending transaction
    /// would go.
    fn run_end(&self) -> u64 {
        self.base.saturating_add(self.pending_len() as u64)
    }
}

/// The transaction pool (see the module documentation for the policy).
#[derive(Debug, Clone, Default)]
pub struct Mempool {
    cfg: MempoolConfig,
    txs: HashMap<B256, PooledTx>,
    /// A sender is present only while it has transactions.
    by_sender: BTreeMap<Address, SenderTxs>,
    /// The sum of the senders' `queued`.
    queued: usize,
    /// Hashes of the transactions of recent finalized blocks, pooled here or not.
    included: RecentHashes,
}

/// Transactions in this many recent finalized blocks' worth of full blocks (1,428 transfers
/// each, 45 blocks) are remembered as included.
const RECENTLY_INCLUDED: usize = 1 << 16;

/// The last [`RECENTLY_INCLUDED`] hashes given to [`Mempool::remove_included`], oldest first
/// out. A relayed copy of a transaction often arrives after its block (the relay reached the
/// leader first); recognised by hash, it costs no sender recovery (30 µs, the largest cost of a
/// relayed transaction) just to be refused as "nonce too low".
#[derive(Debug, Clone, Default)]
struct RecentHashes {
    set: HashSet<B256>,
    order: VecDeque<B256>,
}

impl RecentHashes {
    fn add(&mut self, hash: B256) {
        if !self.set.insert(hash) {
            return;
        }
        self.order.push_back(hash);
        if self.order.len() > RECENTLY_INCLUDED {
            let old = self
                .order
                .pop_front()
                .expect("over the bound, so not empty");
            self.set.remove(&old);
        }
    }
}

/// The fee cap per gas (the gas price for legacy and EIP-2930 transactions).
fn fee_cap(tx: &SignedTx) -> u128 {
    tx.envelope.max_fee_per_gas()
}

/// The tip cap per gas (the gas price for legacy and EIP-2930 transactions).
fn tip_cap(tx: &SignedTx) -> u128 {
    tx.envelope
        .max_priority_fee_per_gas()
        .or_else(|| tx.envelope.gas_price())
        .unwrap_or_else(|| tx.envelope.max_fee_per_gas())
}

/// How much a transaction pays at `base_fee`, for eviction: the tip it would pay (none when
/// its fee cap is below the base fee, which ranks lowest), then its tip cap.
fn eviction_rank(tx: &SignedTx, base_fee: u64) -> (Option<u128>, u128) {
    (tx.effective_tip(base_fee), tip_cap(tx))
}

/// `old` raised by `percent`, rounding down (as Ethereum clients do).
fn bumped(old: u128, percent: u128) -> u128 {
    old.saturating_mul(100u128.saturating_add(percent)) / 100
}

impl Mempool {
    pub fn new(cfg: MempoolConfig) -> Self {
        Self {
            cfg,
            txs: HashMap::new(),
            by_sender: BTreeMap::new(),
            queued: 0,
            included: RecentHashes::default(),
        }
    }

    pub fn config(&self) -> &MempoolConfig {
        &self.cfg
    }

    /// Admits `tx` if it passes the checks in the module documentation, in that order;
    /// `base_fee` is the next block's base fee, used to rank transactions for eviction.
    pub fn insert(
        &mut self,
        tx: SignedTx,
        state: &impl AccountSource,
        base_fee: u64,
    ) -> Result<Inserted, MempoolError> {
        self.insert_at(tx, state, base_fee, Instant::now())
    }

    /// [`Mempool::insert`] with the insertion time given (for [`Mempool::prune_at`]).
    pub fn insert_at(
        &mut self,
        tx: SignedTx,
        state: &impl AccountSource,
        base_fee: u64,
        now: Instant,
    ) -> Result<Inserted, MempoolError> {
        if self.txs.contains_key(&tx.hash) {
            return Err(MempoolError::AlreadyKnown);
        }
        let (next, balance) = state.nonce_and_balance(tx.sender);
        let nonce = tx.nonce();
        // The pool may have read a later nonce than `state` has (nonces only grow).
        let known = self
            .by_sender
            .get(&tx.sender)
            .map_or(next, |s| s.base.max(next));
        if nonce < known {
            return Err(MempoolError::NonceTooLow { next: known, nonce });
        }
        if nonce - next > self.cfg.max_nonce_gap {
            return Err(MempoolError::NonceTooHigh {
                next,
                nonce,
                max_gap: self.cfg.max_nonce_gap,
            });
        }
        let gas = tx.gas_limit();
        if gas > GAS_LIMIT {
            return Err(MempoolError::ExceedsBlockGasLimit {
                gas,
                limit: GAS_LIMIT,
            });
        }
        let needed = tx.intrinsic_gas();
        if gas < needed {
            return Err(MempoolError::IntrinsicGasTooLow { gas, needed });
        }
        let max_fee = fee_cap(&tx);
        if max_fee < u128::from(MIN_BASE_FEE) {
            return Err(MempoolError::Underpriced {
                max_fee,
                min: u128::from(MIN_BASE_FEE),
            });
        }
        // Execution refuses such a transaction at any base fee; pooled, it would hold its
        // nonce (and refuse the sender's valid transaction there as an underpriced
        // replacement) until a leader tried it.
        let tip = tip_cap(&tx);
        if tip > max_fee {
            return Err(MempoolError::TipAboveFeeCap { tip, max_fee });
        }

        // The transactions ahead of this one must execute first, so its sender must be able
        // to pay for all of them too.
        let ahead = self
            .by_sender
            .get(&tx.sender)
            .into_iter()
            .flat_map(|s| s.nonces.range(next..nonce))
            .fold(U256::ZERO, |acc, (_, h)| {
                acc.saturating_add(self.txs[h].tx.max_cost())
            });
        let cost = ahead.saturating_add(tx.max_cost());
        if balance < cost {
            return Err(MempoolError::InsufficientFunds { balance, cost });
        }

        // From here on the sender's transactions are classified with the nonce just read.
        self.refresh(tx.sender, next);
        let pooled = self.by_sender.get(&tx.sender);

        if let Some(&old_hash) = pooled.and_then(|s| s.nonces.get(&nonce)) {
            let old = &self.txs[&old_hash].tx;
            let bump = self.cfg.price_bump_percent;
            let (old_fee, old_tip) = (fee_cap(old), tip_cap(old));
            let (new_fee, new_tip) = (max_fee, tip_cap(&tx));
            if new_fee < bumped(old_fee, bump)
                || new_tip < bumped(old_tip, bump)
                || new_fee <= old_fee
                || new_tip <= old_tip
            {
                return Err(MempoolError::ReplacementUnderpriced);
            }
            self.txs.remove(&old_hash);
            self.add(tx, known, now);
            return Ok(Inserted::Replaced(old_hash));
        }

        let count = pooled.map_or(0, |s| s.nonces.len());
        if count >= self.cfg.max_per_sender {
            return Err(MempoolError::SenderFull {
                sender: tx.sender,
                count,
            });
        }
        // Not pooled and not below the run's end, so pending exactly at the run's end.
        let queued = nonce != pooled.map_or(known, SenderTxs::run_end);
        self.make_room(&tx, queued, state, base_fee)?;
        self.add(tx, known, now);
        Ok(Inserted::New)
    }

    /// Evicts tail transactions until `incoming` (queued or not) fits under the limits, by the
    /// rules in the module documentation, or says why it cannot.
    fn make_room(
        &mut self,
        incoming: &SignedTx,
        queued: bool,
        state: &impl AccountSource,
        base_fee: u64,
    ) -> Result<(), MempoolError> {
        loop {
            let queued_full = queued && self.queued >= self.cfg.max_queued;
            if self.txs.len() < self.cfg.max_total && !queued_full {
                return Ok(());
            }
            let full = if queued_full {
                MempoolError::QueuedFull
            } else {
                MempoolError::PoolFull
            };
            let (victim, victim_queued) = self
                .eviction_candidate(incoming, base_fee)
                .ok_or_else(|| full.clone())?;
            // Judge the candidate's sender by the state's nonce rather than the one the pool
            // last read: if the chain has moved it since (its transactions may have become
            // pending, or stale and free to drop), look again.
            let sender = self.txs[&victim].tx.sender;
            let (state_nonce, _) = state.nonce_and_balance(sender);
            if self.refresh(sender, state_nonce) {
                continue;
            }
            let pays_more = || {
                eviction_rank(incoming, base_fee) > eviction_rank(&self.txs[&victim].tx, base_fee)
            };
            let allowed = if queued {
                victim_queued && pays_more()
            } else {
                victim_queued || pays_more()
            };
            if !allowed {
                return Err(full);
            }
            self.remove(&victim);
        }
    }

    /// The tail transaction to evict first to make room for `incoming`, and whether it is
    /// queued: queued tails before pending ones, then the cheapest, then the lowest sender
    /// address. The incoming sender's own tail is a candidate only above the incoming nonce.
    fn eviction_candidate(&self, incoming: &SignedTx, base_fee: u64) -> Option<(B256, bool)> {
        self.by_sender
            .iter()
            .filter_map(|(sender, s)| {
                let (&nonce, hash) = s.nonces.last_key_value()?;
                // Removing the incoming sender's own tail below the incoming nonce would open
                // a gap below the new transaction.
                if *sender == incoming.sender && incoming.nonce() > nonce {
                    return None;
                }
                Some((*hash, s.queued > 0))
            })
            .min_by_key(|(h, queued)| (!queued, eviction_rank(&self.txs[h].tx, base_fee)))
    }

    /// Raises `sender`'s known account nonce to `state_nonce`, dropping its transactions below
    /// it and classifying the rest again; says whether the nonce moved.
    fn refresh(&mut self, sender: Address, state_nonce: u64) -> bool {
        let Some(s) = self.by_sender.get_mut(&sender) else {
            return false;
        };
        if state_nonce <= s.base {
            return false;
        }
        s.base = state_nonce;
        let keep = s.nonces.split_off(&state_nonce);
        let stale = std::mem::replace(&mut s.nonces, keep);
        for h in stale.values() {
            self.txs.remove(h);
        }
        self.recount(sender);
        true
    }

    /// Classifies `sender`'s transactions again after a change, keeping the pool's queued
    /// count, and forgets a sender with none left.
    fn recount(&mut self, sender: Address) {
        let Some(s) = self.by_sender.get_mut(&sender) else {
            return;
        };
        let queued = s.nonces.len() - s.pending_len();
        self.queued = self.queued - s.queued + queued;
        s.queued = queued;
        if s.nonces.is_empty() {
            self.by_sender.remove(&sender);
        }
    }

    /// Indexes `tx`, inserted at `now` (the caller has removed any transaction with its
    /// sender and nonce); `base` is the sender's account nonce when it has nothing pooled.
    fn add(&mut self, tx: SignedTx, base: u64, now: Instant) {
        let sender = tx.sender;
        self.by_sender
            .entry(sender)
            .or_insert_with(|| SenderTxs {
                base,
                nonces: BTreeMap::new(),
                queued: 0,
            })
            .nonces
            .insert(tx.nonce(), tx.hash);
        self.txs.insert(tx.hash, PooledTx { tx, added: now });
        self.recount(sender);
    }

    /// Removes one transaction and its index entry.
    fn remove(&mut self, hash: &B256) -> Option<SignedTx> {
        let PooledTx { tx, .. } = self.txs.remove(hash)?;
        if let Some(s) = self.by_sender.get_mut(&tx.sender) {
            if s.nonces.get(&tx.nonce()) == Some(hash) {
                s.nonces.remove(&tx.nonce());
            }
            self.recount(tx.sender);
        }
        Some(tx)
    }

    pub fn get(&self, hash: &B256) -> Option<&SignedTx> {
        self.txs.get(hash).map(|p| &p.tx)
    }

    pub fn contains(&self, hash: &B256) -> bool {
        self.txs.contains_key(hash)
    }

    /// True when the transaction with this hash is pooled or was in a recent finalized block
    /// (one of the last [`RECENTLY_INCLUDED`] given to [`Mempool::remove_included`]): a copy
    /// of it needs no decoding, let alone its sender recovered.
    pub fn knows(&self, hash: &B256) -> bool {
        self.txs.contains_key(hash) || self.included.set.contains(hash)
    }

    pub fn len(&self) -> usize {
        self.txs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// How many senders have pooled transactions.
    pub fn senders(&self) -> usize {
        self.by_sender.len()
    }

    /// How many pooled transactions are queued behind a nonce gap, as of the account nonces
    /// the pool last read.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// The nonce `sender`'s next transaction should use: `state_nonce` advanced through the
    /// sender's contiguous pooled nonces (`eth_getTransactionCount` at "pending").
    pub fn next_nonce(&self, sender: Address, state_nonce: u64) -> u64 {
        let mut next = state_nonce;
        if let Some(s) = self.by_sender.get(&sender) {
            for n in s.nonces.range(state_nonce..).map(|(n, _)| *n) {
                if n != next {
                    break;
                }
                next = next.saturating_add(1);
            }
        }
        next
    }

    /// The transactions a leader should try, in order, for a block with `base_fee` and
    /// `gas_limit`: per sender the contiguous run from its account nonce, across senders
    /// greedily the highest tip at `base_fee`, at most `gas_limit` / 21,000 of them (see the
    /// module documentation; execution decides which fit).
    pub fn best(&self, state: &impl AccountSource, base_fee: u64, gas_limit: u64) -> Vec<SignedTx> {
        // Max-heap of sender heads: highest tip first, then the one pooled first, then the
        // lowest sender address.
        type Head = (u128, Reverse<Instant>, Reverse<Address>, Reverse<u64>);
        let mut heads: BinaryHeap<Head> = BinaryHeap::new();
        let push = |heads: &mut BinaryHeap<Head>, sender: Address, nonce: u64| {
            let Some(hash) = self
                .by_sender
                .get(&sender)
                .and_then(|s| s.nonces.get(&nonce))
            else {
                return;
            };
            let pooled = &self.txs[hash];
            // A fee cap below the base fee blocks the rest of the sender's run as well.
            if let Some(tip) = pooled.tx.effective_tip(base_fee) {
                heads.push((tip, Reverse(pooled.added), Reverse(sender), Reverse(nonce)));
            }
        };
        for sender in self.by_sender.keys() {
            push(&mut heads, *sender, state.nonce_and_balance(*sender).0);
        }
        let mut out = Vec::new();
        // Every transaction uses at least MIN_TX_GAS: no block holds more than this many.
        let most = (gas_limit / MIN_TX_GAS) as usize;
        while let Some((_, _, Reverse(sender), Reverse(nonce))) = heads.pop() {
            if out.len() >= most {
                break;
            }
            let tx = &self.txs[&self.by_sender[&sender].nonces[&nonce]].tx;
            if tx.gas_limit() > gas_limit {
                // Not even an empty block holds it; the sender's later nonces wait behind it.
                continue;
            }
            out.push(tx.clone());
            if let Some(n) = nonce.checked_add(1) {
                push(&mut heads, sender, n);
            }
        }
        out
    }

    /// Drops the transactions with these hashes (those of a finalized block) and remembers them
    /// as included (see [`Mempool::knows`]); returns how many were pooled.
    pub fn remove_included(&mut self, hashes: &[B256]) -> usize {
        for h in hashes {
            self.included.add(*h);
        }
        self.remove_rejected(hashes)
    }

    /// Drops the transactions with these hashes (ones a block's execution refused); returns
    /// how many were pooled. They are not remembered: a copy may be valid later.
    pub fn remove_rejected(&mut self, hashes: &[B256]) -> usize {
        hashes.iter().filter(|h| self.remove(h).is_some()).count()
    }

    /// [`Mempool::prune_at`] now (call after each finalized block).
    pub fn prune(&mut self, state: &impl AccountSource) -> usize {
        self.prune_at(state, Instant::now())
    }

    /// Drops every transaction whose nonce is below its sender's account nonce, and every one
    /// pooled for longer than [`MempoolConfig::max_age`] at `now` together with its sender's
    /// later nonces; classifies the rest with the account nonces read. Returns how many were
    /// dropped.
    pub fn prune_at(&mut self, state: &impl AccountSource, now: Instant) -> usize {
        let before = self.txs.len();
        let max_age = self.cfg.max_age;
        let senders: Vec<Address> = self.by_sender.keys().copied().collect();
        for sender in senders {
            let (next, _) = state.nonce_and_balance(sender);
            self.refresh(sender, next);
            let Some(s) = self.by_sender.get_mut(&sender) else {
                continue;
            };
            let txs = &mut self.txs;
            let expired = s
                .nonces
                .iter()
                .find(|(_, h)| now.saturating_duration_since(txs[*h].added) > max_age)
                .map(|(n, _)| *n);
            if let Some(first) = expired {
                for h in s.nonces.split_off(&first).values() {
                    txs.remove(h);
                }
                self.recount(sender);
            }
        }
        before - self.txs.len()
    }

    /// The hashes among `hashes` that are not pooled (to fetch from peers).
    pub fn take_missing(&self, hashes: &[B256]) -> Vec<B256> {
        hashes
            .iter()
            .filter(|h| !self.txs.contains_key(*h))
            .copied()
            .collect()
    }

    /// The pooled transactions with these hashes, in the same order (`None` when absent).
    pub fn by_hashes(&self, hashes: &[B256]) -> Vec<Option<SignedTx>> {
        hashes.iter().map(|h| self.get(h).cloned()).collect()
    }

    pub fn stats(&self) -> MempoolStats {
        MempoolStats {
            total: self.txs.len(),
            senders: self.by_sender.len(),
            max_per_sender: self
                .by_sender
                .values()
                .map(|s| s.nonces.len())
                .max()
                .unwrap_or(0),
            queued: self.queued,
        }
    }
}

#[cfg(test)]
mod tests;
