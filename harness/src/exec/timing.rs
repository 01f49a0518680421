//! Where a cell's time goes: each stage's wall time and the CPU time of the
//! thread that ran it, recorded in summary.json (`timings`) so `make bench`
//! can say which stage costs what.

use std::time::{Duration, Instant};

/// One stage of one cell.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct StageTime {
    pub stage: &'static str,
    /// Wall-clock milliseconds.
    pub wall_ms: f64,
    /// CPU milliseconds of the thread that ran the stage (user + system);
    /// the programs' own CPU is not in it.
    pub cpu_ms: f64,
}

/// The CPU time this thread has used so far.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec for clock_gettime to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// CPU time a whole process used, split as the kernel accounts it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessCpu {
    pub user: Duration,
    pub sys: Duration,
}

/// This process's CPU time so far: every thread's, no child's.
pub fn process_cpu() -> ProcessCpu {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid rusage for getrusage to fill.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    ProcessCpu {
        user: time(usage.ru_utime),
        sys: time(usage.ru_stime),
    }
}

/// Times the stages run one after another on one thread.
pub struct Stopwatch {
    wall: Instant,
    cpu: Duration,
}

impl Stopwatch {
    pub fn start() -> Stopwatch {
        Stopwatch {
            wall: Instant::now(),
            cpu: thread_cpu(),
        }
    }

    /// Ends the stage that ran since the last lap (or the start), as
    /// `stage`, and starts the next.
    pub fn lap(&mut self, stage: &'static str) -> StageTime {
        let (wall, cpu) = (Instant::now(), thread_cpu());
        let time = StageTime {
            stage,
            wall_ms: (wall - self.wall).as_secs_f64() * 1e3,
            cpu_ms: cpu.saturating_sub(self.cpu).as_secs_f64() * 1e3,
        };
        (self.wall, self.cpu) = (wall, cpu);
        time
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_stage_costs_cpu_and_a_sleeping_one_does_not() {
        let mut watch = Stopwatch::start();
        // Busy until this thread has had 20 ms of CPU, however long the
        // scheduler makes that take on a loaded machine (a wall-clock
        // spin was flaky under a parallel `make test`).
        let start = thread_cpu();
        let mut spins = 0u64;
        while thread_cpu() - start < Duration::from_millis(20) {
            spins = std::hint::black_box(spins + 1);
        }
        let busy = watch.lap("busy");
        std::thread::sleep(Duration::from_millis(30));
        let idle = watch.lap("idle");
        // (Wall and CPU are read one after the other, so allow a
        // millisecond where one thread's CPU could seem to outrun it.)
        assert!(
            busy.cpu_ms >= 20.0 && busy.wall_ms + 1.0 >= busy.cpu_ms,
            "{busy:?}"
        );
        assert!(idle.cpu_ms < 10.0 && idle.wall_ms >= 29.0, "{idle:?}");
    }
}
