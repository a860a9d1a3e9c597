//! The committee: validators, their keys, voting power, quorum and leader rotation.

use accel::{AggregatePublicKey, PublicKey};
use alloy_primitives::Address;
use state::{spec::parse_hex, Bitmap, ChainSpec};

/// One BLS key of the committee, in bitmap order.
#[derive(Debug, Clone)]
pub struct CommitteeKey {
    pub public_key: PublicKey,
    /// Index of the validator that owns it.
    pub member: usize,
    /// Voting power carried by this key.
    pub power: u64,
}

/// One validator.
#[derive(Debug, Clone)]
pub struct Member {
    pub address: Address,
    /// Committee key indices owned by this validator (contiguous).
    pub keys: std::ops::Range<usize>,
    pub power: u64,
    pub transport_key: [u8; 32],
}

/// Voting power of a whole committee after an election (internal and elected shares of it).
pub const POWER_SCALE: u64 = 1_000_000_000_000;

/// Commit bitmaps the leader rotation looks at: a key absent from all of the last this many
/// is skipped as offline.
pub const RECENT_BITMAPS: usize = 4;

/// Bound on view changes walked when computing a leader.
pub const MAX_LEADER_STEPS: u64 = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum CommitteeError {
    #[error("committee: {0}")]
    Invalid(String),
}

/// Validated committee, built once per epoch; keys are decompressed and checked here only.
#[derive(Debug, Clone)]
pub struct Committee {
    pub keys: Vec<CommitteeKey>,
    pub members: Vec<Member>,
    /// Each member's keys summed: the key a member's vote (all its keys) verifies under, in
    /// member order, as `accel::Engine::verify_quorum` takes it.
    pub member_keys: Vec<PublicKey>,
    pub total_power: u64,
    pub blocks_per_leader: u64,
    /// Transport key → member index.
    by_transport: std::collections::HashMap<[u8; 32], usize>,
}

impl Committee {
    /// Builds the committee of a (validated) chain spec. A validator's voting power is split
    /// evenly over its keys, the remainder to its first key, so the sum is exact.
    pub fn from_spec(spec: &ChainSpec) -> Result<Self, CommitteeError> {
        let mut keys = Vec::new();
        let mut members = Vec::new();
        for (i, v) in spec.validators.iter().enumerate() {
            let start = keys.len();
            let n = v.bls_keys.len() as u64;
            if n == 0 {
                return Err(CommitteeError::Invalid(format!("validator {i} has no key")));
            }
            for (j, k) in v.bls_keys.iter().enumerate() {
                let bytes = parse_hex::<48>(&k.public_key).map_err(CommitteeError::Invalid)?;
                let public_key = PublicKey::from_bytes(&bytes)
                    .map_err(|e| CommitteeError::Invalid(format!("validator {i} key {j}: {e}")))?;
                let power = v.voting_power / n + if j == 0 { v.voting_power % n } else { 0 };
                keys.push(CommitteeKey {
                    public_key,
                    member: i,
                    power,
                });
            }
            let transport_key =
                parse_hex::<32>(&v.transport_key).map_err(CommitteeError::Invalid)?;
            members.push(Member {
                address: v.address,
                keys: start..keys.len(),
                power: v.voting_power,
                transport_key,
            });
        }
        Self::assemble(keys, members, spec.blocks_per_leader)
    }

