//! Paginated lists: every list response is `{items, nextCursor}` with an opaque cursor.

use serde::{Deserialize, Serialize};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    /// Opaque to clients; adapters encode their own position in it.
    pub cursor: Option<String>,
}

impl PageRequest {
    pub fn first(limit: u32) -> Self {
        Self { limit, cursor: None }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), next_cursor: self.next_cursor }
    }
}

/// Encodes an adapter's position (e.g. DynamoDB's LastEvaluatedKey as JSON) as
/// an opaque URL-safe token.
pub fn encode_cursor(position: &serde_json::Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(position.to_string())
}

/// Decodes a cursor; a tampered or foreign cursor is `ForeignCursor` (a 422 naming `cursor` at the HTTP edge).
pub fn decode_cursor(cursor: &str) -> Result<serde_json::Value, crate::ports::StorageError> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| crate::ports::StorageError::ForeignCursor("is not a cursor this API issued"))?;
    serde_json::from_slice(&bytes).map_err(|_| crate::ports::StorageError::ForeignCursor("is not a cursor this API issued"))
}
