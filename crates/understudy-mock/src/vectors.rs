//! Deterministic embedding vectors: a hash of each input spread over the requested dimensions
//! (8 by default) and normalised to unit length. The same text always gets the same vector,
//! whichever dialect or model asked, so tests can compare answers across providers.

/// Vector size when the request names none.
pub(crate) const DEFAULT_DIMENSIONS: usize = 8;
/// Largest vector the mock writes (OpenAI's largest model has 3072).
pub(crate) const MAX_DIMENSIONS: usize = 3072;

/// One input, reduced to what its vector depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Seed(pub u64);

impl Seed {
    pub fn text(s: &str) -> Seed {
        Seed(fnv1a(s.bytes()))
    }

    pub fn tokens(t: &[u64]) -> Seed {
        Seed(fnv1a(t.iter().flat_map(|x| x.to_le_bytes())))
    }
}

fn fnv1a(bytes: impl Iterator<Item = u8>) -> u64 {
    bytes.fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// SplitMix64: a tiny, well-mixed sequence from one seed.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The unit vector for `seed` with `dims` components.
pub(crate) fn vector(seed: Seed, dims: usize) -> Vec<f32> {
    let mut state = seed.0;
    let mut v: Vec<f32> =
        (0..dims).map(|_| (next(&mut state) >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0).collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    } else if let Some(first) = v.first_mut() {
        *first = 1.0;
    }
    v
}

/// Base64 (standard alphabet, padded) of the little-endian `f32` bytes, as OpenAI writes them.
pub(crate) fn base64_f32(v: &[f32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (b(0) << 16) | (b(1) << 8) | b(2);
        for i in 0..4usize {
            let c = if i <= chunk.len() { ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] } else { b'=' };
            out.push(char::from(c));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_unit_vectors() {
        let a = vector(Seed::text("hello"), 8);
        assert_eq!(a, vector(Seed::text("hello"), 8));
        assert_ne!(a, vector(Seed::text("hello!"), 8));
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
        assert_eq!(vector(Seed::tokens(&[1, 2]), 3).len(), 3);
        assert_eq!(vector(Seed(0), 1).len(), 1);
        assert!(vector(Seed(0), 0).is_empty());
    }

    #[test]
    fn base64_is_little_endian_f32() {
        assert_eq!(base64_f32(&[1.0, -0.5]), "AACAPwAAAL8=");
        assert_eq!(base64_f32(&[0.25]), "AACAPg==");
        assert_eq!(base64_f32(&[]), "");
    }
}
