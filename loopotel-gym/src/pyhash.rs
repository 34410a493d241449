//! CPython's `hash(str)` (3.11+: SipHash-1-3 keyed by the process hash secret), for the
//! reference's composed env, whose branch seeds come from `hash(branch_id) % 997`.
//!
//! The secret is what `PYTHONHASHSEED` makes it: `0` disables randomization (an all-zero
//! key); `1..=4294967295` fills the secret from CPython's LCG. An unset `PYTHONHASHSEED`
//! is random per process — the reference's composed trajectories then differ from run to
//! run, and no port can match them.

/// `hash(s)` for a Python process started with `PYTHONHASHSEED=hash_seed`, for strings of
/// code points below 256 (CPython hashes those as one byte per character); `None` for
/// wider strings.
pub(crate) fn str_hash(s: &str, hash_seed: u32) -> Option<i64> {
    let bytes: Option<Vec<u8>> = s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect();
    let bytes = bytes?;
    if bytes.is_empty() {
        return Some(0);
    }
    let (k0, k1) = secret(hash_seed);
    let h = siphash13(k0, k1, &bytes) as i64;
    Some(if h == -1 { -2 } else { h })
}

/// The first 16 bytes of `_Py_HashSecret` as SipHash keys.
fn secret(hash_seed: u32) -> (u64, u64) {
    if hash_seed == 0 {
        return (0, 0);
    }
    let mut buf = [0u8; 16];
    let mut x = hash_seed;
    for b in &mut buf {
        x = x.wrapping_mul(214013).wrapping_add(2531011);
        *b = ((x >> 16) & 0xff) as u8;
    }
    let k0 = u64::from_le_bytes(buf[..8].try_into().unwrap_or_default());
    let k1 = u64::from_le_bytes(buf[8..].try_into().unwrap_or_default());
    (k0, k1)
}

fn round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13) ^ v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16) ^ v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21) ^ v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17) ^ v[2];
    v[2] = v[2].rotate_left(32);
}

fn siphash13(k0: u64, k1: u64, data: &[u8]) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let m = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        v[3] ^= m;
        round(&mut v);
        v[0] ^= m;
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    let b = ((data.len() as u64) << 56) | u64::from_le_bytes(tail);
    v[3] ^= b;
    round(&mut v);
    v[0] ^= b;
    v[2] ^= 0xff;
    round(&mut v);
    round(&mut v);
    round(&mut v);
    (v[0] ^ v[1]) ^ (v[2] ^ v[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_cpython_for_fixed_hash_seeds() {
        // PYTHONHASHSEED=N python3.12 -c 'print([hash(x) for x in [...]])'
        let words = [
            "falsifier",
            "evidence",
            "operator",
            "",
            "abcdefgh",
            "abcdefghi",
        ];
        for (seed, want) in [
            (
                0,
                [
                    7855299965733683552,
                    2024697014141507930,
                    -2605569462484478733,
                    0,
                    4574395652268504554,
                    -532774252720507163,
                ],
            ),
            (
                1,
                [
                    2667037034195813168,
                    -6092884799595993352,
                    -1807790404107898233,
                    0,
                    -202642195356325900,
                    7871229953815684364,
                ],
            ),
            (
                42,
                [
                    7401927063608039112,
                    2373845240195043887,
                    -3203556296322380148,
                    0,
                    -5457871895989710762,
                    -5970266004662334337,
                ],
            ),
            (
                4294967295,
                [
                    776293915304264699,
                    6850816690241515183,
                    -8099781474321827554,
                    0,
                    3424456984880118976,
                    6340115119033867570,
                ],
            ),
        ] {
            for (w, h) in words.iter().zip(want) {
                assert_eq!(
                    str_hash(w, seed),
                    Some(h),
                    "{w:?} with PYTHONHASHSEED={seed}"
                );
            }
        }
        assert_eq!(str_hash("λ", 0), None);
    }
}
