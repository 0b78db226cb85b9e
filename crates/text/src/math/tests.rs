use super::*;

fn eq(g: &str, a: &str) -> bool {
    equivalent(g, a, &MathOptions::default()).unwrap_or_else(|e| panic!("{g:?} vs {a:?}: {e}")).equal
}

#[test]
fn smoke() {
    assert!(eq("1", "1"));
}
