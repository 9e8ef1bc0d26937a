//! Hostile or oversized input stays cheap: alias expansion bombs, huge
//! documents, thousands of problems, deep nesting.

use tapio_profile::{validate, ProfileError, MAX_BYTES};

use super::{problems, with_spec, HEAD};

#[test]
fn billion_laughs_is_cheap() {
    let mut src = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for i in 1..10 {
        let prev = (b'a' + i - 1) as char;
        let cur = (b'a' + i) as char;
        src.push_str(&format!("{cur}: &{cur} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
    }
    let started = std::time::Instant::now();
    let p = problems(&src);
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    assert!(p.iter().any(|x| x.3.contains("aliases")));
}

#[test]
fn huge_documents_are_refused_unparsed() {
    let src = format!("{HEAD}{}", "# padding\n".repeat(MAX_BYTES / 10 + 1));
    assert!(matches!(validate(&src), Err(ProfileError::TooLarge { .. })));
    let big = "x".repeat(64 << 20);
    let started = std::time::Instant::now();
    assert!(matches!(validate(&big), Err(ProfileError::TooLarge { size, .. }) if size == 64 << 20));
    // Refused by its length, without scanning it.
    assert!(started.elapsed() < std::time::Duration::from_millis(50));
}

#[test]
fn many_problems_are_capped_and_counted() {
    let mut body = String::from("  network:\n");
    for i in 0..1500 {
        body.push_str(&format!("    f{i}: 1\n"));
    }
    let src = with_spec(&body);
    assert!(src.len() < MAX_BYTES);
    let p = problems(&src);
    assert_eq!(p.len(), 1001);
    assert_eq!(p[1000].3, "500 more problems not shown");
}

#[test]
fn deep_nesting_is_reported_once_without_recursion() {
    // Flow nesting: the parser's own limit (255) or ours, whichever first.
    let deep_flow = with_spec(&format!(
        "  network: {}{}\n",
        "[".repeat(200),
        "]".repeat(200)
    ));
    let p = problems(&deep_flow);
    assert_eq!(
        p.iter().filter(|x| x.3.contains("nesting deeper")).count(),
        1,
        "{p:?}"
    );
    // Block nesting.
    let mut block = String::from(HEAD);
    for depth in 0..40 {
        block.push_str(&" ".repeat(2 + depth * 2));
        block.push_str(&format!("k{depth}:\n"));
    }
    block.push_str(&" ".repeat(82));
    block.push_str("v\n");
    let p = problems(&block);
    assert!(p.iter().any(|x| x.3.contains("nesting deeper")), "{p:?}");
    // Unbalanced flow nesting beyond the parser's limit is a syntax error, not a crash.
    let p = problems(&"[".repeat(10_000));
    assert!(!p.is_empty());
}
