//! Running the verification jobs the state machine asks for, the same way everywhere (the
//! appliance, the simulation, the test cluster): the caller decides only where it runs.

use crate::fbft::{Input, QuorumJob, VerifyJob};
use accel::{Engine, QuorumPolicy, WireVote};

/// Verifies a [`VerifyJob`] (certificates and single votes, as aggregate key and signature).
pub fn run_verify_job(engine: &Engine, job: &VerifyJob) -> Input {
    Input::Verified {
        id: job.id,
        valid: engine.verify_votes(&job.payload, &job.votes),
    }
}

/// Verifies a [`QuorumJob`] from wire bytes against its committee's member keys: every vote
/// decoded with its curve check, the batch checked as one aggregate, bad votes isolated by
/// bisection (ADR 0004).
pub fn run_quorum_job(engine: &Engine, job: &QuorumJob) -> Input {
    let votes: Vec<WireVote<'_>> = job
        .votes
        .iter()
        .map(|(signer, signature)| WireVote {
            signer: *signer,
            signature,
        })
        .collect();
    let outcome = engine.verify_quorum(
        &job.payload,
        &job.committee.member_keys,
        &votes,
        QuorumPolicy::default(),
    );
    Input::QuorumVerified {
        id: job.id,
        valid: outcome.valid(),
        aggregate: outcome.aggregate,
    }
}
