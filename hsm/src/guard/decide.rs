//! The watermark rule, pure: given what each key signed, may this request be signed? No I/O,
//! no locks; `Guard` applies it under its file lock and makes the outcome durable.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Mark {
    pub(super) chain_id: u64,
    pub(super) number: u64,
    pub(super) view: u64,
    pub(super) hash: [u8; 32],
}

#[derive(Default)]
pub(super) struct State {
    pub(super) keys: Vec<[u8; 48]>,
    pub(super) index: HashMap<[u8; 48], u16>,
    pub(super) marks: HashMap<(u16, u32, MsgKind), Mark>,
}

impl State {
    /// Applies one log record (a key registration or a signed slot).
    pub(super) fn apply(&mut self, body: &[u8]) -> Result<(), String> {
        match body.first() {
            Some(&REC_KEY) if body.len() == 49 => {
                let mut pk = [0u8; 48];
                pk.copy_from_slice(&body[1..]);
                if !self.index.contains_key(&pk) {
                    let i = u16::try_from(self.keys.len()).map_err(|_| "too many keys")?;
                    self.index.insert(pk, i);
                    self.keys.push(pk);
                }
                Ok(())
            }
            Some(&REC_SIGN) if body.len() >= 64 => {
                let kind = MsgKind::from_u8(body[1]).ok_or("unknown message kind")?;
                let u64_at = |o: usize| u64::from_be_bytes(body[o..o + 8].try_into().expect("8"));
                let chain_id = u64_at(2);
                let shard = u32::from_be_bytes(body[10..14].try_into().expect("4"));
                let number = u64_at(14);
                let view = u64_at(22);
                let mut hash = [0u8; 32];
                hash.copy_from_slice(&body[30..62]);
                let n = u16::from_be_bytes([body[62], body[63]]) as usize;
                if body.len() != 64 + 2 * n {
                    return Err("bad key count".into());
                }
                let mark = Mark {
                    chain_id,
                    number,
                    view,
                    hash,
                };
                for i in 0..n {
                    let k = u16::from_be_bytes([body[64 + 2 * i], body[65 + 2 * i]]);
                    if k as usize >= self.keys.len() {
                        return Err("record names an unknown key".into());
                    }
                    let e = self.marks.entry((k, shard, kind)).or_insert(mark);
                    if (number, view) >= (e.number, e.view) {
                        *e = mark;
                    }
                }
                Ok(())
            }
            _ => Err("unknown record".into()),
        }
    }
}

/// What the rule allows.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Above some key's watermark: record it for these key indices, then sign.
    Fresh(Vec<u16>),
    /// Every key signed exactly this payload at this slot: answer again, record nothing.
    Repeat,
}

/// The rule for one request signed by all of `pks` (registered keys), whose payload hashes to
/// `hash`: refused if any key signed another payload at this slot ([`GuardError::Conflict`])
/// or a later slot ([`GuardError::BelowWatermark`]); an unregistered key is
/// [`GuardError::NoHistory`].
pub(super) fn decide(
    state: &State,
    pks: &[[u8; 48]],
    req: &SignRequest,
    hash: [u8; 32],
) -> Result<Verdict, GuardError> {
    let mut idx = Vec::with_capacity(pks.len());
    let mut fresh = false;
    for pk in pks {
        let i = *state
            .index
            .get(pk)
            .ok_or_else(|| GuardError::NoHistory(format!("0x{}", hex::encode(pk))))?;
        idx.push(i);
        let Some(m) = state.marks.get(&(i, req.shard, req.kind)) else {
            fresh = true;
            continue;
        };
        let at = (req.number, req.view);
        let w = (m.number, m.view);
        if at > w {
            fresh = true;
        } else if at == w && m.hash != hash {
            return Err(GuardError::Conflict {
                key: short(pk),
                kind: req.kind,
                shard: req.shard,
                number: req.number,
                view: req.view,
            });
        } else if at < w {
            return Err(GuardError::BelowWatermark {
                key: short(pk),
                kind: req.kind,
                shard: req.shard,
                number: req.number,
                view: req.view,
                w_number: m.number,
                w_view: m.view,
            });
        }
    }
    Ok(if fresh {
        Verdict::Fresh(idx)
    } else {
        Verdict::Repeat
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(number: u64, view: u64) -> SignRequest {
        SignRequest {
            kind: MsgKind::Commit,
            chain_id: 1,
            shard: 0,
            number,
            view,
            hash: [7u8; 32],
        }
    }

    fn state_with(mark: Option<(u64, u64, [u8; 32])>) -> State {
        let mut s = State::default();
        s.index.insert([1u8; 48], 0);
        s.keys.push([1u8; 48]);
        if let Some((number, view, hash)) = mark {
            let m = Mark {
                chain_id: 1,
                number,
                view,
                hash,
            };
            s.marks.insert((0, 0, MsgKind::Commit), m);
        }
        s
    }

    #[test]
    fn the_watermark_rule() {
        let pk = [[1u8; 48]];
        let h = [3u8; 32];
        let fresh = decide(&state_with(None), &pk, &req(5, 0), h).unwrap();
        assert_eq!(fresh, Verdict::Fresh(vec![0]));
        let at = state_with(Some((5, 1, h)));
        assert_eq!(decide(&at, &pk, &req(5, 1), h).unwrap(), Verdict::Repeat);
        assert_eq!(
            decide(&at, &pk, &req(5, 2), [9; 32]).unwrap(),
            Verdict::Fresh(vec![0])
        );
        assert!(matches!(
            decide(&at, &pk, &req(5, 1), [9; 32]),
            Err(GuardError::Conflict {
                number: 5,
                view: 1,
                ..
            })
        ));
        assert!(matches!(
            decide(&at, &pk, &req(5, 0), h),
            Err(GuardError::BelowWatermark {
                w_number: 5,
                w_view: 1,
                ..
            })
        ));
        assert!(matches!(
            decide(&at, &[[2u8; 48]], &req(6, 0), h),
            Err(GuardError::NoHistory(_))
        ));
    }
}
