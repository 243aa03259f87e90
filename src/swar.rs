//! Byte tests eight bytes at a time (SWAR, "SIMD within a register"), for the scans that run
//! over every byte a client sends: the framer's search for a line end and the escaper's
//! check for text that needs no escaping. Each test sets the top bit of the bytes it finds;
//! a borrow or carry can also flag bytes after a true match, never before one, so "any byte"
//! and "the first byte" ([`first`]) are exact. For the scans' tests, `check_scan` compares
//! a scan with its byte-by-byte rule.

/// 0x01 in every byte.
const LO: u64 = u64::from_le_bytes([0x01; 8]);
/// 0x80 in every byte.
const HI: u64 = u64::from_le_bytes([0x80; 8]);

/// Eight bytes as a word, the first byte lowest.
#[inline]
pub fn word(chunk: &[u8]) -> u64 {
    u64::from_le_bytes(chunk.try_into().expect("8 bytes"))
}

/// Flags the bytes of `x` below `n` (`n` at most 0x80).
#[inline]
pub fn below(x: u64, n: u8) -> u64 {
    x.wrapping_sub(LO * u64::from(n)) & !x & HI
}

/// Flags the bytes of `x` of `n` or more (`n` at most 0x80).
#[inline]
pub fn at_least(x: u64, n: u8) -> u64 {
    (x.wrapping_add(LO * u64::from(0x80 - n)) | x) & HI
}

/// Flags the bytes of `x` equal to `b`.
#[inline]
pub fn equal(x: u64, b: u8) -> u64 {
    below(x ^ (LO * u64::from(b)), 1)
}

/// The index of the first flagged byte of a non-zero result of the tests above.
#[inline]
pub fn first(flags: u64) -> usize {
    (flags.trailing_zeros() / 8) as usize
}

/// The index of the first byte of `data` that `flags` finds (a test above, or several ORed,
/// applied to a word) and `matches` agrees with for the bytes of a last partial word: the
/// scan the framers run, eight bytes at a time.
#[inline(always)]
pub fn find(
    data: &[u8],
    flags: impl Fn(u64) -> u64,
    matches: impl Fn(u8) -> bool,
) -> Option<usize> {
    let mut chunks = data.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let found = flags(word(chunk));
        if found != 0 {
            return Some(offset + first(found));
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| matches(b))
        .map(|i| offset + i)
}

/// For the tests of a scan: checks `fast` against `slow`, the byte-by-byte rule it stands
/// for, on every byte value at every position of runs of `a` of every length up to 24; with `then`, again with that byte right after it (a second match must not hide the
/// first); and with `mixed`, on 20,000 inputs of up to 39 bytes drawn from the nine bytes
/// given by a simple generator started at the seed given.
#[cfg(test)]
pub fn check_scan<T: PartialEq + std::fmt::Debug>(
    fast: impl Fn(&[u8]) -> T,
    slow: impl Fn(&[u8]) -> T,
    then: Option<u8>,
    mixed: Option<(u32, [u8; 9])>,
) {
    for len in 0..24 {
        for pos in 0..len {
            for v in 0..=255u8 {
                let mut data = vec![b'a'; len];
                data[pos] = v;
                assert_eq!(fast(&data), slow(&data), "{data:?}");
                if let Some(then) = then.filter(|_| pos + 1 < len) {
                    data[pos + 1] = then;
                    assert_eq!(fast(&data), slow(&data), "{data:?}");
                }
            }
        }
    }
    if let Some((mut seed, bytes)) = mixed {
        for _ in 0..20_000 {
            let len = (seed % 40) as usize;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    bytes[(seed >> 16) as usize % 9]
                })
                .collect();
            assert_eq!(fast(&data), slow(&data), "{data:?}");
        }
    }
}