    /// The committee of the epoch after an election (Harmony's shard committee): the
    /// `internal` (foundation) members of the chain spec first, unchanged, then the validators
    /// the election chose (the `committee` of an epoch's last header) in the seat order of
    /// `state::staking::seats` (by address, or by the epoch's VDF output under the `vdf`
    /// fork), each with its elected keys in rank order. The internal keys share `internal_share` of the
    /// voting power in proportion to their spec power; the elected keys share the rest by
    /// effective stake (each at least 1 unit). Transport keys come from the staking records in
    /// `staking`, which must hold every elected validator.
    ///
    /// An election that chose nobody leaves the internal committee as it is. An elected key
    /// that is also an internal key is left out (a key signs once). The composition depends
    /// only on the spec and the election, never on staking records that change later; those
    /// give transport keys only (a key two members claim names the first).
    pub fn after_election(
        internal: &Committee,
        elected: &state::staking::Elected,
        staking: &state::staking::StakingState,
        internal_share: state::staking::Dec,
    ) -> Result<Self, CommitteeError> {
        use alloy_primitives::U256;
        let internal_keys: Vec<state::staking::BlsKey> = internal
            .keys
            .iter()
            .map(|k| state::staking::BlsKey::from(k.public_key.to_bytes()))
            .collect();
        // The signing order is the state crate's (rewards read certificates with it): elected
        // keys grouped by validator in address order, after the internal ones.
        let mut by_validator: Vec<(Address, Vec<state::staking::Seat>)> = Vec::new();
        for seat in elected.seats(&internal_keys) {
            let Some(address) = seat.validator else {
                continue;
            };
            match by_validator.last_mut() {
                Some((a, seats)) if *a == address => seats.push(seat),
                _ => by_validator.push((address, vec![seat])),
            }
        }
        if by_validator.is_empty() {
            return Ok(internal.clone());
        }
        let scale = U256::from(POWER_SCALE);
        let share = internal_share.min(state::staking::Dec::ONE);
        let internal_total = share.mul_amount(scale);
        let external_total = scale - internal_total;
        let mut keys = Vec::with_capacity(internal.keys.len() + elected.slots.len());
        let mut members = Vec::with_capacity(internal.members.len() + by_validator.len());
        let spec_total = U256::from(internal.total_power.max(1));
        for m in &internal.members {
            let start = keys.len();
            let mut power = 0u64;
            for k in &internal.keys[m.keys.clone()] {
                let p = u64::try_from(U256::from(k.power) * internal_total / spec_total)
                    .unwrap_or(POWER_SCALE)
                    .max(1);
                power += p;
                keys.push(CommitteeKey {
                    member: members.len(),
                    power: p,
                    ..k.clone()
                });
            }
            members.push(Member {
                keys: start..keys.len(),
                power,
                ..m.clone()
            });
        }
        let stake_total: U256 = by_validator
            .iter()
            .flat_map(|(_, seats)| seats)
            .map(|s| s.effective_stake)
            .sum::<U256>()
            .max(U256::from(1));
        for (address, slots) in by_validator {
            let record = staking.validator(&address).ok_or_else(|| {
                CommitteeError::Invalid(format!("elected validator {address} has no record"))
            })?;
            let start = keys.len();
            let mut power = 0u64;
            for s in slots {
                let public_key = PublicKey::from_bytes(s.key.as_slice()).map_err(|e| {
                    CommitteeError::Invalid(format!("elected key {} of {address}: {e}", s.key))
                })?;
                let p = u64::try_from(s.effective_stake * external_total / stake_total)
                    .unwrap_or(POWER_SCALE)
                    .max(1);
                power += p;
                keys.push(CommitteeKey {
                    public_key,
                    member: members.len(),
                    power: p,
                });
            }
            members.push(Member {
                address,
                keys: start..keys.len(),
                power,
                transport_key: record.transport_key.0,
            });
        }
        Self::assemble(keys, members, internal.blocks_per_leader)
    }

