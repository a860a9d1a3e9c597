//! What a peer did wrong, by kind, so peer scoring can weigh it (a signature that fails to
//! verify cost a pairing; two proposals for one round prove a Byzantine leader).

/// The kind of a peer's fault. The detail for logs travels beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// Bytes that do not decode, or a message outside its size limits.
    Malformed,
    /// A well-formed message against a protocol rule: not from the expected leader, a bitmap
    /// that is not the sender's keys, an implausible view, a reply that was not asked for.
    Protocol,
    /// A vote, certificate or proof whose signature does not verify.
    BadSignature,
    /// A block (proposal or sync) that breaks the header rules or does not re-execute.
    InvalidBlock,
    /// Two different proposals from one leader in one round.
    Equivocation,
}

impl FaultKind {
    /// Stable lowercase name, for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Protocol => "protocol",
            Self::BadSignature => "bad_signature",
            Self::InvalidBlock => "invalid_block",
            Self::Equivocation => "equivocation",
        }
    }
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
