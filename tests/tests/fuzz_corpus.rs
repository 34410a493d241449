//! The fuzz harnesses (`tests::fuzz`, also the `cargo fuzz` targets in `fuzz/`) over their
//! seed corpora (`fuzz/corpus/<target>/`) and a bounded, seeded mutation pass (bit flips,
//! byte inserts and deletes, truncations, splices): no input may panic. A failure prints
//! the input in hex and the seed to reproduce it.

use std::panic::AssertUnwindSafe;

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(v.len() + 1);
                let interesting = [
                    b'"', b'{', b'}', b'[', b']', b':', b',', b'\n', b'\\', 0, 0xff, b'-', b'0',
                    b'e',
                ];
                v.insert(i, interesting[rng.below(interesting.len())]);
            }
            2 if !v.is_empty() => {
                let i = rng.below(v.len());
                v.remove(i);
            }
            3 => {
                let n = rng.below(v.len() + 1);
                v.truncate(n);
            }
            4 if !other.is_empty() => {
                let cut = rng.below(v.len() + 1);
                let from = rng.below(other.len());
                v.truncate(cut);
                v.extend_from_slice(&other[from..]);
            }
            _ => {
                let i = rng.below(v.len() + 1);
                let n = rng.below(8);
                let byte = (rng.next() & 0xff) as u8;
                v.splice(i..i, std::iter::repeat_n(byte, n));
            }
        }
    }
    v
}

#[test]
fn every_harness_survives_its_corpus_and_mutations() {
    let root = tests::workspace_root().join("fuzz/corpus");
    let seed: u64 = std::env::var("LOOPOTEL_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    eprintln!("mutation seed {seed} (reproduce with LOOPOTEL_FUZZ_SEED={seed})");
    for (name, harness) in tests::fuzz::HARNESSES {
        let dir = root.join(name);
        let mut corpus: Vec<Vec<u8>> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        corpus.push(Vec::new());
        assert!(corpus.len() > 2, "{name}: corpus too small");
        let mut rng = Rng(seed ^ (name.len() as u64 * 0x9e37_79b9));
        let mut inputs = corpus.clone();
        for _ in 0..1500 {
            let a = &corpus[rng.below(corpus.len())];
            let b = &corpus[rng.below(corpus.len())];
            inputs.push(mutate(&mut rng, a, b));
        }
        for input in &inputs {
            let ran = std::panic::catch_unwind(AssertUnwindSafe(|| harness(input)));
            if ran.is_err() {
                let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
                panic!("{name} panicked on input {hex} (LOOPOTEL_FUZZ_SEED={seed})");
            }
        }
    }
}
