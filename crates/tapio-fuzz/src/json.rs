//! Structure-aware JSON mutations: the document is parsed, one node is
//! replaced, removed, retyped, pushed to an edge value or wrapped, and the
//! tree is written back (compact or pretty).

use serde_json::{Map, Number, Value};

use crate::rng::Rng;

/// Deepest nesting a wrap mutation builds.
const MAX_WRAP: usize = 200;
/// Past this many nodes a document only shrinks or keeps its size: growth
/// compounds over corpus generations and edits otherwise. Our documents
/// (occurrences, configs, wire requests, MCP lines) have under 100 nodes;
/// at 2,048 the fuzzer spent most of its time parsing and re-serializing
/// its own giant mutants (a quarter of the inputs per second).
const MAX_NODES: usize = 512;

/// JSON's punctuation and the values that trip parsers, for byte mutations
/// of JSON inputs (a target adds its own tokens to these).
pub const JSON_TOKENS: &[&[u8]] = &[
    b"\"", b",", b":", b"{", b"}", b"[", b"]", b"null", b"\\u0000", b"\\ud800", b"\xff",
];

/// Mutates a JSON document. `keys` are field names worth inserting (the
/// schema's own and near misses). Returns `None` when `input` is not JSON.
pub fn mutate_json(rng: &mut Rng, input: &[u8], keys: &[&str]) -> Option<Vec<u8>> {
    let mut doc: Value = serde_json::from_slice(input).ok()?;
    for _ in 0..=rng.below(3) {
        let n = count_nodes(&doc);
        let target = rng.below(n);
        let mut seen = 0;
        let room = MAX_NODES.saturating_sub(n);
        visit(&mut doc, target, &mut seen, &mut |v| {
            edit(rng, v, keys, room)
        });
    }
    Some(if rng.one_in(8) {
        serde_json::to_vec_pretty(&doc).unwrap_or_default()
    } else {
        serde_json::to_vec(&doc).unwrap_or_default()
    })
}

fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count_nodes).sum(),
        Value::Object(m) => m.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// Calls `f` on the `target`-th node in pre-order; true once done.
fn visit(v: &mut Value, target: usize, seen: &mut usize, f: &mut dyn FnMut(&mut Value)) -> bool {
    if *seen == target {
        f(v);
        return true;
    }
    *seen += 1;
    match v {
        Value::Array(a) => a.iter_mut().any(|c| visit(c, target, seen, f)),
        Value::Object(m) => m.values_mut().any(|c| visit(c, target, seen, f)),
        _ => false,
    }
}

/// Edits one node; growth adds at most `room` nodes.
fn edit(rng: &mut Rng, v: &mut Value, keys: &[&str], room: usize) {
    // Without room, only edits that replace, remove or empty a node.
    let op = if room == 0 {
        *rng.pick(&[0, 1, 2, 3, 6, 7])
    } else {
        rng.below(9)
    };
    match op {
        0 => *v = scalar(rng, keys),
        1 => *v = edge_number(rng),
        2 => *v = Value::String(edge_string(rng, keys)),
        3 => match v {
            Value::Object(m) if !m.is_empty() => {
                let k = m
                    .keys()
                    .nth(rng.below(m.len()))
                    .cloned()
                    .unwrap_or_default();
                m.remove(&k);
            }
            Value::Array(a) if !a.is_empty() => {
                let i = rng.below(a.len());
                a.remove(i);
            }
            _ => *v = Value::Null,
        },
        4 => match v {
            Value::Object(m) => {
                let k = if keys.is_empty() || rng.one_in(4) {
                    edge_string(rng, keys)
                } else {
                    (*rng.pick(keys)).to_owned()
                };
                m.insert(k, scalar(rng, keys));
            }
            Value::Array(a) => {
                let item = a.first().cloned().unwrap_or_else(|| scalar(rng, keys));
                let copies = (1 + rng.below(64)).min(room / count_nodes(&item));
                for _ in 0..copies {
                    a.push(item.clone());
                }
            }
            _ => *v = Value::Array(vec![v.take()]),
        },
        5 => {
            // Wrap in arrays or objects, up to MAX_WRAP deep.
            let depth = (1 + rng.below(MAX_WRAP)).min(room);
            let mut inner = v.take();
            for _ in 0..depth {
                inner = if rng.one_in(2) {
                    Value::Array(vec![inner])
                } else {
                    let mut m = Map::new();
                    m.insert("a".into(), inner);
                    Value::Object(m)
                };
            }
            *v = inner;
        }
        6 => *v = Value::Object(Map::new()),
        7 => *v = Value::Array(Vec::new()),
        _ => {
            // Retype: a number as a string, a string as a number, a bool flipped.
            *v = match v.take() {
                Value::Number(n) => Value::String(n.to_string()),
                Value::String(s) => s.parse::<u64>().map_or(Value::Bool(true), Value::from),
                Value::Bool(b) => Value::Bool(!b),
                other => Value::Array(vec![other]),
            };
        }
    }
}

