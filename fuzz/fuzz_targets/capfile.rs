//! Any bytes through the streaming reader, every frame dissected with its
//! interface's link type and fed to a conversation builder under
//! `inspect`'s bounded retention, finished connections taken out as they
//! go: never a panic, never a record larger than `MAX_RECORD` held.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use wire::capfile::{CaptureFile, Next};
use wire::conversation::ConversationBuilder;
use wire::dissect::{Dissector, Frame};

fuzz_target!(|data: &[u8]| {
    let Ok(mut file) = CaptureFile::from_reader(std::io::Cursor::new(data.to_vec())) else {
        return;
    };
    let mut builder = ConversationBuilder::with_retention(harness::verdict::survey::RETENTION);
    let mut dissector = Dissector::default();
    let mut frame = Frame {
        timestamp: Duration::ZERO,
        wire_len: 0,
        data: Vec::new(),
    };
    while let Ok(next) = file.next_frame(&mut frame) {
        assert!(frame.data.len() <= wire::capfile::MAX_RECORD);
        match next {
            Next::End => break,
            Next::Unreadable(_) => {}
            Next::Frame(link) => {
                if let Ok(Some(segment)) = dissector.dissect(link, file.frames(), &frame) {
                    builder.push(segment);
                }
            }
        }
        let _ = builder.take_finished(file.frames(), 4);
    }
    for (_, connection) in builder.finish_numbered() {
        let _ = harness::verdict::signature::signature(&connection);
    }
});
