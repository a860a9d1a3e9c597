//! The EIP-1559 base fee schedule: a header field, so a primitive every layer agrees on
//! (`block::next_base_fee_after` applies it to a parent header).

/// The lowest base fee (1 gwei): the EIP-1559 adjustment never goes below it.
pub const MIN_BASE_FEE: u64 = 1_000_000_000;

/// EIP-1559 base fee of the block after `parent` (target: half the gas limit), never below
/// [`MIN_BASE_FEE`].
pub fn next_base_fee(parent_gas_used: u64, parent_gas_limit: u64, parent_base_fee: u64) -> u64 {
    let next = alloy_eips::calc_next_block_base_fee(
        parent_gas_used,
        parent_gas_limit,
        parent_base_fee,
        alloy_eips::eip1559::BaseFeeParams::ethereum(),
    );
    next.max(MIN_BASE_FEE)
}
