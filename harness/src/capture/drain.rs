//! The end of a cell's capture: waiting until the last segments of its
//! conversation have been captured.

use std::time::{Duration, Instant};

use wire::conversation::ConversationBuilder;
use wire::dissect;

use super::LiveCapture;

/// Waits until the capture shows every connection over (both FINs
/// acknowledged, or an RST), or `timeout`. Both programs have exited by now,
/// so only the kernel's last segments can still be on their way. Where no
/// teardown is expected (`teardown`: false, a black hole) it waits only
/// for the capture to be quiet.
///
/// Each frame is dissected once, as it arrives, into a conversation kept
/// from look to look, without its payload: the drain needs flags and
/// numbers, and a transfer of many segments costs no more per look than a
/// short one.
pub fn drain(
    live: &LiveCapture,
    timeout: Duration,
    cancelled: &dyn Fn() -> bool,
    teardown: bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    let link = live.link();
    let mut conversation = ConversationBuilder::default();
    let mut seen = 0;
    let mut quiet_since = (Instant::now(), 0usize);
    while Instant::now() < deadline && !cancelled() {
        seen = live.frames_since(seen, |first, frames| {
            for (i, frame) in frames.iter().enumerate() {
                if let Ok(Some(mut segment)) = dissect::dissect(link, first + i, frame) {
                    segment.payload = Vec::new();
                    conversation.push(segment);
                }
            }
        });
        let mut connections = conversation.connections().peekable();
        let any = connections.peek().is_some();
        if any && connections.all(|c| c.close.complete) {
            return true;
        }
        // No connection at all, or none that will end: nothing more will
        // come once it is quiet.
        if !any || !teardown {
            if seen != quiet_since.1 {
                quiet_since = (Instant::now(), seen);
            } else if quiet_since.0.elapsed() > Duration::from_millis(50) {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}
