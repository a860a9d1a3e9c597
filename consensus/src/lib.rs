//! FBFT consensus as a sans-IO state machine.
//!
//! [`Fbft`] is a value the caller steps with [`Input`]s; it answers with [`Effect`]s that the
//! caller executes in order (a sign or persist completes before any later send). It owns no
//! socket, thread, clock or file: the appliance turns effects into QUIC messages, signer calls,
//! verification jobs and disk writes, and the simulation turns them into a virtual network.
#![forbid(unsafe_code)]

pub mod certificate;
pub mod committee;
pub mod fault;
pub mod fbft;
pub mod jobs;
pub mod message;
pub mod rules;
pub mod safety;

pub use certificate::{
    certificate_vote, verify_commit_certificate, verify_commit_certificates, CertificateError,
};
pub use committee::{Committee, CommitteeError, CommitteeKey, Member};
pub use fault::FaultKind;
pub use fbft::{
    Committees, Config, Effect, Fbft, Input, PeerId, QuorumJob, Timer, Tip, VerifyJob,
    ViewChangeReason,
};
pub use jobs::{run_quorum_job, run_verify_job};
pub use message::{
    Announce, CompactAnnounce, CompactAnnounceError, Message, MessageError, NewView, PreparedProof,
    Status, SyncRequest, SyncResponse, TxBatch, TxRequest, ViewChange, ViewChangeGroup, Vote,
};
pub use rules::{Parent, ProposalError};
pub use safety::{SafetyRecord, SignedVote};
