//! revm's view of the world state: [`StateReader`] reads a consistent MDBX snapshot,
//! [`PendingState`] layers the changes of the transactions executed so far on top of it.

use crate::changes::{AccountInfoLite, StateChanges};
use crate::db::{Accounts, Bytecodes, CanonicalHashes, DbError, Storage, Tx};
use crate::types::{StoredAccount, EMPTY_CODE_HASH};
use alloy_primitives::{keccak256, map::HashMap, Address, B256, U256};
use libmdbx::TransactionKind;
use revm::bytecode::Bytecode;
use revm::database_interface::{DBErrorMarker, Database, DatabaseCommit, DatabaseRef};
use revm::primitives::AddressMap;
use revm::state::{Account, AccountInfo};
use std::collections::BTreeMap;

impl DBErrorMarker for DbError {}

/// Reads accounts, storage, code and block hashes from one MDBX transaction.
pub struct StateReader<'a, K: TransactionKind> {
    tx: &'a Tx<'a, K>,
}

impl<'a, K: TransactionKind> StateReader<'a, K> {
    pub fn new(tx: &'a Tx<'a, K>) -> Self {
        Self { tx }
    }

    pub fn account(&self, address: Address) -> Result<Option<StoredAccount>, DbError> {
        self.tx.get::<Accounts>(&keccak256(address))
    }

    pub fn storage_at(&self, address: Address, slot: U256) -> Result<U256, DbError> {
        let key = (keccak256(address), keccak256(slot.to_be_bytes::<32>()));
        Ok(self.tx.get::<Storage>(&key)?.unwrap_or_default())
    }
}

impl<K: TransactionKind> DatabaseRef for StateReader<'_, K> {
    type Error = DbError;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, DbError> {
        Ok(self.account(address)?.map(|a| AccountInfo {
            balance: a.balance,
            nonce: a.nonce,
            code_hash: a.code_hash,
            account_id: None,
            code: None,
        }))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, DbError> {
        if code_hash == EMPTY_CODE_HASH || code_hash == B256::ZERO {
            return Ok(Bytecode::default());
        }
        let code = self
            .tx
            .get::<Bytecodes>(&code_hash)?
            .ok_or_else(|| DbError::Corrupt {
                table: "Bytecodes",
                key: code_hash.to_string(),
                reason: "an account names this code hash but the code is missing".into(),
            })?;
        Bytecode::new_raw_checked(code).map_err(|e| DbError::Corrupt {
            table: "Bytecodes",
            key: code_hash.to_string(),
            reason: format!("undecodable bytecode: {e:?}"),
        })
    }

    fn storage_ref(&self, address: Address, index: U256) -> Result<U256, DbError> {
        self.storage_at(address, index)
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, DbError> {
        Ok(self.tx.get::<CanonicalHashes>(&number)?.unwrap_or_default())
    }
}

/// A revm database: the snapshot below plus the changes committed so far.
pub struct PendingState<D> {
    base: D,
    changes: StateChanges,
    codes: HashMap<B256, Bytecode>,
}

impl<D: DatabaseRef> PendingState<D> {
    pub fn new(base: D) -> Self {
        Self {
            base,
            changes: StateChanges::default(),
            codes: HashMap::default(),
        }
    }

    pub fn changes(&self) -> &StateChanges {
        &self.changes
    }

    pub fn into_changes(self) -> StateChanges {
        self.changes
    }

    /// The account as execution currently sees it.
    pub fn info(&self, address: Address) -> Result<Option<AccountInfo>, D::Error> {
        match self.changes.accounts.get(&address) {
            Some(Some(a)) => Ok(Some(AccountInfo {
                balance: a.balance,
                nonce: a.nonce,
                code_hash: a.code_hash,
                account_id: None,
                code: None,
            })),
            Some(None) => Ok(None),
            None => self.base.basic_ref(address),
        }
    }

    /// Subtracts `amount` from `address`'s balance (fee burning); an account left empty is
    /// removed, as EIP-161 would.
    pub(crate) fn debit(&mut self, address: Address, amount: U256) -> Result<(), D::Error> {
        if amount.is_zero() {
            return Ok(());
        }
        let Some(info) = self.info(address)? else {
            return Ok(());
        };
        let lite = AccountInfoLite {
            nonce: info.nonce,
            balance: info.balance.saturating_sub(amount),
            code_hash: info.code_hash,
        };
        let empty = lite.nonce == 0
            && lite.balance.is_zero()
            && (lite.code_hash == EMPTY_CODE_HASH || lite.code_hash == B256::ZERO);
        let has_storage = self
            .changes
            .storage
            .get(&address)
            .is_some_and(|s| s.values().any(|v| !v.is_zero()));
        self.changes.accounts.insert(
            address,
            if empty && !has_storage {
                None
            } else {
                Some(lite)
            },
        );
        Ok(())
    }

    fn commit_account(&mut self, address: Address, account: Account) {
        if !account.is_touched() {
            return;
        }
        if account.is_selfdestructed() {
            self.changes.accounts.insert(address, None);
            self.changes.storage.insert(address, BTreeMap::new());
            self.changes.wiped.insert(address);
            return;
        }
        if account.is_created() {
            self.changes.storage.insert(address, BTreeMap::new());
            self.changes.wiped.insert(address);
        }
        let info = &account.info;
        if let Some(code) = &info.code {
            if info.code_hash != EMPTY_CODE_HASH && !code.is_empty() {
                self.changes
                    .codes
                    .insert(info.code_hash, code.original_bytes());
                self.codes.insert(info.code_hash, code.clone());
            }
        }
        // EIP-161: a touched account that is empty afterwards is removed.
        let lite = AccountInfoLite {
            nonce: info.nonce,
            balance: info.balance,
            code_hash: info.code_hash,
        };
        self.changes
            .accounts
            .insert(address, (!account.is_empty()).then_some(lite));
        let slots = self.changes.storage.entry(address).or_default();
        for (k, v) in account.storage.iter() {
            if v.is_changed() {
                slots.insert(*k, v.present_value);
            }
        }
        if slots.is_empty() && !self.changes.wiped.contains(&address) {
            self.changes.storage.remove(&address);
        }
    }
}

impl<D: DatabaseRef> Database for PendingState<D> {
    type Error = D::Error;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, Self::Error> {
        self.info(address)
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, Self::Error> {
        if let Some(code) = self.codes.get(&code_hash) {
            return Ok(code.clone());
        }
        let code = self.base.code_by_hash_ref(code_hash)?;
        self.codes.insert(code_hash, code.clone());
        Ok(code)
    }

    fn storage(&mut self, address: Address, index: U256) -> Result<U256, Self::Error> {
        if let Some(slots) = self.changes.storage.get(&address) {
            if let Some(v) = slots.get(&index) {
                return Ok(*v);
            }
        }
        if self.changes.wiped.contains(&address) {
            return Ok(U256::ZERO);
        }
        self.base.storage_ref(address, index)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, Self::Error> {
        self.base.block_hash_ref(number)
    }
}

impl<D: DatabaseRef> DatabaseCommit for PendingState<D> {
    fn commit(&mut self, changes: AddressMap<Account>) {
        for (address, account) in changes {
            self.commit_account(address, account);
        }
    }
}
