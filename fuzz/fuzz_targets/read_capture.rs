//! Any bytes as a capture file (pcap or pcapng, read as a stream by
//! `wire::capfile`), then the whole of `inspect` (every connection in
//! full, the summary) and `diff`: reading fails with one error or
//! succeeds, and nothing after it panics.
#![no_main]

use harness::report::inspect;
use harness::report::ladder::Width;
use harness::verdict::survey::Selection;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    std::io::Write::write_all(&mut file, data).expect("write");
    for selection in [Selection::Auto, Selection::All] {
        for width in [Width::Unlimited, Width::Columns(40)] {
            let _ = inspect::inspect(file.path(), &selection, width, &mut std::io::sink());
        }
    }
    if let Ok(capture) = inspect::load(file.path(), None) {
        let _ = inspect::diff(&capture, &capture, None);
    }
});
