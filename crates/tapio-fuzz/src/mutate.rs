//! Byte-level mutations: bit flips, token insertion, deletions,
//! duplications, crossover with another corpus entry, interesting numbers.

use crate::rng::Rng;

/// Numbers that sit on the edges of the integer types and parsers.
const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "9",
    "255",
    "256",
    "65535",
    "65536",
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999",
    "1e308",
    "1e309",
    "-1e400",
    "1.5",
    "0.0",
    "1E2",
    "0x10",
    "+1",
    "00",
    "NaN",
];

/// Applies one to eight random mutations to `input`, using `tokens` for
/// insertions and `others` for crossover; the result is at most `max_len`
/// bytes.
pub fn mutate_bytes(
    rng: &mut Rng,
    input: &[u8],
    tokens: &[&[u8]],
    others: &[Vec<u8>],
    max_len: usize,
) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(8) {
        let len = out.len();
        match rng.below(10) {
            0 if len > 0 => {
                let i = rng.below(len);
                out[i] ^= 1 << rng.below(8);
            }
            1 if !tokens.is_empty() => {
                let t = *rng.pick(tokens);
                let i = rng.below(len + 1);
                out.splice(i..i, t.iter().copied());
            }
            2 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(32)).min(len);
                out.drain(a..b);
            }
            3 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(64)).min(len);
                let chunk = out[a..b].to_vec();
                let i = rng.below(len + 1);
                out.splice(i..i, chunk);
            }
            4 if !others.is_empty() => {
                let other = rng.pick(others);
                let cut = rng.below(other.len() + 1);
                let at = rng.below(len + 1);
                out.truncate(at);
                out.extend_from_slice(&other[cut..]);
            }
            5 => replace_number(rng, &mut out),
            6 if len > 0 => {
                let i = rng.below(len);
                out[i] = *rng.pick(b"\0\x7f\xff\"\\{}[]:,\r\n\t =;#.-+");
            }
            7 if len > 0 => {
                // Repeat a short slice many times (long runs, deep nesting).
                let a = rng.below(len);
                let b = (a + 1 + rng.below(4)).min(len);
                let chunk = out[a..b].to_vec();
                let times = 1 + rng.below(256);
                let i = rng.below(len + 1);
                out.splice(
                    i..i,
                    chunk.iter().copied().cycle().take(chunk.len() * times),
                );
            }
            8 if len > 0 => out.truncate(rng.below(len)),
            _ if !tokens.is_empty() => {
                let t: &[u8] = tokens[rng.below(tokens.len())];
                out.extend_from_slice(t);
            }
            _ => out.push(rng.next_u64() as u8),
        }
    }
    out.truncate(max_len);
    out
}

/// Replaces a run of ASCII digits (or, when there is none, inserts) with an
/// edge-case number.
fn replace_number(rng: &mut Rng, out: &mut Vec<u8>) {
    let n = rng.pick(NUMBERS).as_bytes();
    let len = out.len();
    let starts: Vec<usize> = (0..len)
        .filter(|&i| out[i].is_ascii_digit() && (i == 0 || !out[i - 1].is_ascii_digit()))
        .collect();
    if starts.is_empty() {
        let i = rng.below(len + 1);
        out.splice(i..i, n.iter().copied());
        return;
    }
    let a = *rng.pick(&starts);
    let b = a + out[a..].iter().take_while(|c| c.is_ascii_digit()).count();
    out.splice(a..b, n.iter().copied());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutants_respect_the_length_cap_and_replay_from_the_seed() {
        let seeds = vec![b"{\"a\":12}".to_vec()];
        let (mut r1, mut r2) = (Rng::new(7), Rng::new(7));
        for _ in 0..1000 {
            let a = mutate_bytes(&mut r1, &seeds[0], &[b"xyz"], &seeds, 64);
            let b = mutate_bytes(&mut r2, &seeds[0], &[b"xyz"], &seeds, 64);
            assert_eq!(a, b);
            assert!(a.len() <= 64);
        }
    }

    #[test]
    fn numbers_are_replaced_in_place() {
        let mut rng = Rng::new(3);
        let mut v = b"x=12;".to_vec();
        replace_number(&mut rng, &mut v);
        assert!(v.starts_with(b"x=") && v.ends_with(b";"), "{v:?}");
        let mid = std::str::from_utf8(&v[2..v.len() - 1]).unwrap();
        assert!(NUMBERS.contains(&mid), "{mid}");
    }
}
