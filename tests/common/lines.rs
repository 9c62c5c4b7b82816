//! JSON-lines records edited by a test.

/// `line`, a JSON-lines record losscape wrote and a test has edited since, with its checksum made again
/// for what it now holds (`io::jsonl::seal`), as if losscape had written it so: for the tests of the
/// checks that come after the checksum's.
pub fn resealed(line: &str) -> String {
    let start = line.rfind(r#","checksum":""#).expect("a line with a checksum");
    let object = format!("{}}}", &line[..start]);
    String::from_utf8(losscape::io::jsonl::seal(object.as_bytes())).unwrap()
}
