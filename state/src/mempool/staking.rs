//! Staking transactions waiting for a block. They are few (operators and delegators, no fee
//! market), so the pool is a small map, and a transaction whose nonce is the sender's next
//! is checked against the latest staking state at admission: the sender learns at once that
//! a rule refuses it, instead of watching it never being included.

use crate::exec::{ExecConfig, StateReader};
use crate::staking::{Balances, SignedStakingTx, StakingError, StakingState};
use alloy_primitives::{Address, B256, U256};
use libmdbx::TransactionKind;
use std::collections::BTreeMap;

/// Most staking transactions waiting at once.
pub const MAX_STAKING_POOL: usize = 1024;
/// Most waiting staking transactions of one sender.
pub const MAX_STAKING_PER_SENDER: usize = 16;

/// Why a staking transaction was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum StakingAdmission {
    #[error("staking is not active yet (the `staking` fork starts at epoch {from:?}); this is epoch {epoch}")]
    Inactive { epoch: u64, from: Option<u64> },
    #[error("already known")]
    Known,
    #[error("nonce too low: next nonce {next}, transaction nonce {nonce}")]
    NonceTooLow { next: u64, nonce: u64 },
    #[error("gas price {price} is below the base fee {base_fee}")]
    Underpriced { price: u128, base_fee: u64 },
    #[error("staking pool is full ({MAX_STAKING_POOL}, or {MAX_STAKING_PER_SENDER} from this sender); retry after the next block")]
    Full,
    #[error("insufficient funds for gas: {needed} wei needed, {available} available")]
    Funds { needed: U256, available: U256 },
    #[error(transparent)]
    Rules(#[from] StakingError),
}

/// Balances as stored, with the sender's fee already taken.
struct ReadBalances<'a, 'r, K: TransactionKind> {
    reader: &'a StateReader<'r, K>,
    overlay: BTreeMap<Address, U256>,
}

impl<K: TransactionKind> Balances for ReadBalances<'_, '_, K> {
    fn balance(&self, a: Address) -> U256 {
        self.overlay.get(&a).copied().unwrap_or_else(|| {
            self.reader
                .account(a)
                .ok()
                .flatten()
                .map_or(U256::ZERO, |x| x.balance)
        })
    }
    fn set_balance(&mut self, a: Address, b: U256) {
        self.overlay.insert(a, b);
    }
}

/// The waiting staking transactions, by hash.
#[derive(Debug, Default)]
pub struct StakingPool {
    txs: BTreeMap<B256, SignedStakingTx>,
}

impl StakingPool {
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    pub fn get(&self, hash: &B256) -> Option<&SignedStakingTx> {
        self.txs.get(hash)
    }

    /// Admits `tx` after checking it against the latest state (`reader`, `staking`) in
    /// `epoch`, with the next block's `base_fee`.
    pub fn insert<K: TransactionKind>(
        &mut self,
        tx: SignedStakingTx,
        cfg: &ExecConfig,
        epoch: u64,
        base_fee: u64,
        reader: &StateReader<'_, K>,
        staking: &StakingState,
    ) -> Result<(), StakingAdmission> {
        if !cfg.staking_active(epoch) {
            return Err(StakingAdmission::Inactive {
                epoch,
                from: cfg.staking_from,
            });
        }
        if self.txs.contains_key(&tx.hash) {
            return Err(StakingAdmission::Known);
        }
        let account = reader.account(tx.sender).ok().flatten();
        let (next, balance) = account.map_or((0, U256::ZERO), |a| (a.nonce, a.balance));
        if tx.tx.nonce < next {
            return Err(StakingAdmission::NonceTooLow {
                next,
                nonce: tx.tx.nonce,
            });
        }
        if tx.tx.gas_price < u128::from(base_fee) {
            return Err(StakingAdmission::Underpriced {
                price: tx.tx.gas_price,
                base_fee,
            });
        }
        let from_sender = self.txs.values().filter(|t| t.sender == tx.sender).count();
        if self.txs.len() >= MAX_STAKING_POOL || from_sender >= MAX_STAKING_PER_SENDER {
            return Err(StakingAdmission::Full);
        }
        if tx.tx.nonce == next {
            let fee = U256::from(tx.tx.gas_limit) * U256::from(tx.tx.gas_price);
            if fee > balance {
                return Err(StakingAdmission::Funds {
                    needed: fee,
                    available: balance,
                });
            }
            let mut balances = ReadBalances {
                reader,
                overlay: BTreeMap::from([(tx.sender, balance - fee)]),
            };
            staking.clone().apply(
                &cfg.staking_params(epoch),
                epoch,
                tx.sender,
                &tx.tx.msg,
                &mut balances,
            )?;
        }
        self.txs.insert(tx.hash, tx);
        Ok(())
    }

    /// Candidates for a block: by sender, then nonce.
    pub fn candidates(&self) -> Vec<SignedStakingTx> {
        let mut v: Vec<SignedStakingTx> = self.txs.values().cloned().collect();
        v.sort_by_key(|t| (t.sender, t.tx.nonce));
        v
    }

    /// Drops transactions by hash (included, or refused by the block builder).
    pub fn remove(&mut self, hashes: &[B256]) {
        for h in hashes {
            self.txs.remove(h);
        }
    }

    /// Drops transactions whose nonce the chain has passed.
    pub fn prune<K: TransactionKind>(&mut self, reader: &StateReader<'_, K>) {
        self.txs.retain(|_, t| {
            let next = reader
                .account(t.sender)
                .ok()
                .flatten()
                .map_or(0, |a| a.nonce);
            t.tx.nonce >= next
        });
    }
}
