//! Relay global ids: an opaque string that encodes the node's type and its
//! database id, so `node(id:)` can resolve any of them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bson::oid::ObjectId;

macro_rules! node_kinds {
    ($($name:ident => $folder:ident),+ $(,)?) => {
        /// The node types that have global ids: one per model of
        /// `crate::with_models!`, named as the model's type.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum NodeKind {
            $($name),+
        }

        impl NodeKind {
            /// Every kind, in the list's order.
            pub const ALL: &'static [Self] = &[$(Self::$name),+];

            /// The type name in the schema, in global ids and in audit entries.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$name => stringify!($name)),+
                }
            }
        }
    };
}

crate::with_models!(node_kinds);

impl NodeKind {
    fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.name() == name)
    }
}

/// Appends `bytes` in URL-safe base64 without padding to `out`.
pub fn append_base64(bytes: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(
        start + base64::encoded_len(bytes.len(), false).unwrap_or(0),
        0,
    );
    match URL_SAFE_NO_PAD.encode_slice(bytes, &mut out[start..]) {
        Ok(written) => out.truncate(start + written),
        // The room was measured for this input; never reached.
        Err(_) => {
            out.truncate(start);
            out.extend_from_slice(URL_SAFE_NO_PAD.encode(bytes).as_bytes());
        }
    }
}

/// A decoded global id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalId {
    pub kind: NodeKind,
    pub id: ObjectId,
}

impl GlobalId {
    pub fn new(kind: NodeKind, id: ObjectId) -> Self {
        Self { kind, id }
    }

    pub fn encode(&self) -> String {
        let mut encoded = Vec::with_capacity(48);
        self.encode_into(&mut encoded);
        // Base64 is ASCII.
        String::from_utf8(encoded).unwrap_or_default()
    }

    /// Appends the encoded id (URL-safe base64: no character a JSON string
    /// would escape) to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        // `Kind:hex`, without the formatting machinery or a buffer on the
        // heap: a page encodes one or more per row.
        let name = self.kind.name().as_bytes();
        let mut raw = [0u8; 64];
        let size = name.len() + 25;
        let Some(text) = raw.get_mut(..size) else {
            let text = format!("{}:{}", self.kind.name(), self.id.to_hex());
            return out.extend_from_slice(URL_SAFE_NO_PAD.encode(text).as_bytes());
        };
        text[..name.len()].copy_from_slice(name);
        text[name.len()] = b':';
        hex_into(&self.id.bytes(), &mut text[name.len() + 1..]);
        append_base64(text, out);
    }

    /// Decodes any well-formed global id; `None` when it is not one.
    pub fn decode(text: &str) -> Option<Self> {
        let raw = URL_SAFE_NO_PAD.decode(text.as_bytes()).ok()?;
        let raw = std::str::from_utf8(&raw).ok()?;
        let (kind, hex) = raw.split_once(':')?;
        Some(Self {
            kind: NodeKind::parse(kind)?,
            id: ObjectId::parse_str(hex).ok()?,
        })
    }

    /// Decodes a global id that must name a `kind`.
    pub fn decode_as(text: &str, kind: NodeKind) -> Option<ObjectId> {
        Self::decode(text).filter(|g| g.kind == kind).map(|g| g.id)
    }
}

/// Lower-case hex of `bytes` into `out` (twice as long).
pub fn hex_into(bytes: &[u8], out: &mut [u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (byte, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = HEX[usize::from(byte >> 4)];
        pair[1] = HEX[usize::from(byte & 0x0f)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_global_id_round_trips_and_keeps_its_kind() {
        let id = ObjectId::new();
        let text = GlobalId::new(NodeKind::Asset, id).encode();
        assert_eq!(GlobalId::decode_as(&text, NodeKind::Asset), Some(id));
        assert_eq!(GlobalId::decode_as(&text, NodeKind::User), None);
        assert_eq!(GlobalId::decode("not-an-id"), None);
    }

    #[test]
    fn global_ids_are_base64_of_kind_colon_hex() {
        // Clients keep ids: the text must never change.
        let id = ObjectId::parse_str("6b0b99ac17756aafe27005a3").unwrap();
        for kind in [NodeKind::User, NodeKind::Asset, NodeKind::TherapySession] {
            let expected = URL_SAFE_NO_PAD.encode(format!("{}:{}", kind.name(), id.to_hex()));
            assert_eq!(GlobalId::new(kind, id).encode(), expected);
        }
        assert_eq!(
            GlobalId::new(NodeKind::Asset, id).encode(),
            "QXNzZXQ6NmIwYjk5YWMxNzc1NmFhZmUyNzAwNWEz"
        );
    }
}
