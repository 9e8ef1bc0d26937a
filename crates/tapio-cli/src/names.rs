//! Occurrence file names: `<ULID>.json`, the ULID's first 48 bits being the
//! Unix-millisecond time of the fact.
//!
//! Reading the time from the name lets every time-window query skip files
//! without opening them. Only the canonical form the agent writes (26
//! upper-case Crockford base32 characters) is accepted; anything else in the
//! directory is foreign.

/// Length of a ULID in characters.
pub const ULID_LEN: usize = 26;
/// Suffix of an occurrence file.
pub const SUFFIX: &str = ".json";

/// Value of one upper-case Crockford base32 digit.
fn digit(c: u8) -> Option<u64> {
    let v = match c {
        b'0'..=b'9' => c - b'0',
        b'A'..=b'H' => c - b'A' + 10,
        b'J' | b'K' => c - b'J' + 18,
        b'M' | b'N' => c - b'M' + 20,
        b'P'..=b'T' => c - b'P' + 22,
        b'V'..=b'Z' => c - b'V' + 27,
        _ => return None,
    };
    Some(u64::from(v))
}

/// The Unix-millisecond time encoded in a canonical ULID, or `None` when `id`
/// is not one (wrong length, lower case, a letter outside the alphabet, or a
/// first digit above 7, which would overflow 128 bits).
#[must_use]
pub fn ulid_millis(id: &str) -> Option<u64> {
    let b = id.as_bytes();
    if b.len() != ULID_LEN || b[0] > b'7' {
        return None;
    }
    let mut ms = 0u64;
    for (i, &c) in b.iter().enumerate() {
        let v = digit(c)?;
        if i < 10 {
            ms = (ms << 5) | v;
        }
    }
    Some(ms)
}

/// The time of an occurrence file from its name (`<ULID>.json`), or `None`
/// when the name is not one the agent writes.
#[must_use]
pub fn file_millis(name: &str) -> Option<u64> {
    ulid_millis(name.strip_suffix(SUFFIX)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_time_prefix() {
        // 01ARZ3NDEK is the time part of the ULID spec's example; 1469922850259 ms by hand.
        assert_eq!(
            ulid_millis("01ARZ3NDEKTSV4RRFFQ69G5FAV"),
            Some(1_469_922_850_259)
        );
        assert_eq!(ulid_millis("00000000000000000000000000"), Some(0));
        assert_eq!(
            ulid_millis("7ZZZZZZZZZZZZZZZZZZZZZZZZZ"),
            Some((1 << 48) - 1)
        );
    }

    #[test]
    fn rejects_non_canonical_ids() {
        for bad in [
            "",
            "01ARZ3NDEKTSV4RRFFQ69G5FA",
            "01ARZ3NDEKTSV4RRFFQ69G5FAVX",
            "01arz3ndektsv4rrffq69g5fav",
            "01ARZ3NDEKTSV4RRFFQ69G5FAU",
            "81ARZ3NDEKTSV4RRFFQ69G5FAV",
            "../../etc/passwd//////////",
        ] {
            assert_eq!(ulid_millis(bad), None, "{bad}");
        }
    }

    #[test]
    fn file_names_need_the_json_suffix() {
        assert!(file_millis("01ARZ3NDEKTSV4RRFFQ69G5FAV.json").is_some());
        assert!(file_millis("01ARZ3NDEKTSV4RRFFQ69G5FAV.json.tmp").is_none());
        assert!(file_millis("01ARZ3NDEKTSV4RRFFQ69G5FAV").is_none());
    }
}
