//! Any bytes as a capture file (pcap or pcapng, as libpcap reads them),
//! then the whole analysis: reading fails with an error or succeeds, and
//! nothing after it panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    std::io::Write::write_all(&mut file, data).expect("write");
    if let Ok(capture) = harness::report::inspect::load(file.path()) {
        let _ = harness::report::inspect::render_inspect(&capture, None);
        let _ = harness::report::inspect::diff(&capture, &capture, None);
    }
});