    fn assemble(
        keys: Vec<CommitteeKey>,
        members: Vec<Member>,
        blocks_per_leader: u64,
    ) -> Result<Self, CommitteeError> {
        let total_power = members.iter().map(|m| m.power).sum();
        let member_keys = members
            .iter()
            .map(|m| {
                AggregatePublicKey::aggregate(keys[m.keys.clone()].iter().map(|k| &k.public_key))
                    .map(|a| a.to_public_key())
                    .map_err(|e| CommitteeError::Invalid(format!("member keys: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut by_transport = std::collections::HashMap::new();
        for (i, m) in members.iter().enumerate() {
            by_transport.entry(m.transport_key).or_insert(i);
        }
        Ok(Self {
            keys,
            members,
            member_keys,
            total_power,
            blocks_per_leader,
            by_transport,
        })
    }

    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Voting power of the keys in `bitmap`.
    pub fn power_of(&self, bitmap: &Bitmap) -> u64 {
        bitmap
            .ones()
            .filter_map(|i| self.keys.get(i))
            .map(|k| k.power)
            .sum()
    }

    /// Strictly more than 2/3 of the total voting power.
    pub fn is_quorum(&self, power: u64) -> bool {
        (power as u128) * 3 > (self.total_power as u128) * 2
    }

    /// Bitmap of all keys of one member.
    pub fn member_bitmap(&self, member: usize) -> Bitmap {
        let mut b = Bitmap::with_len(self.key_count());
        for i in self.members[member].keys.clone() {
            b.set(i);
        }
        b
    }

    /// True when every key in `bitmap` belongs to `member` and there is at least one.
    pub fn bitmap_owned_by(&self, bitmap: &Bitmap, member: usize) -> bool {
        let range = &self.members[member].keys;
        bitmap.count() > 0 && bitmap.ones().all(|i| range.contains(&i))
    }

    /// Aggregate public key of the keys in `bitmap` (None when empty or out of range).
    pub fn aggregate_key(&self, bitmap: &Bitmap) -> Option<PublicKey> {
        let keys: Vec<&PublicKey> = bitmap
            .ones()
            .map(|i| self.keys.get(i).map(|k| &k.public_key))
            .collect::<Option<_>>()?;
        AggregatePublicKey::aggregate(keys)
            .ok()
            .map(|a| a.to_public_key())
    }

    /// Leader of round (`number`, `view`), where `first_view` is the view the height started in
    /// and `recent` holds the commit bitmaps of the last blocks (newest last, from headers).
    ///
    /// Keys take turns of `blocks_per_leader` blocks in committee order (Harmony HET-8). Each
    /// view change moves to the next key that belongs to a *different* validator (HET-13), so a
    /// validator with many keys that goes down costs one view change, not one per key. With four
    /// recent bitmaps known, keys absent from all of them are skipped: they are offline.
    pub fn leader(&self, number: u64, view: u64, first_view: u64, recent: &[Bitmap]) -> usize {
        self.keys[self.leader_key(number, view, first_view, recent)].member
    }

    /// Committee key index of the leader; see [`Committee::leader`].
    pub fn leader_key(&self, number: u64, view: u64, first_view: u64, recent: &[Bitmap]) -> usize {
        let k = self.keys.len();
        let absent = |i: usize| recent.len() >= RECENT_BITMAPS && recent.iter().all(|b| !b.get(i));
        let turn = number.saturating_sub(1) / self.blocks_per_leader;
        let mut idx = (turn % k as u64) as usize;
        if let Some(j) = (0..k).map(|d| (idx + d) % k).find(|&j| !absent(j)) {
            idx = j;
        }
        // View numbers only grow through timeouts with back-off and messages more than
        // MAX_VIEW_AHEAD views ahead are ignored, so this loop stays short.
        let steps = view.saturating_sub(first_view).min(MAX_LEADER_STEPS);
        for _ in 0..steps {
            let member = self.keys[idx].member;
            idx = (1..=k)
                .map(|d| (idx + d) % k)
                .find(|&j| self.keys[j].member != member && !absent(j))
                .or_else(|| {
                    (1..=k)
                        .map(|d| (idx + d) % k)
                        .find(|&j| self.keys[j].member != member)
                })
                .unwrap_or(idx);
        }
        idx
    }

    pub fn member_by_transport_key(&self, key: &[u8; 32]) -> Option<usize> {
        self.by_transport.get(key).copied()
    }

    /// The member whose keys are all among `mine` (a signer's keys), with the position in
    /// `mine` of each of its committee keys, in committee order. None when no member is
    /// wholly covered: this node observes.
    pub fn member_signing_with(&self, mine: &[PublicKey]) -> Option<(usize, Vec<usize>)> {
        self.members.iter().enumerate().find_map(|(m, member)| {
            let positions: Option<Vec<usize>> = self.keys[member.keys.clone()]
                .iter()
                .map(|k| mine.iter().position(|p| *p == k.public_key))
                .collect();
            positions.map(|p| (m, p))
        })
    }

    /// Whether any of `mine` is a key of this committee.
    pub fn holds_any(&self, mine: &[PublicKey]) -> bool {
        self.keys.iter().any(|k| mine.contains(&k.public_key))
    }
}
