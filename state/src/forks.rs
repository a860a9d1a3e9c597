//! The fork schedule: named protocol changes and the epoch each takes effect in (chain spec
//! `[forks]`, name = first epoch). A spec naming a fork this node does not know is refused, so
//! a node never runs a network whose rules it only partly implements.

/// Priority fees go to the block's leader (before: the whole fee is burnt).
pub const PRIORITY_FEE_TO_LEADER: &str = "priority_fee_to_leader";
/// Header version 2: staking transactions root, staking state root, the elected committee at
/// an epoch's last block, slashing records (ADR 0001's versioning rule).
pub const HEADER_V2: &str = "header_v2";
/// Staking transactions and elections (needs `header_v2` at or before it).
pub const STAKING: &str = "staking";

/// The leader's VRF in every header (β ‖ π, 128 bytes); PREVRANDAO becomes β.
pub const VRF: &str = "vrf";

/// Block rewards to the signers of every certified block, signing counts and the
/// availability check at the election block (needs `staking` at or before it).
pub const REWARDS: &str = "rewards";
/// Base fees paid to the configured collectors instead of burnt (`economics.fee_collectors`).
pub const FEE_SPLIT: &str = "fee_split";
/// HIP-30: the minimum commission (`economics.hip30_min_commission`) and the emission split
/// (`economics.hip30_emission`).
pub const HIP30: &str = "hip30";

/// The epoch VDF: its proof in the header of every epoch's last block, over the VRFs of the
/// epoch's first half; its output orders the next committee (needs `vrf` and `staking`).
pub const VDF: &str = "vdf";

/// Every fork this node implements.
pub const KNOWN: &[&str] = &[
    PRIORITY_FEE_TO_LEADER,
    HEADER_V2,
    STAKING,
    VRF,
    REWARDS,
    FEE_SPLIT,
    HIP30,
    VDF,
];

/// The header version blocks of `epoch` carry under `forks`.
pub fn header_version(forks: &std::collections::BTreeMap<String, u64>, epoch: u64) -> u8 {
    if active(forks, HEADER_V2, epoch) {
        2
    } else {
        1
    }
}

/// Whether fork `name` is active in `epoch`.
pub fn active(forks: &std::collections::BTreeMap<String, u64>, name: &str, epoch: u64) -> bool {
    forks.get(name).is_some_and(|&from| epoch >= from)
}