fn scalar(rng: &mut Rng, keys: &[&str]) -> Value {
    match rng.below(5) {
        0 => Value::Null,
        1 => Value::Bool(rng.one_in(2)),
        2 => edge_number(rng),
        3 => Value::String(edge_string(rng, keys)),
        _ => Value::from(rng.next_u64() >> rng.below(64)),
    }
}

fn edge_number(rng: &mut Rng) -> Value {
    match rng.below(12) {
        0 => Value::from(0),
        1 => Value::from(-1),
        2 => Value::from(u64::MAX),
        3 => Value::from(i64::MIN),
        4 => Value::from(u64::from(u32::MAX)),
        5 => Value::from(u64::from(u32::MAX) + 1),
        6 => Value::from(u64::from(u16::MAX) + 1),
        7 => Value::from(256),
        8 => Number::from_f64(1.5).map_or(Value::Null, Value::Number),
        9 => Number::from_f64(-0.0).map_or(Value::Null, Value::Number),
        10 => Number::from_f64(1e300).map_or(Value::Null, Value::Number),
        _ => Value::from(1u64 << rng.below(64)),
    }
}

fn edge_string(rng: &mut Rng, keys: &[&str]) -> String {
    match rng.below(10) {
        0 => String::new(),
        1 => "\u{0}".into(),
        2 => "é\u{feff}\u{10ffff}".into(),
        3 => "a".repeat(1 + rng.below(4096)),
        // (strings are leaves: one node, at most 4 KiB)
        4 => "\r\nX-Injected: 1".into(),
        5 => "../../etc/passwd".into(),
        6 => "01ARZ3NDEKTSV4RRFFQ69G5FAV".into(),
        7 => "2026-11-30T12:00:00Z".into(),
        8 if !keys.is_empty() => (*rng.pick(keys)).to_owned(),
        _ => "sha256:".to_owned() + &"0".repeat(rng.below(70)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_stop_growing_past_the_node_limit() {
        let mut rng = Rng::new(13);
        let mut doc = br#"{"a":[1,[2,3]],"b":{"c":[{"d":1}]}}"#.to_vec();
        for _ in 0..400 {
            if let Some(m) = mutate_json(&mut rng, &doc, &["k"]) {
                if serde_json::from_slice::<Value>(&m).is_ok() {
                    doc = m;
                }
            }
        }
        let v: Value = serde_json::from_slice(&doc).unwrap();
        // An edit adds at most the room left, plus one node (an inserted key).
        assert!(count_nodes(&v) <= MAX_NODES + 4, "{}", count_nodes(&v));
    }

    #[test]
    fn mutants_are_json_and_differ_from_the_parent() {
        let mut rng = Rng::new(11);
        let parent = br#"{"a":1,"b":[true,"x"],"c":{"d":null}}"#;
        let mut changed = 0;
        for _ in 0..500 {
            let m = mutate_json(&mut rng, parent, &["k"]).unwrap();
            let Ok(v) = serde_json::from_slice::<Value>(&m) else {
                // Only a wrap past serde_json's 128-level limit fails to parse.
                assert!(m.iter().filter(|&&b| b == b'[' || b == b'{').count() > 128);
                continue;
            };
            changed += usize::from(v != serde_json::from_slice::<Value>(parent).unwrap());
        }
        assert!(changed > 400, "{changed}");
        assert!(mutate_json(&mut rng, b"{nope", &[]).is_none());
    }
}
