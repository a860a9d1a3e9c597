//! QUIC mesh between validators.
//!
//! Every validator has an Ed25519 **transport identity** ([`identity`]); the chain spec pins
//! each committee member's transport key. Validators talk QUIC (quinn) with TLS 1.3 only
//! (rustls with only the *ring* provider), ALPN [`ALPN`] (`harmony-fbft/1`), and mandatory
//! mutual authentication by pinned key ([`verify`]): an unknown key, a certificate for another
//! chain spec, or a handshake signed by a key other than the certificate's is refused during
//! the handshake. Each message travels alone on one unidirectional stream, framed by
//! [`frame`]. [`mesh`] ties it together: [`Mesh::start`] returns a [`MeshHandle`] to send
//! and a channel of [`Inbound`] messages.
//!
//! # Frozen formats (changing any of them breaks the network)
//!
//! * **ALPN**: `harmony-fbft/1`.
//! * **Certificate**: X.509 v3, self-signed with Ed25519 by the transport key, whose only
//!   subject alternative name is the DNS name
//!   `<hex(spec_hash[0..16])>.<hex(spec_hash[16..32])>.spec.harmony` (lower-case hex); see
//!   [`identity`] for every field. Peers check the key (pinned) and the name (same network),
//!   not dates or chains.
//! * **Frame**: `[version: u8][len: u32 big-endian][payload: len bytes]`, the whole stream;
//!   [`WIRE_VERSION`] = 2 is sent, [`MIN_WIRE_VERSION`]`..=`[`WIRE_VERSION`] is accepted;
//!   `len` ≤ `max_message_bytes` (default [`MAX_MESSAGE_BYTES`] = 8 MiB). See [`frame`].
//! * **Key file**: PKCS#8 DER of the Ed25519 key, mode `0600`.
//! * **QUIC codes**: application close 0 = shutdown, 1 = peer not identified; stream stop
//!   code 1 = invalid frame.
//!
//! Logs use the target `harmony::net`.

pub mod frame;
pub mod identity;
pub mod mesh;
pub mod raw;
pub mod verify;

pub use frame::{
    decode_frame, decode_frame_with_limit, encode_frame, FrameError, MAX_MESSAGE_BYTES,
    MIN_WIRE_VERSION, WIRE_VERSION,
};
pub use identity::{spec_dns_name, IdentityError, TransportIdentity};
pub use mesh::{
    Inbound, Mesh, MeshConfig, MeshHandle, MeshStats, NetError, PeerInfo, PeerReport, Traffic, ALPN,
};
pub use verify::{PinRejection, PinnedClientVerifier, PinnedServerVerifier};

#[cfg(test)]
mod tests;
