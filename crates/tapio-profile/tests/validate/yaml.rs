//! YAML that profiles refuse or reject: anchors, aliases, tags, duplicate
//! and complex keys, syntax errors, empty and multi-document input.

use super::{problems, with_spec, HEAD};

#[test]
fn aliases_are_rejected_not_expanded() {
    let src = with_spec("  network: &n\n    enabled: true\n  storage: *n\n");
    let p = problems(&src);
    let msgs: Vec<&str> = p.iter().map(|x| x.3.as_str()).collect();
    assert_eq!(
        msgs,
        [
            "YAML anchors are not supported in profiles",
            "YAML aliases are not supported in profiles"
        ]
    );
    assert_eq!((p[1].1, p[1].2), (9, 12));
}

#[test]
fn tags_are_rejected() {
    let p = problems(&with_spec("  foldWindowMs: !!int 5\n"));
    assert_eq!(p[0].3, "YAML tags are not supported in profiles");
}

#[test]
fn duplicate_keys_are_rejected_with_both_lines() {
    let src = with_spec("  storage:\n    latencyWarningUs: 1000\n    latencyWarningUs: 2000\n");
    let p = problems(&src);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].0, "spec.storage.latencyWarningUs");
    assert_eq!((p[0].1, p[0].2), (9, 5));
    assert_eq!(p[0].3, "duplicate key `latencyWarningUs` (first at line 8)");
    let p = problems("apiVersion: tapio.dev/v1\napiVersion: tapio.dev/v1\nkind: EvidenceProfile\nmetadata: {name: a}\nspec: {}\n");
    assert_eq!(p[0].0, "apiVersion");
}

#[test]
fn complex_keys_are_rejected() {
    let p = problems(&with_spec("  ? [a, b]\n  : 1\n"));
    assert_eq!(p[0].3, "YAML complex keys are not supported in profiles");
}

#[test]
fn syntax_errors_carry_their_position() {
    let p = problems("apiVersion: tapio.dev/v1\nkind: [EvidenceProfile\n");
    assert_eq!(p.len(), 1);
    assert!(p[0].3.starts_with("YAML syntax error"), "{p:?}");
    assert!(p[0].1 >= 2);
}

#[test]
fn empty_and_multi_document_inputs() {
    assert_eq!(problems("")[0].3, "empty document");
    assert_eq!(problems("# only a comment\n")[0].3, "empty document");
    let two = format!("{HEAD}---\n{HEAD}");
    assert!(problems(&two).iter().any(|p| p.3.contains("more than one")));
    assert!(!problems("just a string").is_empty());
}
