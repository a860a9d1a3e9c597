//! Wire framing: one message per unidirectional QUIC stream.
//!
//! # Frozen format
//!
//! The whole content of a stream, from its first byte to its FIN, is one frame:
//!
//! ```text
//! +---------+----------------------+------------------+
//! | version | length (u32, BE)     | payload          |
//! | 1 byte  | 4 bytes              | `length` bytes   |
//! +---------+----------------------+------------------+
//! ```
//!
//! * `version` is the wire version of the payload encoding. A node sends [`WIRE_VERSION`] and
//!   accepts [`MIN_WIRE_VERSION`]`..=`[`WIRE_VERSION`], so a rolling upgrade can run versions N
//!   and N-1 side by side (when bumping `WIRE_VERSION` to N, set `MIN_WIRE_VERSION` to N-1).
//!   The version travels to the consumer in [`Inbound::version`](super::Inbound::version).
//! * `length` must equal the number of payload bytes that follow; a stream with fewer
//!   (truncated) or more (trailing data) bytes is invalid.
//! * `length` must not exceed the mesh's `max_message_bytes` (default [`MAX_MESSAGE_BYTES`]).
//!
//! Invalid frames are dropped whole; nothing in this module panics on malformed input.

use std::time::Duration;

use tokio::sync::Semaphore;

/// The wire version this node sends.
pub const WIRE_VERSION: u8 = 2;
/// The oldest wire version this node still accepts.
pub const MIN_WIRE_VERSION: u8 = 2;
/// Default cap on a frame's payload: 8 MiB.
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;
/// Bytes before the payload: version and length.
pub const HEADER_LEN: usize = 5;

/// Why a frame is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// No bytes at all.
    #[error("empty frame")]
    Empty,
    /// Fewer than [`HEADER_LEN`] bytes.
    #[error("truncated header: {got} of {HEADER_LEN} bytes")]
    TruncatedHeader {
        /// Bytes present.
        got: usize,
    },
    /// A version outside `MIN_WIRE_VERSION..=WIRE_VERSION`.
    #[error("unknown wire version {0} (accepted {MIN_WIRE_VERSION}..={WIRE_VERSION})")]
    UnknownVersion(u8),
    /// The declared payload length is above the limit.
    #[error("payload of {declared} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Length in the header.
        declared: usize,
        /// The limit.
        max: usize,
    },
    /// The payload is shorter or longer than the header says.
    #[error("length mismatch: header declares {declared} payload bytes, frame carries {actual}")]
    LengthMismatch {
        /// Length in the header.
        declared: usize,
        /// Payload bytes present.
        actual: usize,
    },
    /// A stream carries more bytes than its header declares (how many more is not read).
    #[error(
        "trailing data: stream carries more than the {declared} payload bytes its header declares"
    )]
    TrailingData {
        /// Length in the header.
        declared: usize,
    },
}

/// Encodes one frame.
///
/// # Panics
///
/// If `payload` is longer than `u32::MAX` bytes (the mesh refuses such payloads, and anything
/// above its `max_message_bytes`, before encoding).
pub fn encode_frame(version: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&encode_header(version, payload.len()));
    out.extend_from_slice(payload);
    out
}

/// Encodes the header of a frame whose payload is `len` bytes long.
///
/// # Panics
///
/// If `len` exceeds `u32::MAX`.
pub fn encode_header(version: u8, len: usize) -> [u8; HEADER_LEN] {
    let len = u32::try_from(len).expect("frame payload longer than u32::MAX bytes");
    let l = len.to_be_bytes();
    [version, l[0], l[1], l[2], l[3]]
}

/// Checks a frame header; returns the version and the declared payload length.
pub fn decode_header(header: &[u8; HEADER_LEN], max: usize) -> Result<(u8, usize), FrameError> {
    let version = header[0];
    if !(MIN_WIRE_VERSION..=WIRE_VERSION).contains(&version) {
        return Err(FrameError::UnknownVersion(version));
    }
    let declared = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if declared > max {
        return Err(FrameError::TooLarge { declared, max });
    }
    Ok((version, declared))
}

/// Decodes a whole frame with the default limit [`MAX_MESSAGE_BYTES`].
pub fn decode_frame(bytes: &[u8]) -> Result<(u8, &[u8]), FrameError> {
    decode_frame_with_limit(bytes, MAX_MESSAGE_BYTES)
}

