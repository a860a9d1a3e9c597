//! Who this node talks to: every peer by its Ed25519 transport key, with the index the mesh
//! and the peer book use for it (assigned once, never reused while the process runs).
//!
//! Three sources: the chain spec's validators (indices `0..n`, in spec order), observers the
//! operator lists (`network.observers`), and validators registered on chain (transport key
//! and endpoint of their staking record), added as they register. A peer that is not in the
//! epoch's committee syncs blocks and relays transactions; consensus ignores its votes.

use crate::net::PeerInfo;
use std::collections::HashMap;
use std::net::SocketAddr;

/// Where a peer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRole {
    /// A validator of the chain spec (an internal member of every committee).
    Genesis,
    /// Listed by this node's operator.
    Observer,
    /// Registered by a CreateValidator (or moved by an EditValidator) on chain.
    Registered,
}

#[derive(Debug, Clone)]
struct Entry {
    key: [u8; 32],
    endpoint: SocketAddr,
    role: PeerRole,
}

/// The directory as the loop and RPC share it.
pub type SharedDirectory = std::sync::Arc<std::sync::Mutex<PeerDirectory>>;

#[derive(Debug, Clone, Default)]
pub struct PeerDirectory {
    entries: Vec<Entry>,
    by_key: HashMap<[u8; 32], usize>,
}

impl PeerDirectory {
    /// The spec's validators, then the operator's observers (a key listed twice keeps its
    /// first entry).
    pub fn new(spec: &state::ChainSpec, observers: &[(SocketAddr, [u8; 32])]) -> Self {
        let mut d = Self::default();
        for v in &spec.validators {
            if let Ok(key) = state::spec::parse_hex::<32>(&v.transport_key) {
                d.upsert(key, v.endpoint, PeerRole::Genesis);
            }
        }
        for (endpoint, key) in observers {
            d.upsert(*key, *endpoint, PeerRole::Observer);
        }
        d
    }

    /// Adds a peer, or moves a known one to `endpoint`; true when something changed. A
    /// peer's role is the first one it was known by (the operator's word over the chain's).
    pub fn upsert(&mut self, key: [u8; 32], endpoint: SocketAddr, role: PeerRole) -> bool {
        match self.by_key.get(&key) {
            Some(&i) => {
                let e = &mut self.entries[i];
                if e.endpoint == endpoint || e.role != PeerRole::Registered {
                    return false;
                }
                e.endpoint = endpoint;
                true
            }
            None => {
                self.by_key.insert(key, self.entries.len());
                self.entries.push(Entry {
                    key,
                    endpoint,
                    role,
                });
                true
            }
        }
    }

    /// Adds or moves every validator registered in `staking` whose endpoint is an
    /// `ip:port`; true when the peer set changed. Other endpoints are skipped (logged once
    /// per refresh at debug): the mesh dials addresses, and DNS would block the loop.
    pub fn register_validators(&mut self, staking: &state::staking::StakingState) -> bool {
        let mut changed = false;
        for v in staking.validators() {
            let key = v.transport_key.0;
            if key == [0; 32] {
                continue;
            }
            match v.endpoint.parse::<SocketAddr>() {
                Ok(endpoint) => changed |= self.upsert(key, endpoint, PeerRole::Registered),
                Err(_) => tracing::debug!(
                    target: "net",
                    validator = %v.address,
                    endpoint = %v.endpoint,
                    "registered endpoint is not ip:port; not dialled"
                ),
            }
        }
        changed
    }

    pub fn index_of(&self, key: &[u8; 32]) -> Option<usize> {
        self.by_key.get(key).copied()
    }

    pub fn key_of(&self, index: usize) -> Option<[u8; 32]> {
        self.entries.get(index).map(|e| e.key)
    }

    pub fn role_of(&self, index: usize) -> Option<PeerRole> {
        self.entries.get(index).map(|e| e.role)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The whole set, as the mesh takes it.
    pub fn peer_infos(&self) -> Vec<PeerInfo> {
        self.entries
            .iter()
            .enumerate()
            .map(|(index, e)| PeerInfo {
                index,
                endpoint: e.endpoint,
                transport_key: e.key,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn indices_are_stable_and_the_operator_wins() {
        let mut d = PeerDirectory::default();
        assert!(d.upsert([1; 32], addr(1), PeerRole::Genesis));
        assert!(d.upsert([2; 32], addr(2), PeerRole::Observer));
        assert!(d.upsert([3; 32], addr(3), PeerRole::Registered));
        assert!(
            !d.upsert([3; 32], addr(3), PeerRole::Registered),
            "unchanged"
        );
        assert!(d.upsert([3; 32], addr(30), PeerRole::Registered), "moved");
        assert_eq!(d.index_of(&[3; 32]), Some(2));
        assert_eq!(d.peer_infos()[2].endpoint, addr(30));
        // The chain cannot move a peer the spec or the operator placed.
        assert!(!d.upsert([1; 32], addr(99), PeerRole::Registered));
        assert!(!d.upsert([2; 32], addr(99), PeerRole::Registered));
        assert_eq!(d.peer_infos()[1].endpoint, addr(2));
        assert_eq!(d.key_of(1), Some([2; 32]));
        assert_eq!(d.role_of(2), Some(PeerRole::Registered));
        assert_eq!(d.len(), 3);
    }
}
