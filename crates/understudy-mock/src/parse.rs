//! Allocation-light request parsing helpers shared by the dialects.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A rough word count of any JSON value: whitespace-separated words in every string, except
/// values under a `"type"` key (part tags such as `"text"` are not words of the prompt).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Words(pub u32);

pub(crate) fn count_words(s: &str) -> u32 {
    u32::try_from(s.split_whitespace().count()).unwrap_or(u32::MAX)
}

impl<'de> Deserialize<'de> for Words {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(WordsVisitor)
    }
}

struct WordsVisitor;

impl<'de> Visitor<'de> for WordsVisitor {
    type Value = Words;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E>(self, v: &str) -> Result<Words, E> {
        Ok(Words(count_words(v)))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Words, E> {
        Ok(Words(0))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Words, E> {
        Ok(Words(0))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Words, E> {
        Ok(Words(0))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Words, E> {
        Ok(Words(0))
    }

    fn visit_unit<E>(self) -> Result<Words, E> {
        Ok(Words(0))
    }

    fn visit_none<E>(self) -> Result<Words, E> {
        Ok(Words(0))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Words, A::Error> {
        let mut n = 0u32;
        while let Some(Words(w)) = seq.next_element()? {
            n = n.saturating_add(w);
        }
        Ok(Words(n))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Words, A::Error> {
        let mut n = 0u32;
        while let Some(IsTypeKey(is_type)) = map.next_key()? {
            if is_type {
                map.next_value::<IgnoredAny>()?;
            } else {
                n = n.saturating_add(map.next_value::<Words>()?.0);
            }
        }
        Ok(Words(n))
    }
}

struct IsTypeKey(bool);

impl<'de> Deserialize<'de> for IsTypeKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IsTypeKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E>(self, v: &str) -> Result<IsTypeKey, E> {
                Ok(IsTypeKey(v == "type"))
            }
        }
        d.deserialize_str(V)
    }
}

/// A list of field names a real API accepts in some object.
pub(crate) trait KeyList {
    /// Accepted names; with `NORMALISE`, in lower case without underscores, so that
    /// `maxOutputTokens` and `max_output_tokens` both match `maxoutputtokens`.
    const KEYS: &'static [&'static str];
    const NORMALISE: bool;
}

/// Deserialises an object and keeps the first key not in `L` (allocating only for that key).
pub(crate) struct FirstUnknown<L>(pub Option<String>, PhantomData<L>);

impl<L> FirstUnknown<L> {
    pub fn key(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

fn normalised_eq(key: &str, allowed: &str) -> bool {
    let mut k = key.bytes().filter(|b| *b != b'_').map(|b| b.to_ascii_lowercase());
    let mut a = allowed.bytes();
    loop {
        match (k.next(), a.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) if x == y => {}
            _ => return false,
        }
    }
}

impl<'de, L: KeyList> Deserialize<'de> for FirstUnknown<L> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FirstUnknownVisitor::<L>(PhantomData))
    }
}

struct FirstUnknownVisitor<L>(PhantomData<L>);

impl<'de, L: KeyList> Visitor<'de> for FirstUnknownVisitor<L> {
    type Value = FirstUnknown<L>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut first = None;
        while let Some(Str(key)) = map.next_key::<Str<'de>>()? {
            map.next_value::<IgnoredAny>()?;
            let known = L::KEYS.iter().any(|a| if L::NORMALISE { normalised_eq(&key, a) } else { key == *a });
            if !known && first.is_none() {
                first = Some(key.into_owned());
            }
        }
        Ok(FirstUnknown(first, PhantomData))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(FirstUnknown(None, PhantomData))
    }
}

/// A string borrowed from the input when it has no escapes (serde's own `Cow`, inside an
/// `Option` or as a map key, always copies).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Str<'a>(pub Cow<'a, str>);

impl std::ops::Deref for Str<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

// `'de: 'a` so that derived structs with `#[serde(borrow)]` can hold a `Str<'a>`.
impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Str<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Str<'a>, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Str<'a>, E> {
                Ok(Str(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V(PhantomData))
    }
}

/// The first unknown top-level key of a JSON object body (None when all are known or the body
/// is not an object; the typed parse reports that case).
pub(crate) fn first_unknown_top_level<L: KeyList>(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<FirstUnknown<L>>(body).ok().and_then(|f| f.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Top;
    impl KeyList for Top {
        const KEYS: &'static [&'static str] = &["contents", "generationconfig"];
        const NORMALISE: bool = true;
    }

    #[test]
    fn counts_words_in_strings_but_not_type_tags() {
        let w: Words =
            serde_json::from_str(r#"[{"type":"text","text":"hello big world"},"two words",{"n":3}]"#).unwrap();
        assert_eq!(w, Words(5));
    }

    #[test]
    fn finds_unknown_keys_in_either_case_style() {
        assert_eq!(first_unknown_top_level::<Top>(br#"{"contents":[],"generation_config":{}}"#), None);
        assert_eq!(first_unknown_top_level::<Top>(br#"{"contents":[],"messages":[]}"#).as_deref(), Some("messages"));
        assert_eq!(first_unknown_top_level::<Top>(b"not json"), None);
    }

    proptest::proptest! {
        #[test]
        fn words_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..128)) {
            let _ = serde_json::from_slice::<Words>(&bytes);
            let _ = first_unknown_top_level::<Top>(&bytes);
        }
    }
}