/// Decodes a whole frame whose payload may be at most `max` bytes.
pub fn decode_frame_with_limit(bytes: &[u8], max: usize) -> Result<(u8, &[u8]), FrameError> {
    if bytes.is_empty() {
        return Err(FrameError::Empty);
    }
    let Some((header, payload)) = bytes.split_first_chunk::<HEADER_LEN>() else {
        // Report a bad version before a short header: it is the more telling error.
        if !(MIN_WIRE_VERSION..=WIRE_VERSION).contains(&bytes[0]) {
            return Err(FrameError::UnknownVersion(bytes[0]));
        }
        return Err(FrameError::TruncatedHeader { got: bytes.len() });
    };
    let (version, declared) = decode_header(header, max)?;
    if payload.len() != declared {
        return Err(FrameError::LengthMismatch {
            declared,
            actual: payload.len(),
        });
    }
    Ok((version, payload))
}

/// Why reading a frame from a stream failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadFrameError {
    /// The peer sent an invalid frame.
    #[error(transparent)]
    Invalid(#[from] FrameError),
    /// The stream or connection failed (reset, connection lost, ...): not the frame's fault.
    #[error("stream error: {0}")]
    Stream(String),
    /// The stream was not finished within the read timeout.
    #[error("frame not complete within {0:?}")]
    TimedOut(Duration),
}

/// Reads one frame (the whole stream) from `recv`, holding at most `max + HEADER_LEN` bytes,
/// and fails with [`ReadFrameError::TimedOut`] if the stream is not finished within `timeout`.
///
/// The header is read and checked first, so an oversized or wrong-version frame is refused
/// before its payload is read. Before reading a payload of `n` bytes, `n` permits are taken from
/// `budget` (if given; it must hold at least `max` permits); they are returned with the
/// payload (as a [`FramePermit`]) and released when that is dropped, so the memory held by
/// frames being read is bounded by the semaphore's size.
pub async fn read_frame<'a>(
    recv: &mut quinn::RecvStream,
    max: usize,
    budget: Option<&'a Semaphore>,
    timeout: Duration,
) -> Result<(u8, Vec<u8>, FramePermit<'a>), ReadFrameError> {
    tokio::time::timeout(timeout, read_frame_inner(recv, max, budget))
        .await
        .unwrap_or(Err(ReadFrameError::TimedOut(timeout)))
}

async fn read_frame_inner<'a>(
    recv: &mut quinn::RecvStream,
    max: usize,
    budget: Option<&'a Semaphore>,
) -> Result<(u8, Vec<u8>, FramePermit<'a>), ReadFrameError> {
    let mut header = [0u8; HEADER_LEN];
    match recv.read_exact(&mut header).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Err(FrameError::Empty.into()),
        Err(quinn::ReadExactError::FinishedEarly(got)) => {
            // Reuse the whole-frame decoder for the precise error.
            let err = decode_frame_with_limit(&header[..got], max)
                .err()
                .unwrap_or(FrameError::TruncatedHeader { got });
            return Err(err.into());
        }
        Err(quinn::ReadExactError::ReadError(e)) => {
            return Err(ReadFrameError::Stream(e.to_string()))
        }
    }
    let (version, declared) = decode_header(&header, max)?;
    let permit = match budget {
        // `declared <= max`, and the mesh keeps `max` below `u32::MAX`.
        Some(sem) => {
            let n = u32::try_from(declared).unwrap_or(u32::MAX);
            let permits = sem
                .acquire_many(n)
                .await
                .map_err(|_| ReadFrameError::Stream("mesh shutting down".into()))?;
            FramePermit {
                _permits: Some(permits),
            }
        }
        None => FramePermit { _permits: None },
    };
    // Ordered reads only: quinn-proto 0.11.19 can return a retransmitted chunk twice once a
    // stream that was read in order switches to unordered reads (`read_to_end`), which made
    // frames look too long and underflowed its flow-control credit on `stop`
    // (docs/upstream/quinn-proto-unordered-read.md).
    let mut payload = vec![0u8; declared];
    match recv.read_exact(&mut payload).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(actual)) => {
            return Err(FrameError::LengthMismatch { declared, actual }.into())
        }
        Err(quinn::ReadExactError::ReadError(e)) => {
            return Err(ReadFrameError::Stream(e.to_string()))
        }
    }
    // The frame is the whole stream: its end must follow.
    match recv.read(&mut [0u8; 1]).await {
        Ok(None) => {}
        Ok(Some(_)) => return Err(FrameError::TrailingData { declared }.into()),
        Err(e) => return Err(ReadFrameError::Stream(e.to_string())),
    }
    Ok((version, payload, permit))
}

