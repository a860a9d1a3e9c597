//! Export and import of the guard's history (JSON), for moving a validator between machines
//! without losing its watermarks.

use super::*;

impl Guard {
    /// The whole history, for moving a validator to another machine.
    pub fn export(&self) -> Result<Interchange, GuardError> {
        self.with_lock(|inner| {
            let st = &inner.state;
            let mut keys: Vec<InterchangeKey> = st
                .keys
                .iter()
                .map(|pk| InterchangeKey {
                    public_key: format!("0x{}", hex::encode(pk)),
                    watermarks: Vec::new(),
                })
                .collect();
            let mut marks: Vec<_> = st.marks.iter().collect();
            marks.sort_by_key(|((k, s, kind), _)| (*k, *s, *kind));
            for ((k, shard, kind), m) in marks {
                keys[*k as usize].watermarks.push(InterchangeMark {
                    chain_id: m.chain_id,
                    shard: *shard,
                    kind: kind_name(*kind).into(),
                    number: m.number,
                    view: m.view,
                    payload_hash: format!("0x{}", hex::encode(m.hash)),
                });
            }
            Ok(Interchange {
                format: INTERCHANGE_FORMAT.into(),
                version: 1,
                keys,
            })
        })
    }

    /// Merges an exported history: keys are registered, and each watermark is raised to the
    /// imported one where that is higher. Never lowers a watermark.
    pub fn import(&self, ic: &Interchange) -> Result<usize, GuardError> {
        if ic.format != INTERCHANGE_FORMAT || ic.version != 1 {
            return Err(GuardError::Interchange(format!(
                "format `{}` version {} is not `{INTERCHANGE_FORMAT}` version 1",
                ic.format, ic.version
            )));
        }
        let mut parsed = Vec::new();
        for k in &ic.keys {
            let pk = decode_hex::<48>(&k.public_key)
                .map_err(|e| GuardError::Interchange(format!("public_key: {e}")))?;
            let mut ms = Vec::new();
            for w in &k.watermarks {
                let kind = kind_from_name(&w.kind).ok_or_else(|| {
                    GuardError::Interchange(format!(
                        "kind `{}` is not prepare, commit, viewchange or newview",
                        w.kind
                    ))
                })?;
                let hash = decode_hex::<32>(&w.payload_hash)
                    .map_err(|e| GuardError::Interchange(format!("payload_hash: {e}")))?;
                ms.push((
                    w.shard,
                    kind,
                    Mark {
                        chain_id: w.chain_id,
                        number: w.number,
                        view: w.view,
                        hash,
                    },
                ));
            }
            parsed.push((pk, ms));
        }
        self.with_lock(|inner| {
            let mut buf = Vec::new();
            let mut next = inner.state.keys.len();
            let mut new_index = HashMap::new();
            for (pk, _) in &parsed {
                if !inner.state.index.contains_key(pk) && !new_index.contains_key(pk) {
                    frame(&key_body(pk), &mut buf);
                    new_index.insert(*pk, next as u16);
                    next += 1;
                }
            }
            let mut raised = 0;
            for (pk, ms) in &parsed {
                let i = inner
                    .state
                    .index
                    .get(pk)
                    .or_else(|| new_index.get(pk))
                    .copied()
                    .expect("registered above");
                for (shard, kind, m) in ms {
                    let cur = inner.state.marks.get(&(i, *shard, *kind));
                    if cur.is_none_or(|c| (m.number, m.view) > (c.number, c.view)) {
                        frame(&sign_body(*kind, *shard, m, &[i]), &mut buf);
                        raised += 1;
                    }
                }
            }
            if !buf.is_empty() {
                self.append(inner, &buf, false)?;
            }
            Ok(raised)
        })
    }
}

pub const INTERCHANGE_FORMAT: &str = "harmony-appliance/guard-interchange";

/// Exported guard history (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interchange {
    pub format: String,
    pub version: u32,
    pub keys: Vec<InterchangeKey>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterchangeKey {
    /// 0x-prefixed compressed BLS public key.
    pub public_key: String,
    pub watermarks: Vec<InterchangeMark>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterchangeMark {
    pub chain_id: u64,
    pub shard: u32,
    /// `prepare`, `commit`, `viewchange` or `newview`.
    pub kind: String,
    pub number: u64,
    pub view: u64,
    /// 0x-prefixed SHA-256 of the signed payload.
    pub payload_hash: String,
}

impl Interchange {
    pub fn from_json(text: &str) -> Result<Self, GuardError> {
        serde_json::from_str(text).map_err(|e| GuardError::Interchange(e.to_string()))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("serializes")
    }
}

fn kind_name(k: MsgKind) -> &'static str {
    match k {
        MsgKind::Prepare => "prepare",
        MsgKind::Commit => "commit",
        MsgKind::ViewChange => "viewchange",
        MsgKind::NewView => "newview",
        MsgKind::Vrf => "vrf",
    }
}

fn kind_from_name(s: &str) -> Option<MsgKind> {
    [
        MsgKind::Prepare,
        MsgKind::Commit,
        MsgKind::ViewChange,
        MsgKind::NewView,
        MsgKind::Vrf,
    ]
    .into_iter()
    .find(|k| kind_name(*k) == s)
}

pub(crate) fn decode_hex<const N: usize>(s: &str) -> Result<[u8; N], String> {
    let v = hex::decode(s.trim_start_matches("0x")).map_err(|_| format!("`{s}` is not hex"))?;
    v.try_into()
        .map_err(|v: Vec<u8>| format!("{} bytes where {N} were expected", v.len()))
}
