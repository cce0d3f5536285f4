//! Reading a `gossipnet replay` report (`conformance.md`) in tests.

/// A row of the decision table: (real, twin, agreed, unexpected).
pub fn decision(md: &str, kind: &str) -> (usize, usize, usize, usize) {
    let line = md
        .lines()
        .find(|l| l.starts_with(&format!("| {kind} |")))
        .unwrap_or_else(|| panic!("no {kind} row in\n{md}"));
    let cells: Vec<&str> = line.split('|').map(str::trim).collect();
    let n = |i: usize| cells[i].parse::<usize>().unwrap_or(usize::MAX);
    (n(3), n(4), n(5), n(9))
}

/// Asserts that the failure row of `fault` (`crash`, `silent failure`) names some reporters
/// and removing seeds, the same in the real run and the twin, all agreed.
pub fn assert_failure_agreed(md: &str, fault: &str) {
    let row = md
        .lines()
        .find(|l| l.contains(&format!("| {fault} |")))
        .unwrap_or_else(|| panic!("no {fault} row\n{md}"));
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    // reporters, then removing seeds: real / twin / agreed
    for c in [cells[4], cells[5]] {
        let n: Vec<&str> = c.split(" / ").collect();
        assert!(n[0] != "0" && n.iter().all(|x| *x == n[0]), "{row}");
    }
}