/// Memory-budget permits held for a frame's payload (released on drop).
#[derive(Debug)]
pub struct FramePermit<'a> {
    _permits: Option<tokio::sync::SemaphorePermit<'a>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, RngCore, SeedableRng};

    #[test]
    fn roundtrip() {
        for payload in [&b""[..], b"x", &[0xffu8; 1000][..]] {
            let f = encode_frame(WIRE_VERSION, payload);
            assert_eq!(f.len(), HEADER_LEN + payload.len());
            assert_eq!(decode_frame(&f), Ok((WIRE_VERSION, payload)));
        }
    }

    #[test]
    fn exact_bytes_are_frozen() {
        assert_eq!(
            encode_frame(1, b"abc"),
            vec![1, 0, 0, 0, 3, b'a', b'b', b'c']
        );
        let f = encode_frame(1, &[0u8; 0x0001_0203]);
        assert_eq!(&f[..5], &[1, 0x00, 0x01, 0x02, 0x03]);
    }

    #[test]
    fn errors() {
        assert_eq!(decode_frame(&[]), Err(FrameError::Empty));
        assert_eq!(
            decode_frame(&[WIRE_VERSION, 0, 0]),
            Err(FrameError::TruncatedHeader { got: 3 })
        );
        // Version 1 signed commits at the header's view (ADR 0001's amendment): refused.
        assert_eq!(
            decode_frame(&encode_frame(1, b"a")),
            Err(FrameError::UnknownVersion(1))
        );
        assert_eq!(decode_frame(&[9, 0]), Err(FrameError::UnknownVersion(9)));
        assert_eq!(
            decode_frame(&encode_frame(0, b"a")),
            Err(FrameError::UnknownVersion(0))
        );
        assert_eq!(
            decode_frame(&encode_frame(WIRE_VERSION + 1, b"a")),
            Err(FrameError::UnknownVersion(WIRE_VERSION + 1))
        );
        let mut f = encode_frame(WIRE_VERSION, b"abcd");
        f.pop();
        assert_eq!(
            decode_frame(&f),
            Err(FrameError::LengthMismatch {
                declared: 4,
                actual: 3
            })
        );
        f.extend_from_slice(b"de");
        assert_eq!(
            decode_frame(&f),
            Err(FrameError::LengthMismatch {
                declared: 4,
                actual: 5
            })
        );
        assert_eq!(
            decode_frame_with_limit(&encode_frame(WIRE_VERSION, &[0; 11]), 10),
            Err(FrameError::TooLarge {
                declared: 11,
                max: 10
            })
        );
        assert!(decode_frame_with_limit(&encode_frame(WIRE_VERSION, &[0; 10]), 10).is_ok());
        // A huge declared length is refused without needing the bytes.
        assert_eq!(
            decode_frame(&[WIRE_VERSION, 0xff, 0xff, 0xff, 0xff]),
            Err(FrameError::TooLarge {
                declared: u32::MAX as usize,
                max: MAX_MESSAGE_BYTES
            })
        );
    }

    #[test]
    fn every_accepted_version_decodes() {
        for v in MIN_WIRE_VERSION..=WIRE_VERSION {
            assert_eq!(decode_frame(&encode_frame(v, b"p")), Ok((v, &b"p"[..])));
        }
    }

    /// Property: decoding arbitrary bytes never panics, and whatever is accepted re-encodes
    /// to exactly the input.
    #[test]
    fn decode_never_panics_on_random_input() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x6861_726d);
        let mut buf = vec![0u8; 64];
        for i in 0..200_000 {
            let len = rng.gen_range(0..64);
            buf.truncate(0);
            buf.resize(len, 0);
            rng.fill_bytes(&mut buf);
            // Bias half the cases towards plausible headers, to reach the deeper checks.
            if i % 2 == 0 && len >= HEADER_LEN {
                buf[0] = rng.gen_range(0..=WIRE_VERSION + 1);
                let declared = rng.gen_range(0..=(len as u32 - HEADER_LEN as u32 + 1));
                buf[1..5].copy_from_slice(&declared.to_be_bytes());
            }
            let max = rng.gen_range(0..64);
            if let Ok((v, p)) = decode_frame_with_limit(&buf, max) {
                assert!(p.len() <= max);
                assert_eq!(encode_frame(v, p), buf);
            }
        }
    }
}
