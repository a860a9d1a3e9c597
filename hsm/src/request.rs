//! The structured signing request and the exact bytes each kind of message signs.
//!
//! Frozen format (version 1), all integers big-endian, 76 bytes in all:
//!
//! | bytes | field |
//! |---|---|
//! | 16 | tag: ASCII name of the message kind, zero-padded |
//! | 8 | chain id |
//! | 4 | shard |
//! | 8 | block number |
//! | 8 | view |
//! | 32 | block hash (for view change: [`view_change_lock`] of the signer's lock, or zero; for a VRF: the parent hash) |
//!
//! A tag per kind keeps a prepare vote from ever counting as a commit; chain id and shard keep
//! a signature from being replayed on another network or shard.

/// Kinds of signed consensus messages. The discriminant is stable (it is stored by the guard).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum MsgKind {
    Prepare = 1,
    Commit = 2,
    ViewChange = 3,
    NewView = 4,
    /// The leader's VRF proof for a block: a signature over its parent hash at (number, view).
    Vrf = 5,
}

impl MsgKind {
    pub fn tag(self) -> [u8; 16] {
        let name: &[u8] = match self {
            MsgKind::Prepare => b"harmony/prepare",
            MsgKind::Commit => b"harmony/commit",
            MsgKind::ViewChange => b"harmony/viewchg",
            MsgKind::NewView => b"harmony/newview",
            MsgKind::Vrf => b"harmony/vrf",
        };
        let mut tag = [0u8; 16];
        tag[..name.len()].copy_from_slice(name);
        tag
    }

    /// Lower-case name for logs and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            MsgKind::Prepare => "prepare",
            MsgKind::Commit => "commit",
            MsgKind::ViewChange => "viewchange",
            MsgKind::NewView => "newview",
            MsgKind::Vrf => "vrf",
        }
    }

    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Prepare,
            2 => Self::Commit,
            3 => Self::ViewChange,
            4 => Self::NewView,
            5 => Self::Vrf,
            _ => return None,
        })
    }
}

/// What to sign, by meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignRequest {
    pub kind: MsgKind,
    pub chain_id: u64,
    pub shard: u32,
    pub number: u64,
    pub view: u64,
    pub hash: [u8; 32],
}

pub const PAYLOAD_BYTES: usize = 16 + 8 + 4 + 8 + 8 + 32;

/// The bytes a key signs for `req`. Verifiers rebuild them the same way.
pub fn payload(req: &SignRequest) -> [u8; PAYLOAD_BYTES] {
    let mut out = [0u8; PAYLOAD_BYTES];
    out[..16].copy_from_slice(&req.kind.tag());
    out[16..24].copy_from_slice(&req.chain_id.to_be_bytes());
    out[24..28].copy_from_slice(&req.shard.to_be_bytes());
    out[28..36].copy_from_slice(&req.number.to_be_bytes());
    out[36..44].copy_from_slice(&req.view.to_be_bytes());
    out[44..].copy_from_slice(&req.hash);
    out
}

/// Domain tag of [`view_change_lock`].
const LOCK_TAG: &[u8; 16] = b"harmony/vc-lock\0";

/// What a view change signs in its hash field: the signer's lock, bound to the view of the
/// prepare certificate behind it, so nobody can pair the vote with an older certificate for
/// the same block (ADR 0010). `sha256(tag ‖ prepared hash ‖ certificate view)`; zero when the
/// signer holds no lock (`hash` zero).
pub fn view_change_lock(hash: [u8; 32], cert_view: u64) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    if hash == [0; 32] {
        return [0; 32];
    }
    let mut h = Sha256::new();
    h.update(LOCK_TAG);
    h.update(hash);
    h.update(cert_view.to_be_bytes());
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(kind: MsgKind) -> SignRequest {
        SignRequest {
            kind,
            chain_id: 7,
            shard: 0,
            number: 5,
            view: 9,
            hash: [0xab; 32],
        }
    }

    #[test]
    fn layout_is_frozen() {
        let p = payload(&req(MsgKind::Commit));
        assert_eq!(&p[..14], b"harmony/commit");
        assert_eq!(&p[14..16], &[0, 0]);
        assert_eq!(&p[16..24], &7u64.to_be_bytes());
        assert_eq!(&p[28..36], &5u64.to_be_bytes());
        assert_eq!(&p[36..44], &9u64.to_be_bytes());
        assert_eq!(&p[44..], &[0xab; 32]);
    }

    #[test]
    fn every_field_changes_the_payload() {
        let base = req(MsgKind::Prepare);
        let variants = [
            SignRequest {
                kind: MsgKind::Commit,
                ..base
            },
            SignRequest {
                chain_id: 8,
                ..base
            },
            SignRequest { shard: 1, ..base },
            SignRequest { number: 6, ..base },
            SignRequest { view: 10, ..base },
            SignRequest {
                hash: [0xac; 32],
                ..base
            },
        ];
        for v in variants {
            assert_ne!(payload(&v), payload(&base), "{v:?}");
        }
    }

    #[test]
    fn view_change_lock_binds_hash_and_view() {
        assert_eq!(view_change_lock([0; 32], 5), [0; 32]);
        let a = view_change_lock([1; 32], 3);
        assert_ne!(a, [0; 32]);
        assert_ne!(a, [1; 32]);
        assert_ne!(a, view_change_lock([1; 32], 1));
        assert_ne!(a, view_change_lock([2; 32], 3));
        assert_eq!(a, view_change_lock([1; 32], 3));
    }

    #[test]
    fn kind_roundtrip() {
        for k in [
            MsgKind::Prepare,
            MsgKind::Commit,
            MsgKind::ViewChange,
            MsgKind::NewView,
        ] {
            assert_eq!(MsgKind::from_u8(k as u8), Some(k));
        }
        assert_eq!(MsgKind::from_u8(0), None);
    }
}
